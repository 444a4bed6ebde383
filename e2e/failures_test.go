package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynago/dynago/devcluster"
	"github.com/dynago/dynago/internal/testutil"
)

type clusterBody struct {
	Nodes []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	} `json:"nodes"`
}

// statusOf returns how the node at via sees id in /cluster.
func statusOf(t *testing.T, via *devcluster.Node, id string) string {
	t.Helper()
	var cb clusterBody
	call(t, "GET", base(via)+"/cluster", nil, nil).json(t, &cb)
	for _, n := range cb.Nodes {
		if n.ID == id {
			return n.Status
		}
	}
	return ""
}

func nodeByID(t *testing.T, c *devcluster.Cluster, id string) *devcluster.Node {
	t.Helper()
	n, err := c.Node(id)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// hintHolders returns the nodes whose /admin/local/key lists a hint for primary.
func hintHolders(t *testing.T, c *devcluster.Cluster, key, primary string) []string {
	t.Helper()
	var out []string
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		r := call(t, "GET", base(n)+"/admin/local/"+key, nil, nil)
		if r.Status != 200 {
			continue
		}
		var lb struct {
			Hints []struct {
				For string `json:"for"`
			} `json:"hints"`
		}
		r.json(t, &lb)
		for _, h := range lb.Hints {
			if h.For == primary {
				out = append(out, n.ID)
			}
		}
	}
	return out
}

