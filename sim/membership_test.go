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

func TestJoinUnderLoad(t *testing.T) {
	c := newCluster(t, Config{Seed: 41, AEInterval: 20 * time.Millisecond})
	w := &writer{c: c, acked: map[string]bool{}, prefix: "j"}
	w.issue(400)
	if err := c.Settle(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	before := maps.Clone(w.acked)
	n6, err := c.AddNode()
	if err != nil {
		t.Fatal(err)
	}
	c.RunFor(50 * time.Millisecond) // gossip brings n6 the ring
	plan, err := c.Commit("n1")
	if err != nil {
		t.Fatal(err)
	}
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
	// Let post-switch hand-offs and anti-entropy finish.
	if err := c.RunUntil(func() bool { return converged(c) && dropsDone(c) }, 30*time.Second); err != nil {
		t.Fatal("did not converge after the switch")
	}
	balanced(t, c.Ring(), 6)
	checkPlacement(t, c, w.acked)
	t.Logf("%d writes acknowledged; ring version %d", len(w.acked), c.Ring().Version())
}

func TestLeaveUnderLoad(t *testing.T) {
	c := newCluster(t, Config{Seed: 42, AEInterval: 20 * time.Millisecond})
	w := &writer{c: c, acked: map[string]bool{}, prefix: "l"}
	w.issue(400)
	if err := c.Settle(10 * time.Second); err != nil {
		t.Fatal(err)
	}
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
	if err := c.RunUntil(func() bool { return converged(c) && dropsDone(c) }, 30*time.Second); err != nil {
		t.Fatal("did not converge after the switch")
	}
	balanced(t, c.Ring(), 4)
	checkPlacement(t, c, w.acked)
}

// A claimant crash in the middle of a transition loses nothing: when it
// comes back the transition resumes from its persisted state.
func TestClaimantCrashDuringJoin(t *testing.T) {
	c := newCluster(t, Config{Seed: 43, AEInterval: 20 * time.Millisecond})
	w := &writer{c: c, acked: map[string]bool{}, prefix: "x"}
	w.issue(300)
	if err := c.Settle(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddNode(); err != nil {
		t.Fatal(err)
	}
	c.RunFor(50 * time.Millisecond)
	if _, err := c.Commit("n1"); err != nil {
		t.Fatal(err)
	}
	c.RunFor(30 * time.Millisecond)
	c.Crash("n1")
	c.RunFor(time.Second)
	if err := c.Restart("n1"); err != nil {
		t.Fatal(err)
	}
	w.runWriting(t, func() bool { return !c.InTransition() && c.Ring().Contains("n6") }, 60*time.Second)
	if err := c.RunUntil(func() bool { return converged(c) && dropsDone(c) }, 30*time.Second); err != nil {
		t.Fatal("did not converge")
	}
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
	c := newCluster(t, Config{Seed: 44, AEInterval: 20 * time.Millisecond})
	w := &writer{c: c, acked: map[string]bool{}, prefix: "r"}
	w.issue(300)
	if err := c.Settle(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddNode(); err != nil {
		t.Fatal(err)
	}
	c.RunFor(50 * time.Millisecond)
	if _, err := c.Commit("n1"); err != nil {
		t.Fatal(err)
	}
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

// A node that hears of the ring switch late keeps forwarding writes by the
// old ring. The node it forwards to may, by the new ring, no longer be a
// replica of the key — here the node that just left. That node must not
// coordinate the write and keep a copy outside the preference list: it
// sends the forwarder on to a replica of its ring, and no copy stays behind.
func TestForwardByStaleRingToFormerReplica(t *testing.T) {
	c := newCluster(t, Config{Seed: 45, AEInterval: 20 * time.Millisecond})
	w := &writer{c: c, acked: map[string]bool{}, prefix: "s"}
	w.issue(200)
	if err := c.Settle(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	const leaver, claimant = ring.NodeID("n4"), ring.NodeID("n1")
	if err := c.StageLeave(claimant, leaver); err != nil {
		t.Fatal(err)
	}
	c.RunFor(20 * time.Millisecond)
	if _, err := c.Commit(claimant); err != nil {
		t.Fatal(err)
	}
	// The moment the claimant switches the ring, every other node but the
	// leaver stops hearing gossip: they keep routing by the old ring.
	if err := c.RunUntil(func() bool { return !c.Node(claimant).State().InTransition() }, 60*time.Second); err != nil {
		t.Fatal("the transition never ended")
	}
	oldRing, newRing := c.Node("n2").Ring(), c.Node(claimant).Ring()
	if oldRing.Contains(leaver) == newRing.Contains(leaver) {
		t.Fatalf("old ring v%d and new ring v%d both contain %s or both do not", oldRing.Version(), newRing.Version(), leaver)
	}
	for _, id := range c.Nodes() {
		if id != claimant {
			c.HoldGossip(id)
		}
	}
	c.ReleaseGossip(leaver)
	// The leaver hands off and drops everything it held.
	if err := c.RunUntil(func() bool { return !holdsForeign(c, leaver) }, 30*time.Second); err != nil {
		t.Fatalf("%s never dropped its data", leaver)
	}
	if c.Node(leaver).Ring().Version() != newRing.Version() {
		t.Fatalf("%s did not get the new ring", leaver)
	}
	// Keys whose old preference list starts with the leaver, written
	// through a node outside that list which still has the old ring.
	acked := map[string]bool{}
	for i := 0; len(acked) < 5 && i < 10000; i++ {
		k := fmt.Sprintf("late-%d", i)
		old := oldRing.PreferenceList(oldRing.PartitionOf([]byte(k)))
		if old[0] != leaver {
			continue
		}
		var via ring.NodeID
		for _, id := range []ring.NodeID{"n2", "n3", "n5"} {
			if !slices.Contains(old, id) {
				via = id
				break
			}
		}
		if via == "" {
			continue
		}
		r := do(t, c, via, node.Request{Op: node.OpPut, Key: []byte(k), Value: []byte(k)})
		if r.Code != node.CodeOK {
			t.Fatalf("put %s via %s (old ring): %s %s", k, via, r.Code, r.Err)
		}
		if !slices.Contains(newRing.PreferenceList(newRing.PartitionOf([]byte(k))), r.Trace.Coordinator) {
			t.Fatalf("%s coordinated %s, which it does not replicate by the new ring", r.Trace.Coordinator, k)
		}
		acked[k] = true
		w.acked[k] = true
	}
	if len(acked) == 0 {
		t.Fatal("no key fits the scenario")
	}
	for _, id := range c.Nodes() {
		c.ReleaseGossip(id)
	}
	if err := c.RunUntil(func() bool { return converged(c) && dropsDone(c) }, 30*time.Second); err != nil {
		for k := range acked {
			if _, ok := localCopy(t, c, leaver, k); ok {
				t.Errorf("%s still holds %s", leaver, k)
			}
		}
		t.Fatal("data outside the preference lists was never dropped")
	}
	checkPlacement(t, c, w.acked)
}
