package sim

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dynago/dynago/node"
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

func TestDeadPrimaryWriteIsHintedAndHandedOffOnReturn(t *testing.T) {
	c := newCluster(t, Config{Seed: 21, W: 3, R: 3})
	pl := preflist(c, "k")
	dead := pl[1]
	c.Crash(dead)
	c.RunFor(time.Second) // detection

	r := put(t, c, pl[0], "k", "v", nil)
	if r.Acks != 3 {
		t.Fatalf("acks = %d, want 3 with a fallback standing in", r.Acks)
	}
	if err := c.Settle(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	holders := hintsFor(t, c, dead, "k")
	fbs := c.Ring().Fallbacks(c.Ring().PartitionOf([]byte("k")))
	if len(holders) != 1 || holders[0] != fbs[0] {
		t.Fatalf("hint for %s held by %v, want the first fallback %s", dead, holders, fbs[0])
	}
	// Reads with R=3 still succeed, answered by the fallback's hint.
	if got := values(get(t, c, pl[2], "k")); !slices.Equal(got, []string{"v"}) {
		t.Fatalf("R=3 read while %s is dead: %v", dead, got)
	}

	if err := c.Restart(dead); err != nil {
		t.Fatal(err)
	}
	err := c.RunUntil(func() bool {
		_, ok := localCopy(t, c, dead, "k")
		return ok && len(hintsFor(t, c, dead, "k")) == 0
	}, 5*time.Second)
	if err != nil {
		t.Fatalf("hint not delivered and deleted: primary has it: %v, hints %v", func() bool { _, ok := localCopy(t, c, dead, "k"); return ok }(), hintsFor(t, c, dead, "k"))
	}
	if held := c.Node(fbs[0]).HintsHeld(); len(held) != 0 {
		t.Fatalf("fallback still counts hints %v", held)
	}
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

// A hint is deleted only if it did not change while being delivered.
func TestHintUpdatedDuringDeliveryIsNotLost(t *testing.T) {
	c := newCluster(t, Config{Seed: 23, W: 2})
	pl := preflist(c, "u")
	dead := pl[1]
	c.Crash(dead)
	c.RunFor(time.Second)
	ctx := put(t, c, pl[0], "u", "one", nil).Context
	if err := c.Restart(dead); err != nil {
		t.Fatal(err)
	}
	// A second write lands while the detector still reports the primary
	// dead, i.e. on the fallback again, racing the handoff of the first.
	put(t, c, pl[0], "u", "two", ctx)
	if err := c.RunUntil(func() bool { return len(hintsFor(t, c, dead, "u")) == 0 }, 10*time.Second); err != nil {
		t.Fatal("hints never drained")
	}
	o, ok := localCopy(t, c, dead, "u")
	if !ok || len(o.Live()) != 1 || string(o.Live()[0].Value) != "two" {
		t.Fatalf("primary holds %v, want the second write", o.Live())
	}
	if got := values(do(t, c, pl[2], node.Request{Op: node.OpGet, Key: []byte("u"), R: 3})); !slices.Equal(got, []string{"two"}) {
		t.Fatalf("read: %v", got)
	}
}

// A write forwarded to a coordinator that died before the detector noticed
// is re-forwarded to the next preference-list node after the replica
// timeout, and succeeds.
func TestForwardToUndetectedDeadCoordinatorIsRetried(t *testing.T) {
	c := newCluster(t, Config{Seed: 24, DetectDelay: time.Hour, ReplicaTimeout: 50 * time.Millisecond})
	pl := preflist(c, "f")
	c.Crash(pl[0])
	r := put(t, c, notIn(c, pl), "f", "v", nil)
	if r.Trace.Coordinator != pl[1] {
		t.Fatalf("coordinated by %s, want %s after %s stayed silent", r.Trace.Coordinator, pl[1], pl[0])
	}
	if got := values(get(t, c, pl[2], "f")); !slices.Equal(got, []string{"v"}) {
		t.Fatalf("read: %v", got)
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
