package sim

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

// TestAbortStalledJoinLosesNothing is the wedge of issue #8: a joining node
// that gossip sees alive but whose RPC address nobody reaches. Its
// handoffs stall; the operator aborts; every write acknowledged before,
// during and after the partial handoff survives, the ring is the old one,
// and the newcomer hands back and drops the copies it got.
func TestAbortStalledJoinLosesNothing(t *testing.T) {
	c, w := loadedCluster(t, 45, "a", 300)
	owners := c.Ring().Owners()
	n6, _ := commitJoin(t, c)
	// Some transfers may complete; then n6 becomes unreachable over RPC
	// while the failure detector still reports it alive.
	w.runWriting(t, func() bool { return c.Node("n1").Progress().Done > 0 }, 10*time.Second)
	others := slices.DeleteFunc(c.Nodes(), func(id ring.NodeID) bool { return id == n6 })
	c.Partition([]ring.NodeID{n6}, others)
	c.RunFor(time.Second) // transfers under way give up
	stuck := c.Node("n1").Progress()
	until := c.Now() + 3*time.Second
	w.runWriting(t, func() bool { return c.Now() >= until }, 10*time.Second)
	if hp := c.Node("n1").Progress(); !hp.InTransition || hp.Done != stuck.Done || hp.Done == hp.Total {
		t.Fatalf("the handoff should be stuck at %d/%d, is %+v", stuck.Done, stuck.Total, hp)
	}

	hp, err := c.Abort("n1") // the claimant, as the daemon prefers
	if err != nil {
		t.Fatal(err)
	}
	if hp.Done != stuck.Done || hp.Total != stuck.Total {
		t.Fatalf("abort reports %d/%d, the handoff was at %d/%d", hp.Done, hp.Total, stuck.Done, stuck.Total)
	}
	// Writes keep flowing, in flight across the abort.
	w.runWriting(t, func() bool { return !c.InTransition() }, 10*time.Second)
	if _, err := c.Abort("n1"); !errors.Is(err, node.ErrNoTransition) {
		t.Fatalf("a second abort: %v, want ErrNoTransition", err)
	}
	if !slices.Equal(c.Ring().Owners(), owners) || c.Ring().Contains(n6) {
		t.Fatal("the aborted change altered the ring")
	}
	w.issue(50)
	c.Heal()
	if err := c.Settle(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.RunUntil(func() bool { return converged(c) && dropsDone(c) }, 30*time.Second); err != nil {
		t.Fatalf("did not converge after the abort (n6 still holds foreign data: %v)", holdsForeign(c, n6))
	}
	// Every acknowledged write reads back and sits on its (old) preference
	// list; n6 holds nothing.
	checkPlacement(t, c, w.acked)
	t.Logf("%d writes acknowledged; stuck at %d/%d transfers; ring version %d", len(w.acked), stuck.Done, stuck.Total, c.Ring().Version())
}
