package sim

import (
	"errors"
	"testing"
	"time"

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

// TestSetDefaultsMidRun changes a node's default quorums while a write is
// in flight through it: the write keeps the W it started with, the next
// ones get the new W and R, an out-of-range change is refused and changes
// nothing, other nodes keep theirs, and a restart brings Config's back.
func TestSetDefaultsMidRun(t *testing.T) {
	c := newCluster(t, Config{Seed: 77})
	key := []byte("k")
	pl := c.Ring().PreferenceList(c.Ring().PartitionOf(key))
	via, other := pl[0], pl[1]

	var first node.Reply
	answered := false
	c.Submit(via, node.Request{Op: node.OpPut, Key: key, Value: []byte("v1")}, func(r node.Reply) { first, answered = r, true })
	c.RunFor(time.Microsecond) // the coordinator takes the write; its replicas have not answered yet
	if answered || c.Node(via).InFlight() == 0 {
		t.Fatalf("the first write is not in flight (answered %v)", answered)
	}
	if err := c.SetDefaults(via, 1, 3); err != nil {
		t.Fatal(err)
	}
	if err := c.RunUntil(func() bool { return answered }, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if first.Code != node.CodeOK || first.Required != 2 {
		t.Fatalf("write in flight during the change: %s required %d, want OK with the W=2 it started with", first.Code, first.Required)
	}

	for _, bad := range [][2]int{{4, 0}, {0, 4}, {-1, 0}} {
		if err := c.SetDefaults(via, bad[0], bad[1]); !errors.Is(err, node.ErrBadQuorum) {
			t.Errorf("SetDefaults(%d, %d) = %v, want ErrBadQuorum", bad[0], bad[1], err)
		}
	}
	if n, r, w := c.Node(via).Defaults(); n != 3 || r != 1 || w != 3 {
		t.Fatalf("%s runs by N=%d R=%d W=%d after refused changes, want 3 1 3", via, n, r, w)
	}

	for _, tc := range []struct {
		via      ring.NodeID
		op       node.Op
		required int
	}{
		{via, node.OpPut, 3}, {via, node.OpGet, 1}, {other, node.OpPut, 2}, {other, node.OpGet, 2},
	} {
		rep := do(t, c, tc.via, node.Request{Op: tc.op, Key: key, Value: []byte("v2")})
		if rep.Code != node.CodeOK || rep.Required != tc.required {
			t.Errorf("%s via %s: %s required %d, want OK with %d", tc.op, tc.via, rep.Code, rep.Required, tc.required)
		}
	}
	// A request that names its quorum is checked against N by the core.
	if rep := do(t, c, via, node.Request{Op: node.OpPut, Key: key, Value: []byte("v3"), W: 4}); rep.Code != node.CodeBadQuorum {
		t.Errorf("put W=4 of N=3: %s, want %s", rep.Code, node.CodeBadQuorum)
	}

	c.Crash(via)
	if err := c.Restart(via); err != nil {
		t.Fatal(err)
	}
	if _, r, w := c.Node(via).Defaults(); r != 2 || w != 2 {
		t.Fatalf("after a restart %s runs by R=%d W=%d, want Config's 2 and 2", via, r, w)
	}
	if err := c.SetDefaults("n99", 1, 1); err == nil {
		t.Error("SetDefaults on an unknown node succeeded")
	}
}
