package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynago/dynago/devcluster"
	"github.com/dynago/dynago/internal/testutil"
)

// loadWriter writes fresh keys through every running node until stopped,
// remembering which were acknowledged.
type loadWriter struct {
	mu    sync.Mutex
	acked []string
	fails int
	stop  chan struct{}
	done  chan struct{}
}

func startWriter(t *testing.T, c *devcluster.Cluster, prefix string) *loadWriter {
	w := &loadWriter{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			nodes := c.List()
			n := nodes[i%len(nodes)]
			if !n.Running() {
				continue
			}
			k := fmt.Sprintf("%s-%05d", prefix, i)
			// Not call(): this goroutine must not end the test.
			resp, err := httpClient.Post(base(n)+"/kv/"+k, "application/octet-stream", strings.NewReader(k))
			status := 0
			if err == nil {
				status = resp.StatusCode
				resp.Body.Close()
			}
			w.mu.Lock()
			if status == 204 {
				w.acked = append(w.acked, k)
			} else {
				w.fails++
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *loadWriter) finish() ([]string, int) {
	close(w.stop)
	<-w.done
	return w.acked, w.fails
}

type clusterFull struct {
	RingVersion uint64 `json:"ring_version"`
	Nodes       []struct {
		ID         string `json:"id"`
		Status     string `json:"status"`
		Partitions int    `json:"partitions"`
	} `json:"nodes"`
	Handoff *struct {
		InProgress bool `json:"in_progress"`
		Total      int  `json:"total"`
		Done       int  `json:"done"`
		// NoProgressMS: how long no transfer has completed.
		NoProgressMS int64 `json:"no_progress_ms"`
	} `json:"handoff"`
}

func clusterOf(t *testing.T, n *devcluster.Node) clusterFull {
	t.Helper()
	var cb clusterFull
	call(t, "GET", base(n)+"/cluster", nil, nil).json(t, &cb)
	return cb
}

// checkAfterChange verifies the must-shows of a membership change: balance,
// every acknowledged key readable, placement showing the new owners, and
// data only on the preference list once handoff ended.
func checkAfterChange(t *testing.T, c *devcluster.Cluster, acked []string, members int) {
	t.Helper()
	entry := c.Nodes[0]
	cb := clusterOf(t, entry)
	lo, hi, owners := 1<<30, 0, 0
	for _, n := range cb.Nodes {
		if n.Partitions > 0 {
			owners++
			lo, hi = min(lo, n.Partitions), max(hi, n.Partitions)
		}
	}
	if owners != members || hi-lo > 1 {
		t.Fatalf("partition owners %+v: want %d members differing by at most one", cb.Nodes, members)
	}
	placements := map[string][]string{}
	for _, k := range acked {
		g := call(t, "GET", base(entry)+"/kv/"+k, nil, nil)
		if g.Status != 200 || string(g.Body) != k {
			t.Fatalf("acknowledged %s: %d %q", k, g.Status, g.Body)
		}
		var pl placement
		call(t, "GET", base(entry)+"/kv/"+k+"/placement", nil, nil).json(t, &pl)
		placements[k] = pl.PreferenceList
	}
	testutil.Eventually(t, 60*time.Second, "data only on the new preference lists", func() bool {
		for _, k := range acked {
			for _, n := range c.Nodes {
				if !n.Running() {
					continue
				}
				l := call(t, "GET", base(n)+"/admin/local/"+k, nil, nil)
				if (l.Status == 200) != slices.Contains(placements[k], n.ID) {
					return false
				}
			}
		}
		return true
	})
}

func TestJoinUnderLoad(t *testing.T) {
	c := startCluster(t, devcluster.Config{Nodes: 5, HTTPBasePort: freeBase(t, 6)})
	w := startWriter(t, c, "join")
	time.Sleep(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n6, err := c.AddNode(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Gossip reaches the members one by one: n3, through which the plan
	// and commit below run, must see n6 as well as n1 does.
	testutil.Eventually(t, 15*time.Second, "n6 is seen alive by n1 and n3", func() bool {
		return statusOf(t, c.Nodes[0], n6.ID) == "alive" && statusOf(t, c.Nodes[2], n6.ID) == "alive"
	})

	// The operator's commands, through the CLI against any node.
	out, err := exec.Command(binary, "admin", "plan", "--addr", c.Nodes[2].HTTPAddr).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "joining: n6") {
		t.Fatalf("admin plan: %v\n%s", err, out)
	}
	out, err = exec.Command(binary, "admin", "commit", "--addr", c.Nodes[2].HTTPAddr).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "committed") {
		t.Fatalf("admin commit: %v\n%s", err, out)
	}
	sawProgress := false
	testutil.Eventually(t, 90*time.Second, "the handoff ends", func() bool {
		cb := clusterOf(t, c.Nodes[0])
		if cb.Handoff != nil && cb.Handoff.InProgress {
			sawProgress = true
			return false
		}
		for _, n := range cb.Nodes {
			if n.ID == n6.ID && n.Partitions > 0 {
				return true
			}
		}
		return false
	})
	acked, fails := w.finish()
	t.Logf("%d writes acknowledged during the test, %d failed; progress shown: %v", len(acked), fails, sawProgress)
	status, err := exec.Command(binary, "status", "--addr", n6.HTTPAddr).CombinedOutput()
	if err != nil || !strings.Contains(string(status), "n6") {
		t.Fatalf("status via the new node: %v\n%s", err, status)
	}
	checkAfterChange(t, c, acked, 6)
}

func TestLeaveUnderLoad(t *testing.T) {
	c := startCluster(t, devcluster.Config{Nodes: 5})
	w := startWriter(t, c, "leave")
	time.Sleep(time.Second)
	r := call(t, "POST", base(c.Nodes[0])+"/admin/leave/n3", nil, nil)
	if r.Status != 200 {
		t.Fatalf("leave: %d %s", r.Status, r.Body)
	}
	// The staged leave reaches the other nodes by gossip, not all at the
	// same moment: wait for every node, n2 (which commits below) included.
	testutil.Eventually(t, 10*time.Second, "the staged leave shows in every node's plan", func() bool {
		for _, n := range c.Nodes {
			var plan struct {
				Leaving []string `json:"leaving"`
				Moves   []any    `json:"moves"`
			}
			call(t, "GET", base(n)+"/admin/plan", nil, nil).json(t, &plan)
			if !slices.Equal(plan.Leaving, []string{"n3"}) || len(plan.Moves) == 0 {
				return false
			}
		}
		return true
	})
	if r := call(t, "POST", base(c.Nodes[1])+"/admin/commit", nil, nil); r.Status != 200 {
		t.Fatalf("commit: %d %s", r.Status, r.Body)
	}
	// A second commit while the first runs is refused, clearly.
	if r := call(t, "POST", base(c.Nodes[1])+"/admin/commit", nil, nil); r.Status != 409 {
		t.Errorf("second commit during a transition: %d %s", r.Status, r.Body)
	}
	testutil.Eventually(t, 90*time.Second, "n3 owns nothing", func() bool {
		cb := clusterOf(t, c.Nodes[0])
		for _, n := range cb.Nodes {
			if n.ID == "n3" {
				return n.Partitions == 0 && (cb.Handoff == nil || !cb.Handoff.InProgress)
			}
		}
		return true
	})
	acked, fails := w.finish()
	t.Logf("%d writes acknowledged during the test, %d failed", len(acked), fails)
	checkAfterChange(t, c, acked, 4)
}
