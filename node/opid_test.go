package node

import (
	"testing"
	"time"

	"github.com/dynago/dynago/cluster"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// TestAnswersToAPreviousLifeMatchNothing: an acknowledgement a replica
// sent to this node before it restarted, delivered after, must not count
// for an operation of the new life, or a write could be acknowledged by a
// replica that never received it. Drivers give each start its own
// OpIDBase; with equal bases the first operations of both lives would
// share an ID.
func TestAnswersToAPreviousLifeMatchNothing(t *testing.T) {
	st, err := cluster.Initial(8, 3, []ring.NodeID{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	disk := storage.NewMem()
	now := time.Unix(1000, 0)
	first, err := New(Config{ID: "a", Actor: ActorFor("a", 1), OpIDBase: 0x1234_5678_9abc_def0, State: &st, W: 2}, disk)
	if err != nil {
		t.Fatal(err)
	}
	first.Tick(now)
	first.Propose(now, Request{ID: 1, Op: OpPut, Key: []byte("old"), Value: []byte("x")})
	var stale uint64
	for _, m := range first.Ready().Requests {
		if m.Type == MsgReplicaPut && m.To == "b" {
			stale = m.ReqID
		}
	}
	if stale == 0 {
		t.Fatal("the first life sent b no replica put")
	}

	second, err := New(Config{ID: "a", Actor: ActorFor("a", 2), OpIDBase: 0x0fed_cba9_8765_4321, State: &st, W: 2}, disk)
	if err != nil {
		t.Fatal(err)
	}
	second.Tick(now)
	second.Propose(now, Request{ID: 9, Op: OpPut, Key: []byte("new"), Value: []byte("y")})
	for _, m := range second.Ready().Requests {
		if m.ReqID == stale {
			t.Fatalf("the second life reused operation ID %d", stale)
		}
	}
	second.Advance()
	second.Step(now, Message{Type: MsgReplicaPutResp, From: "b", To: "a", ReqID: stale})
	for _, r := range second.Ready().Replies {
		t.Errorf("the new put was answered %s (acks %d) by b's acknowledgement of the old one", r.Code, r.Acks)
	}
}
