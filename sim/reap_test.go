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
