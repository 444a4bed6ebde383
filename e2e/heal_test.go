package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dynago/dynago/devcluster"
	"github.com/dynago/dynago/internal/testutil"
)

// allSeeAll reports who, if anyone, does not see every other node alive.
func allSeeAll(t *testing.T, c *devcluster.Cluster, want string) string {
	t.Helper()
	for _, via := range c.Nodes {
		var cb clusterBody
		call(t, "GET", base(via)+"/cluster", nil, nil).json(t, &cb)
		seen := 0
		for _, n := range cb.Nodes {
			if n.ID == via.ID {
				continue
			}
			seen++
			if n.Status != want {
				return fmt.Sprintf("%s sees %s %s", via.ID, n.ID, n.Status)
			}
		}
		if seen != len(c.Nodes)-1 {
			return fmt.Sprintf("%s lists %d others", via.ID, seen)
		}
	}
	return ""
}

// TestLongPartitionHeals is issue #8's "membership that heals" on real
// processes: n1 is cut off from the other four through the fault API, for
// longer than memberlist keeps gossiping to members it declared dead (15 s
// in the lab preset: before that a heal is noticed even without the
// reconnect loop), and once healed every node must see every other alive
// within 15 s and a W=3 write through n1 must succeed.
func TestLongPartitionHeals(t *testing.T) {
	if testing.Short() {
		t.Skip("holds a partition for 20 s")
	}
	c := startCluster(t, devcluster.Config{Nodes: 5})
	n1 := c.Nodes[0]
	testutil.Eventually(t, 15*time.Second, "everyone sees everyone alive at start", func() bool { return allSeeAll(t, c, "alive") == "" })

	out, err := exec.Command(binary, "fault", "partition", "n1", "--from", "n2,n3,n4,n5", "--addr", c.Nodes[1].HTTPAddr).CombinedOutput()
	if err != nil {
		t.Fatalf("fault partition: %v\n%s", err, out)
	}
	cut := time.Now()
	// Both sides must really have declared the other dead: that is where
	// memberlist stops trying by itself.
	testutil.Eventually(t, 20*time.Second, "both sides of the partition mark each other dead", func() bool {
		for _, other := range c.Nodes[1:] {
			if statusOf(t, n1, other.ID) != "dead" || statusOf(t, other, "n1") != "dead" {
				return false
			}
		}
		return true
	})
	dead := time.Now()
	t.Logf("both sides mark each other dead %v after the cut", dead.Sub(cut).Round(time.Millisecond))
	// Cut off, n1 can serve no request with the default quorums: its
	// readiness probe says so (liveness stays fine), and the majority's
	// stay ready.
	if a, ok := readyz(n1); !ok || a.status != 503 || a.Reason != "cut off" {
		t.Errorf("n1's /readyz while cut off: %+v (answered %v); want 503 \"cut off\"", a, ok)
	}
	if h := call(t, "GET", base(n1)+"/healthz", nil, nil); h.Status != 200 {
		t.Errorf("n1's /healthz while cut off: %d", h.Status)
	}
	for _, other := range c.Nodes[1:] {
		if a, ok := readyz(other); !ok || a.status != 200 {
			t.Errorf("%s's /readyz on the majority side: %+v (answered %v); want 200", other.ID, a, ok)
		}
	}
	time.Sleep(time.Until(dead.Add(17 * time.Second)))
	for _, other := range c.Nodes[1:] {
		if s := statusOf(t, n1, other.ID); s != "dead" {
			t.Fatalf("the partition leaked: n1 sees %s %s", other.ID, s)
		}
	}

	out, err = exec.Command(binary, "fault", "heal", "--addr", c.Nodes[1].HTTPAddr).CombinedOutput()
	if err != nil {
		t.Fatalf("fault heal: %v\n%s", err, out)
	}
	healed := time.Now()
	t.Logf("healed after a partition of %v", healed.Sub(cut).Round(time.Second))
	const bound = 15 * time.Second
	var last string
	for {
		if last = allSeeAll(t, c, "alive"); last == "" {
			break
		}
		if time.Since(healed) > bound {
			t.Fatalf("%v after the heal: %s", bound, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("every node sees every other alive %v after the heal", time.Since(healed).Round(time.Millisecond))
	if a, ok := readyz(n1); !ok || a.status != 200 {
		t.Errorf("n1's /readyz after the heal: %+v (answered %v); want 200", a, ok)
	}

	// The write that was impossible while n1 was cut off: all three
	// replicas must acknowledge, through n1.
	key := base(n1) + "/kv/healed?w=3"
	for {
		r := call(t, "PUT", key, []byte("after the heal"), nil)
		if r.Status == 204 {
			break
		}
		if time.Since(healed) > bound {
			t.Fatalf("W=3 PUT through n1 %v after the heal: %d %s", bound, r.Status, r.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("W=3 write through n1 acknowledged %v after the heal", time.Since(healed).Round(time.Millisecond))
	for _, via := range c.Nodes {
		r := call(t, "GET", base(via)+"/kv/healed?r=3", nil, nil)
		if r.Status != 200 || !strings.Contains(string(r.Body), "after the heal") {
			t.Errorf("R=3 GET through %s: %d %s", via.ID, r.Status, r.Body)
		}
	}
	// The healing shows in the metrics operators watch.
	m := call(t, "GET", base(n1)+"/metrics", nil, nil)
	for _, want := range []string{`dynago_member_status{peer="n2"} 2`, "dynago_gossip_reconnects_total"} {
		if !strings.Contains(string(m.Body), want) {
			t.Errorf("n1 /metrics lacks %q", want)
		}
	}
}
