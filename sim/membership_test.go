package sim

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// writer keeps writing new keys through random nodes while the test runs
// the cluster, recording what was acknowledged.
type writer struct {
	c      *Cluster
	next   int
	acked  map[string]bool
	prefix string
}

func (w *writer) issue(n int) {
	for range n {
		k := fmt.Sprintf("%s-%d", w.prefix, w.next)
		via := w.c.Nodes()[w.next%len(w.c.Nodes())]
		w.next++
		w.c.Submit(via, node.Request{Op: node.OpPut, Key: []byte(k), Value: []byte(k)}, func(r node.Reply) {
			if r.Code == node.CodeOK {
				w.acked[k] = true
			}
		})
	}
}

// runWriting advances time in small steps, writing all along, until cond.
func (w *writer) runWriting(t *testing.T, cond func() bool, limit time.Duration) {
	t.Helper()
	deadline := w.c.Now() + limit
	for !cond() {
		if w.c.Now() > deadline {
			t.Fatalf("not done within %v of virtual time", limit)
		}
		w.issue(2)
		w.c.RunFor(5 * time.Millisecond)
	}
}

// checkPlacement verifies every acknowledged key reads back and lives on
// exactly its preference list once the cluster settled.
func checkPlacement(t *testing.T, c *Cluster, acked map[string]bool) {
	t.Helper()
	rg := c.Ring()
	for k := range acked {
		if got := values(get(t, c, c.Nodes()[0], k)); !slices.Equal(got, []string{k}) {
			t.Fatalf("acknowledged %s reads %v", k, got)
		}
	}
	for _, id := range c.Nodes() {
		if c.Node(id) == nil {
			continue
		}
		lo, hi := []byte{'o'}, []byte{'p'}
		err := c.Disk(id).Scan(lo, hi, func(sk, v []byte) error {
			p, uk, ok := storage.ParseObjectKey(sk)
			if !ok {
				return nil
			}
			if !slices.Contains(rg.PreferenceList(p), id) {
				return fmt.Errorf("%s still holds %s of partition %d, replicated by %v", id, uk, p, rg.PreferenceList(p))
			}
			if _, err := object.Decode(v); err != nil {
				return err
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for k := range acked {
		for _, id := range rg.PreferenceList(rg.PartitionOf([]byte(k))) {
			if _, ok := localCopy(t, c, id, k); !ok {
				t.Fatalf("%s is a replica of %s but does not hold it", id, k)
			}
		}
	}
}

func balanced(t *testing.T, rg *ring.Ring, members int) {
	t.Helper()
	counts := rg.PartitionCounts()
	lo, hi := rg.Partitions(), 0
	for _, n := range counts {
		lo, hi = min(lo, n), max(hi, n)
	}
	if len(counts) != members || hi-lo > 1 {
		t.Fatalf("partition counts %v: want %d members differing by at most one", counts, members)
	}
}

// loadedCluster is the setup every test here shares: a 5-node cluster
// with fast anti-entropy holding n settled writes, and the writer that
// made them, to keep writing through the transition.
func loadedCluster(t *testing.T, seed uint64, prefix string, n int) (*Cluster, *writer) {
	t.Helper()
	c := newCluster(t, Config{Seed: seed, AEInterval: 20 * time.Millisecond})
	w := &writer{c: c, acked: map[string]bool{}, prefix: prefix}
	w.issue(n)
	if err := c.Settle(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	return c, w
}

// commitJoin adds n6, lets gossip bring it the ring and commits its join
// through n1, the claimant.
func commitJoin(t *testing.T, c *Cluster) (ring.NodeID, node.Plan) {
	t.Helper()
	n6, err := c.AddNode()
	if err != nil {
		t.Fatal(err)
	}
	c.RunFor(50 * time.Millisecond)
	plan, err := c.Commit("n1")
	if err != nil {
		t.Fatal(err)
	}
	return n6, plan
}

// converges runs until the replicas agree and no node holds data outside
// its partitions: the handoffs after the switch are done.
func converges(t *testing.T, c *Cluster) {
	t.Helper()
	if err := c.RunUntil(func() bool { return converged(c) && dropsDone(c) }, 30*time.Second); err != nil {
		t.Fatal("did not converge after the switch")
	}
}

func TestJoinUnderLoad(t *testing.T) {
	c, w := loadedCluster(t, 41, "j", 400)
	before := maps.Clone(w.acked)
	n6, plan := commitJoin(t, c)
	if !slices.Equal(plan.Joining, []ring.NodeID{n6}) || len(plan.Moves) == 0 {
		t.Fatalf("plan %+v", plan)
	}
	w.runWriting(t, func() bool { return !c.InTransition() && c.Ring().Contains(n6) }, 60*time.Second)
	// Ownership switched only once the newcomer held everything: right at
	// the switch, before anti-entropy could help, it has every key
	// acknowledged before the commit in the partitions it now replicates.
	rg := c.Ring()
	for k := range before {
		if slices.Contains(rg.PreferenceList(rg.PartitionOf([]byte(k))), n6) {
			if _, ok := localCopy(t, c, n6, k); !ok {
				t.Fatalf("ring switched but %s lacks %s", n6, k)
			}
		}
	}
	w.issue(50)
	if err := c.Settle(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	converges(t, c) // post-switch hand-offs and anti-entropy
	balanced(t, c.Ring(), 6)
	checkPlacement(t, c, w.acked)
	t.Logf("%d writes acknowledged; ring version %d", len(w.acked), c.Ring().Version())
}

func TestLeaveUnderLoad(t *testing.T) {
	c, w := loadedCluster(t, 42, "l", 400)
	if err := c.StageLeave("n2", "n4"); err != nil {
		t.Fatal(err)
	}
	c.RunFor(20 * time.Millisecond)
	plan, err := c.Commit("n3")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(plan.Leaving, []ring.NodeID{"n4"}) {
		t.Fatalf("plan %+v", plan)
	}
	w.runWriting(t, func() bool { return !c.InTransition() && !c.Ring().Contains("n4") }, 60*time.Second)
	if err := c.Settle(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	converges(t, c)
	balanced(t, c.Ring(), 4)
	checkPlacement(t, c, w.acked)
}

// A claimant crash in the middle of a transition loses nothing: when it
// comes back the transition resumes from its persisted state.
func TestClaimantCrashDuringJoin(t *testing.T) {
	c, w := loadedCluster(t, 43, "x", 300)
	commitJoin(t, c)
	c.RunFor(30 * time.Millisecond)
	c.Crash("n1")
	c.RunFor(time.Second)
	if err := c.Restart("n1"); err != nil {
		t.Fatal(err)
	}
	w.runWriting(t, func() bool { return !c.InTransition() && c.Ring().Contains("n6") }, 60*time.Second)
	converges(t, c)
	checkPlacement(t, c, w.acked)
}

// dropsDone reports whether no node holds data outside its partitions.
func dropsDone(c *Cluster) bool {
	for _, id := range c.Nodes() {
		if c.Node(id) != nil && holdsForeign(c, id) {
			return false
		}
	}
	return true
}

var errStop = fmt.Errorf("stop")

// A node that restarts after the switch but before it dropped the data it
// no longer replicates finds that data at boot and hands it off.
func TestRestartBeforeCleanupResumesIt(t *testing.T) {
	c, w := loadedCluster(t, 44, "r", 300)
	commitJoin(t, c)
	var victim ring.NodeID
	w.runWriting(t, func() bool {
		if c.InTransition() || !c.Ring().Contains("n6") {
			return false
		}
		// The moment the switch lands: crash a node still holding data it
		// no longer replicates.
		for _, id := range c.Nodes() {
			if c.Node(id) != nil && holdsForeign(c, id) {
				victim = id
				return true
			}
		}
		return true
	}, 60*time.Second)
	if victim == "" {
		t.Skip("every node had already cleaned up at the switch; nothing to crash")
	}
	c.Crash(victim)
	c.RunFor(100 * time.Millisecond)
	if err := c.Restart(victim); err != nil {
		t.Fatal(err)
	}
	if err := c.RunUntil(func() bool { return dropsDone(c) && converged(c) }, 30*time.Second); err != nil {
		t.Fatalf("%s never finished its cleanup after the restart", victim)
	}
	checkPlacement(t, c, w.acked)
}

func holdsForeign(c *Cluster, id ring.NodeID) bool {
	rg := c.Ring()
	foreign := false
	_ = c.Disk(id).Scan([]byte{'o'}, []byte{'p'}, func(sk, _ []byte) error {
		if p, _, ok := storage.ParseObjectKey(sk); ok && !slices.Contains(rg.PreferenceList(p), id) {
			foreign = true
			return errStop
		}
		return nil
	})
	return foreign
}

// A node that hears of the ring switch late and forwards a write to the
// node that just left is stale_ring.txt (TestScenarios): the leaver refuses
// to coordinate and no copy stays behind.
