package sim

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

// Reads that do not lie: what counts toward R, which nodes a get asks, and
// how fast it gives up. N=3, R=2, W=2 on five nodes throughout, so every
// key has three primaries and two fallbacks.

// others returns the cluster's nodes except the given ones.
func others(c *Cluster, except ...ring.NodeID) []ring.NodeID {
	return slices.DeleteFunc(c.Nodes(), func(id ring.NodeID) bool { return slices.Contains(except, id) })
}

// A key never written still reads 404 when R primaries say so, even with
// the coordinator's detector marking one of them dead.
func TestMissingKeyIs404FromPrimaries(t *testing.T) {
	c := newCluster(t, Config{Seed: 103})
	pl := preflist(c, "absent")
	outsider := notIn(c, pl)
	c.Believe(outsider, pl[0], node.Dead)
	r := get(t, c, outsider, "absent")
	if r.Code != node.CodeNotFound || r.Acks < 2 {
		t.Fatalf("got %s acks=%d, want not_found from 2 primaries", r.Code, r.Acks)
	}
}

// Two of a key's three primaries go silent (alive to the detector, as a
// SIGSTOPped process is for a while). A read moves to the fallbacks after
// the replica timeout, as a write does: it answers from their hints when
// they hold the key, and otherwise fails fast.
func TestReadMovesToFallbacksWhenPrimariesGoSilent(t *testing.T) {
	c := newCluster(t, Config{Seed: 104, RequestTimeout: 3 * time.Second})
	pl := preflist(c, "paused")
	live, silent := pl[0], pl[1:]
	c.Partition(silent, others(c, silent...))
	// Written after the pause: the silent primaries' copies go to the
	// fallbacks as hints.
	put(t, c, live, "paused", "v", nil)
	start := c.Now()
	r := get(t, c, live, "paused")
	took := c.Now() - start
	if r.Code != node.CodeOK || !slices.Equal(values(r), []string{"v"}) {
		t.Fatalf("read with two primaries silent: %s %v (%s)", r.Code, values(r), r.Err)
	}
	if took > 300*time.Millisecond {
		t.Fatalf("answered after %v; want about the replica timeout (100 ms), not the 3 s request timeout", took)
	}
	// A key written before the pause has no hints: R=2 cannot be reached,
	// and the 503 comes just as fast.
	c.Heal()
	before := ""
	for i := 0; i < 1000 && before == ""; i++ {
		if k := fmt.Sprintf("before-%d", i); slices.Equal(preflist(c, k), pl) {
			before = k
		}
	}
	if before == "" {
		t.Fatal("setup: no key shares the preference list")
	}
	put(t, c, live, before, "v", nil)
	if err := c.Settle(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	c.Partition(silent, others(c, silent...))
	start = c.Now()
	r = get(t, c, live, before)
	took = c.Now() - start
	if r.Code != node.CodeQuorumFailed {
		t.Fatalf("got %s %v, want quorum_failed: only one primary answers and no fallback holds the key", r.Code, values(r))
	}
	if took > 300*time.Millisecond {
		t.Fatalf("503 after %v; want it about the replica timeout, not the 3 s request timeout", took)
	}
}

// Hints for a node that leaves the ring while down go to the keys' new
// owners; none is kept forever for a node that will never return.
func TestRemovedNodesHintsReachNewOwners(t *testing.T) {
	c := newCluster(t, Config{Seed: 105, AEInterval: -1})
	gone := ring.NodeID("n4")
	c.Crash(gone)
	c.RunFor(time.Second)
	var keys []string
	for i := 0; len(keys) < 40 && i < 1000; i++ {
		k := fmt.Sprintf("h%d", i)
		if slices.Contains(preflist(c, k), gone) {
			keys = append(keys, k)
			put(t, c, "n1", k, k, nil)
		}
	}
	if err := c.Settle(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	held := 0
	for _, id := range others(c, gone) {
		held += c.Node(id).HintsHeld()[gone]
	}
	if held < len(keys) {
		t.Fatalf("setup: %d hints held for %s, want at least %d", held, gone, len(keys))
	}
	if err := c.StageLeave("n1", gone); err != nil {
		t.Fatal(err)
	}
	c.RunFor(20 * time.Millisecond)
	if _, err := c.Commit("n2"); err != nil {
		t.Fatal(err)
	}
	if err := c.RunUntil(func() bool { return !c.InTransition() && !c.Ring().Contains(gone) }, 60*time.Second); err != nil {
		t.Fatal("the leave did not complete")
	}
	err := c.RunUntil(func() bool {
		for _, id := range others(c, gone) {
			if c.Node(id).HintsHeld()[gone] > 0 {
				return false
			}
		}
		return true
	}, 30*time.Second)
	if err != nil {
		for _, id := range others(c, gone) {
			t.Logf("%s holds %v", id, c.Node(id).HintsHeld())
		}
		t.Fatalf("hints for %s, which left the ring, were never delivered", gone)
	}
	// With anti-entropy off, every current replica of each key holds it.
	if err := c.Settle(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	missing := 0
	for _, k := range keys {
		for _, id := range preflist(c, k) {
			if _, ok := localCopy(t, c, id, k); !ok {
				missing++
			}
		}
	}
	t.Logf("%d keys hinted for %s; %d replica copies missing after the leave (handoff and hints)", len(keys), gone, missing)
	for _, k := range keys {
		if got := values(get(t, c, "n1", k)); !slices.Equal(got, []string{k}) {
			t.Fatalf("%s reads %v after %s left", k, got, gone)
		}
	}
}

// A write stored only as hints (every primary was down), one of whose
// hints is then lost with its fallback's disk while the other cannot reach
// its primary, still reaches every primary: the stuck hint is copied to
// the other primaries and anti-entropy carries it on.
func TestLostHintIsRepairedByAntiEntropy(t *testing.T) {
	c := newCluster(t, Config{Seed: 106, AEInterval: 20 * time.Millisecond})
	pl := preflist(c, "orphan")
	fbs := c.Ring().Fallbacks(c.Ring().PartitionOf([]byte("orphan")))
	for _, p := range pl {
		c.Crash(p)
	}
	c.RunFor(time.Second)
	r := put(t, c, fbs[0], "orphan", "v", nil)
	if r.Acks < 2 {
		t.Fatalf("acks %d", r.Acks)
	}
	if err := c.Settle(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	// The first fallback's hint is lost with its disk; the second's cannot
	// reach the primary it names.
	c.Wipe(fbs[0])
	if err := c.Restart(fbs[0]); err != nil {
		t.Fatal(err)
	}
	var stuckFor ring.NodeID
	for _, p := range pl {
		if len(hintsFor(t, c, p, "orphan")) > 0 {
			stuckFor = p
		}
	}
	if stuckFor == "" {
		t.Fatal("setup: no hint survived on the second fallback")
	}
	c.Partition([]ring.NodeID{fbs[1]}, []ring.NodeID{stuckFor})
	for _, p := range pl {
		if err := c.Restart(p); err != nil {
			t.Fatal(err)
		}
	}
	err := c.RunUntil(func() bool {
		for _, p := range pl {
			if o, ok := localCopy(t, c, p, "orphan"); !ok || len(o.Live()) != 1 || string(o.Live()[0].Value) != "v" {
				return false
			}
		}
		return true
	}, 30*time.Second)
	if err != nil {
		t.Fatalf("the hinted write never reached every primary (hint for %s stuck on %s)", stuckFor, fbs[1])
	}
	if len(hintsFor(t, c, stuckFor, "orphan")) == 0 {
		t.Fatal("the stuck hint was deleted although its primary never acknowledged it")
	}
	// Healed, the hint is delivered and deleted.
	c.Heal()
	if err := c.RunUntil(func() bool { return len(hintsFor(t, c, stuckFor, "orphan")) == 0 }, 30*time.Second); err != nil {
		t.Fatal("hint not delivered after the heal")
	}
}
