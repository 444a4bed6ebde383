package sim

import (
	"slices"
	"testing"
	"time"

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

func holders(t *testing.T, c *Cluster, key string) []ring.NodeID {
	t.Helper()
	var out []ring.NodeID
	for _, id := range c.Nodes() {
		if _, ok := localCopy(t, c, id, key); ok {
			out = append(out, id)
		}
	}
	return out
}

func TestTombstoneIsReapedAfterGraceAndNothingComesBack(t *testing.T) {
	c := newCluster(t, Config{Seed: 51, TombstoneGrace: 500 * time.Millisecond})
	put(t, c, "n1", "gone", "v1", nil)
	ctx := get(t, c, "n2", "gone").Context
	if r := do(t, c, "n3", node.Request{Op: node.OpDelete, Key: []byte("gone"), Context: ctx}); r.Code != node.CodeOK {
		t.Fatal(r.Code)
	}
	if err := c.Settle(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if len(holders(t, c, "gone")) != 3 {
		t.Fatal("setup: every replica should hold the tombstone")
	}
	c.RunFor(300 * time.Millisecond)
	if len(holders(t, c, "gone")) != 3 {
		t.Fatal("reaped before the grace period")
	}
	if err := c.RunUntil(func() bool { return len(holders(t, c, "gone")) == 0 }, 10*time.Second); err != nil {
		t.Fatalf("tombstone never reaped; held by %v", holders(t, c, "gone"))
	}
	// Anti-entropy and reads must not bring v1 back.
	c.RunFor(2 * time.Second)
	if r := get(t, c, "n4", "gone"); r.Code != node.CodeNotFound {
		t.Fatalf("after reaping: %s %v", r.Code, values(r))
	}
}

// While a replica is down, a hint for it may carry an older value: no
// reaping until it is back and the hint delivered.
func TestNoReapWhileAMemberIsDownOrHoldsAHint(t *testing.T) {
	c := newCluster(t, Config{Seed: 52, TombstoneGrace: 200 * time.Millisecond})
	pl := preflist(c, "h")
	put(t, c, pl[0], "h", "old", nil)
	ctx := get(t, c, pl[0], "h").Context
	c.Crash(pl[2])
	c.RunFor(time.Second)
	if r := do(t, c, pl[0], node.Request{Op: node.OpDelete, Key: []byte("h"), Context: ctx}); r.Code != node.CodeOK {
		t.Fatal(r.Code)
	}
	c.RunFor(3 * time.Second)
	if got := holders(t, c, "h"); !slices.Contains(got, pl[0]) {
		t.Fatalf("reaped while %s was down: holders %v", pl[2], got)
	}
	if err := c.Restart(pl[2]); err != nil {
		t.Fatal(err)
	}
	if err := c.RunUntil(func() bool { return len(holders(t, c, "h")) == 0 }, 20*time.Second); err != nil {
		t.Fatalf("never reaped after the node came back; holders %v", holders(t, c, "h"))
	}
	c.RunFor(2 * time.Second)
	if r := get(t, c, pl[1], "h"); r.Code != node.CodeNotFound {
		t.Fatalf("resurrected: %s %v", r.Code, values(r))
	}
}

// TestContextFromBeforeAReapDoesNotSupersedeANewerWrite: once a tombstone
// is reaped the key's version history is gone. A coordinator writing the
// key afresh must not reuse the dots it gave the key before, or a client
// still holding a context read before the delete would silently replace
// a write it never saw.
func TestContextFromBeforeAReapDoesNotSupersedeANewerWrite(t *testing.T) {
	c := newCluster(t, Config{Seed: 53, TombstoneGrace: 300 * time.Millisecond})
	pl := preflist(c, "again")
	coord := pl[0]
	put(t, c, coord, "again", "v1", nil)
	stale := get(t, c, coord, "again").Context // an old reader keeps this
	del := do(t, c, coord, node.Request{Op: node.OpDelete, Key: []byte("again"), Context: stale})
	if del.Code != node.CodeOK {
		t.Fatal(del.Code)
	}
	if err := c.RunUntil(func() bool { return len(holders(t, c, "again")) == 0 }, 20*time.Second); err != nil {
		t.Fatalf("tombstone never reaped; held by %v", holders(t, c, "again"))
	}
	// The key is written afresh through the same coordinator, then the old
	// reader writes with its context: it never saw v2, so v2 must survive.
	put(t, c, coord, "again", "v2", nil)
	put(t, c, coord, "again", "v3", stale)
	if err := c.Settle(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got := values(get(t, c, pl[1], "again")); !slices.Equal(got, []string{"v2", "v3"}) {
		t.Fatalf("after a write with a pre-reap context: %v, want siblings [v2 v3]", got)
	}
}
