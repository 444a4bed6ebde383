package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/dynago/dynago/cluster"
	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

func TestStatsSnapshotIsTheCallers(t *testing.T) {
	st, err := cluster.Initial(8, 3, []ring.NodeID{"a", "b", "c", "d"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{ID: "a", Actor: ActorFor("a", 1), State: &st}, storage.NewMem())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	n.Tick(now)
	n.Ready()
	enc := object.Encode(object.Update(object.Object{}, nil, object.Sibling{Value: []byte("v")}, "b:1"))
	const hints = 70
	for i := range hints {
		n.Step(now, Message{Type: MsgReplicaPut, From: "b", ReqID: uint64(i + 1), Key: fmt.Appendf(nil, "k%d", i), Object: enc, Hint: "c"})
	}
	s := n.Stats()
	if s.HintsStored != hints || s.HintsHeld["c"] != hints || s.RingVersion != st.Version {
		t.Fatalf("stats = stored %d, held %v, ring %d", s.HintsStored, s.HintsHeld, s.RingVersion)
	}
	// Every hint is named in the Ready, however many came at once.
	rd := n.Ready()
	if len(rd.Events) != hints || string(rd.Events[hints-1].Key) != fmt.Sprintf("k%d", hints-1) || rd.Events[0].Peer != "c" {
		t.Fatalf("%d hint events (last %v), want %d", len(rd.Events), rd.Events[len(rd.Events)-1], hints)
	}
	// The snapshot is the caller's: later hints do not change it.
	n.Step(now, Message{Type: MsgReplicaPut, From: "b", ReqID: 999, Key: []byte("late"), Object: enc, Hint: "d"})
	if s.HintsHeld["d"] != 0 || s.HintsStored != hints {
		t.Fatal("a snapshot changed after it was taken")
	}
	if s := n.Stats(); s.HintsHeld["d"] != 1 || s.HintsStored != hints+1 {
		t.Fatalf("the next snapshot misses the late hint: %v", s.HintsHeld)
	}
}
