package sim

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// hintsFor lists the nodes holding a hint for primary and key.
func hintsFor(t *testing.T, c *Cluster, primary ring.NodeID, key string) []ring.NodeID {
	t.Helper()
	var out []ring.NodeID
	for _, id := range c.Nodes() {
		_, err := c.Disk(id).Get(storage.HintKey(string(primary), c.Ring().PartitionOf([]byte(key)), []byte(key)))
		if err == nil {
			out = append(out, id)
		} else if !errors.Is(err, storage.ErrNotFound) {
			t.Fatal(err)
		}
	}
	return out
}

// A primary that is alive to the failure detector but does not answer (a
// partition) gets a fallback after the replica timeout.
func TestSilentPrimaryGetsFallbackAfterReplicaTimeout(t *testing.T) {
	c := newCluster(t, Config{Seed: 22, W: 3, ReplicaTimeout: 50 * time.Millisecond})
	pl := preflist(c, "s")
	silent := pl[2]
	c.Partition([]ring.NodeID{silent}, slices.DeleteFunc(c.Nodes(), func(id ring.NodeID) bool { return id == silent }))
	start := c.Now()
	r := put(t, c, pl[0], "s", "v", nil)
	if took := c.Now() - start; took < 50*time.Millisecond {
		t.Fatalf("answered after %v, before the replica timeout", took)
	}
	if r.Acks != 3 {
		t.Fatalf("acks = %d", r.Acks)
	}
	if err := c.Settle(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if len(hintsFor(t, c, silent, "s")) != 1 {
		t.Fatal("no hint for the silent primary")
	}
	// The partition heals; the detector never saw the primary die, so the
	// periodic hint sweep delivers it.
	c.Heal()
	if err := c.RunUntil(func() bool { return len(hintsFor(t, c, silent, "s")) == 0 }, 5*time.Second); err != nil {
		t.Fatal("hint never delivered after the partition healed")
	}
	if _, ok := localCopy(t, c, silent, "s"); !ok {
		t.Fatal("primary does not hold the handed-off write")
	}
}

// TestWriteWithEveryPrimaryDownGoesToFallbacks: when a node outside the
// preference list cannot reach any primary, it coordinates the write on
// fallbacks as hints (Dynamo's "always writeable"), the write reads back
// through the same node's fallbacks once the primaries return, and a
// later write with its context supersedes it everywhere.
func TestWriteWithEveryPrimaryDownGoesToFallbacks(t *testing.T) {
	c := newCluster(t, Config{Seed: 23, W: 2})
	pl := preflist(c, "all-down")
	via := notIn(c, pl)
	for _, id := range pl {
		c.Crash(id)
	}
	c.RunFor(time.Second) // detection

	first := put(t, c, via, "all-down", "v1", nil)
	if first.Acks != 2 || first.Trace == nil || first.Trace.Coordinator != via {
		t.Fatalf("put with every primary down: acks %d, trace %+v; want 2 fallback acks, coordinated by %s", first.Acks, first.Trace, via)
	}
	if err := c.Settle(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	var hinted int
	for _, primary := range pl {
		hinted += len(hintsFor(t, c, primary, "all-down"))
	}
	if hinted != 2 {
		t.Fatalf("%d hints stored for the primaries, want 2 (one per reachable fallback)", hinted)
	}

	for _, id := range pl {
		if err := c.Restart(id); err != nil {
			t.Fatal(err)
		}
	}
	// The hinted primaries get the write; anti-entropy and read repair
	// bring the third.
	if err := c.RunUntil(func() bool {
		for _, id := range pl {
			if _, ok := localCopy(t, c, id, "all-down"); !ok {
				return false
			}
		}
		for _, id := range pl {
			if len(hintsFor(t, c, id, "all-down")) > 0 {
				return false
			}
		}
		return true
	}, 30*time.Second); err != nil {
		t.Fatal("the write never reached every primary, or hints were left behind")
	}
	if got := values(get(t, c, pl[0], "all-down")); !slices.Equal(got, []string{"v1"}) {
		t.Fatalf("after the primaries returned: %v, want [v1]", got)
	}
	// A second hinted write through the same node must not be mistaken for
	// the first (each gets an actor of its own): it becomes a sibling when
	// blind, and supersedes with the context.
	for _, id := range pl {
		c.Crash(id)
	}
	c.RunFor(time.Second)
	put(t, c, via, "all-down", "v2", nil)
	for _, id := range pl {
		if err := c.Restart(id); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.RunUntil(func() bool { return len(values(get(t, c, pl[0], "all-down"))) == 2 }, 30*time.Second); err != nil {
		t.Fatalf("a second blind hinted write: %v, want siblings v1 and v2", values(get(t, c, pl[0], "all-down")))
	}
	g := get(t, c, pl[1], "all-down")
	put(t, c, via, "all-down", "v3", g.Context)
	if err := c.Settle(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, id := range c.Nodes() {
		if got := values(get(t, c, id, "all-down")); !slices.Equal(got, []string{"v3"}) {
			t.Fatalf("via %s: %v, want [v3]", id, got)
		}
	}
}
