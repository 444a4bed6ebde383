package node

import (
	"slices"
	"testing"
	"time"

	"github.com/dynago/dynago/cluster"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// TestLateRefusalAnswersAForwardAtOnce: a late CodeNotCoordinator from an
// earlier (slow) coordinator arrives after the current one already
// refused. Every node tried has refused and nothing was applied, so the
// client must hear "unavailable" at once, not "quorum_failed" (outcome
// unknown) at the deadline.
func TestLateRefusalAnswersAForwardAtOnce(t *testing.T) {
	st, err := cluster.Initial(8, 3, []ring.NodeID{"a", "b", "c", "d", "e"})
	if err != nil {
		t.Fatal(err)
	}
	rg, _ := st.Ring()
	var key []byte
	var pl []ring.NodeID
	var via ring.NodeID
	key = []byte("k")
	pl = rg.PreferenceList(rg.PartitionOf(key))
	for _, id := range []ring.NodeID{"a", "b", "c", "d", "e"} {
		if !slices.Contains(pl, id) {
			via = id
		}
	}
	n, err := New(Config{ID: via, Actor: ActorFor(via, 1), State: &st, ReplicaTimeout: 100 * time.Millisecond}, storage.NewMem())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	n.Tick(now)
	n.SetStatus(pl[2], Dead)
	n.Ready()
	n.Advance()
	n.Propose(now, Request{ID: 7, Op: OpPut, Key: key, Value: []byte("v"), Timeout: 5 * time.Second})
	rd := n.Ready()
	n.Advance()
	if len(rd.Requests) != 1 || rd.Requests[0].To != pl[0] {
		t.Fatalf("first forward: %+v", rd.Requests)
	}
	reqID := rd.Requests[0].ReqID
	// pl[0] is silent: after the retry time the write goes to pl[1].
	now = now.Add(2600 * time.Millisecond)
	n.Tick(now)
	rd = n.Ready()
	n.Advance()
	if len(rd.Requests) != 1 || rd.Requests[0].To != pl[1] {
		t.Fatalf("retry: %+v", rd.Requests)
	}
	// pl[1] refuses (no other node to name), then pl[0]'s refusal arrives late.
	n.Step(now, Message{Type: MsgForwardResp, From: pl[1], To: via, ReqID: reqID, Code: CodeNotCoordinator, Err: "not a replica"})
	n.Step(now.Add(time.Millisecond), Message{Type: MsgForwardResp, From: pl[0], To: via, ReqID: reqID, Code: CodeNotCoordinator, Err: "not a replica"})
	rd = n.Ready()
	n.Advance()
	if len(rd.Replies) == 0 {
		n.Tick(now.Add(3 * time.Second))
		rd2 := n.Ready()
		for _, r := range rd2.Replies {
			t.Logf("reply at deadline: code=%v err=%q", r.Code, r.Err)
		}
		t.Fatalf("every node tried refused, yet no reply until the deadline")
	}
	if rd.Replies[0].Code != CodeUnavailable {
		t.Fatalf("reply %v", rd.Replies[0].Code)
	}
}