func TestDeadReplicaWriteIsHintedAndDeliveredOnRestart(t *testing.T) {
	c := startCluster(t, devcluster.Config{Nodes: 5, N: 3, W: 3})
	var pl placement
	call(t, "GET", base(c.Nodes[0])+"/kv/k/placement", nil, nil).json(t, &pl)
	victim := nodeByID(t, c, pl.PreferenceList[1])
	if err := c.Kill(victim); err != nil {
		t.Fatal(err)
	}
	entry := nodeByID(t, c, pl.PreferenceList[0])
	r := call(t, "PUT", base(entry)+"/kv/k?w=3", []byte("v"), nil)
	if r.Status != 204 {
		t.Fatalf("PUT with W=3 and %s dead: %d %s", victim.ID, r.Status, r.Body)
	}
	holders := hintHolders(t, c, "k", victim.ID)
	if len(holders) != 1 || !slices.Contains(pl.Fallbacks, holders[0]) {
		t.Fatalf("hint for %s held by %v; fallbacks are %v", victim.ID, holders, pl.Fallbacks)
	}
	testutil.Eventually(t, 10*time.Second, "the killed node is reported dead", func() bool {
		return statusOf(t, c.Nodes[0], victim.ID) == "dead"
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	restarted := time.Now()
	if err := c.Restart(ctx, victim); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "hint delivered and deleted", func() bool {
		l := call(t, "GET", base(victim)+"/admin/local/k", nil, nil)
		return l.Status == 200 && len(hintHolders(t, c, "k", victim.ID)) == 0
	})
	t.Logf("hint delivered %v after the restart began", time.Since(restarted).Round(time.Millisecond))
}

func TestDeadCoordinatorPutAndGetThroughAnotherNode(t *testing.T) {
	c := startCluster(t, devcluster.Config{Nodes: 5})
	var pl placement
	call(t, "GET", base(c.Nodes[0])+"/kv/dc/placement", nil, nil).json(t, &pl)
	first := nodeByID(t, c, pl.PreferenceList[0])
	if err := c.Kill(first); err != nil {
		t.Fatal(err)
	}
	// Enter through a node outside the preference list, so the write must
	// be forwarded past the dead coordinator, before and after detection.
	entry := nodeByID(t, c, pl.Fallbacks[0])
	for i, when := range []string{"before detection", "after detection"} {
		if i == 1 {
			testutil.Eventually(t, 10*time.Second, "detection", func() bool { return statusOf(t, entry, first.ID) == "dead" })
		}
		v := fmt.Sprintf("v%d", i)
		var ctxHeader map[string]string
		if g := call(t, "GET", base(entry)+"/kv/dc", nil, nil); g.context() != "" {
			ctxHeader = map[string]string{"X-Dynago-Context": g.context()}
		}
		if r := call(t, "PUT", base(entry)+"/kv/dc", []byte(v), ctxHeader); r.Status != 204 {
			t.Fatalf("PUT %s: %d %s", when, r.Status, r.Body)
		}
		if g := call(t, "GET", base(entry)+"/kv/dc", nil, nil); g.Status != 200 || string(g.Body) != v {
			t.Fatalf("GET %s: %d %q", when, g.Status, g.Body)
		}
	}
}

// TestWriteWithWholePreferenceListDead: with every primary of a key
// killed, a node outside its preference list still accepts the write (on
// the two surviving nodes, as hints), and the primaries hold it once they
// are back.
func TestWriteWithWholePreferenceListDead(t *testing.T) {
	c := startCluster(t, devcluster.Config{Nodes: 5, N: 3, W: 2})
	var pl placement
	call(t, "GET", base(c.Nodes[0])+"/kv/lonely/placement", nil, nil).json(t, &pl)
	for _, id := range pl.PreferenceList {
		if err := c.Kill(nodeByID(t, c, id)); err != nil {
			t.Fatal(err)
		}
	}
	entry := nodeByID(t, c, pl.Fallbacks[0])
	testutil.Eventually(t, 15*time.Second, "every primary reported dead", func() bool {
		for _, id := range pl.PreferenceList {
			if statusOf(t, entry, id) != "dead" {
				return false
			}
		}
		return true
	})
	if r := call(t, "PUT", base(entry)+"/kv/lonely", []byte("still writeable"), nil); r.Status != 204 {
		t.Fatalf("PUT with all of %v dead: %d %s", pl.PreferenceList, r.Status, r.Body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, id := range pl.PreferenceList {
		if err := c.Restart(ctx, nodeByID(t, c, id)); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 30*time.Second, "every primary holds the write", func() bool {
		for _, id := range pl.PreferenceList {
			if l := call(t, "GET", base(nodeByID(t, c, id))+"/admin/local/lonely", nil, nil); l.Status != 200 {
				return false
			}
		}
		return true
	})
	// A node whose failure detector has not yet seen the primaries back
	// still reads from the fallbacks, whose hints are delivered and gone:
	// it may answer 404 for a moment (sloppy quorum reads are eventually
	// consistent). Once it sees them alive it must read the write.
	testutil.Eventually(t, 15*time.Second, "the write reads back through "+c.Nodes[0].ID, func() bool {
		g := call(t, "GET", base(c.Nodes[0])+"/kv/lonely", nil, nil)
		return g.Status == 200 && string(g.Body) == "still writeable"
	})
}

func TestWipedDiskIsRestoredByAntiEntropy(t *testing.T) {
	c := startCluster(t, devcluster.Config{Nodes: 5})
	const total = 3000
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		bad  atomic.Int64
	)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				k := fmt.Sprintf("w-%04d", i)
				if r := call(t, "PUT", base(c.Nodes[(int(i)+w)%5])+"/kv/"+k, []byte(k), nil); r.Status != 204 {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if bad.Load() > 0 {
		t.Fatalf("%d puts failed", bad.Load())
	}
	victim := c.Nodes[2]
	var mine []string
	for i := range total {
		k := fmt.Sprintf("w-%04d", i)
		var pl placement
		call(t, "GET", base(c.Nodes[0])+"/kv/"+k+"/placement", nil, nil).json(t, &pl)
		if slices.Contains(pl.PreferenceList, victim.ID) {
			mine = append(mine, k)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.StopNode(victim); err != nil {
		t.Fatal(err)
	}
	wiped := time.Now()
	if err := c.Wipe(ctx, victim); err != nil {
		t.Fatal(err)
	}
	// Only anti-entropy may restore it: no reads of these keys until then.
	testutil.Eventually(t, 60*time.Second, "anti-entropy restores every key of the wiped node", func() bool {
		for _, k := range mine {
			if call(t, "GET", base(victim)+"/admin/local/"+k, nil, nil).Status != 200 {
				return false
			}
		}
		return true
	})
	t.Logf("%d keys restored %v after the wipe", len(mine), time.Since(wiped).Round(time.Millisecond))
	for i := range total {
		k := fmt.Sprintf("w-%04d", i)
		if g := call(t, "GET", base(c.Nodes[i%5])+"/kv/"+k, nil, nil); g.Status != 200 || string(g.Body) != k {
			t.Errorf("acknowledged %s lost: %d %q", k, g.Status, g.Body)
		}
	}
}
