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

func TestStatsNameStoredHints(t *testing.T) {
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
	enc := object.Encode(object.Update(object.Object{}, nil, object.Sibling{Value: []byte("v")}, "b:1"))
	for i := range recentHintsCap + 3 {
		n.Step(now, Message{Type: MsgReplicaPut, From: "b", ReqID: uint64(i + 1), Key: fmt.Appendf(nil, "k%d", i), Object: enc, Hint: "c"})
	}
	s := n.Stats()
	if s.HintsStored != recentHintsCap+3 || s.HintsHeld["c"] != recentHintsCap+3 || s.RingVersion != st.Version {
		t.Fatalf("stats = stored %d, held %v, ring %d", s.HintsStored, s.HintsHeld, s.RingVersion)
	}
	if len(s.RecentHints) != recentHintsCap {
		t.Fatalf("%d recent hints remembered, want %d", len(s.RecentHints), recentHintsCap)
	}
	first, last := s.RecentHints[0], s.RecentHints[len(s.RecentHints)-1]
	if string(first.Key) != "k3" || string(last.Key) != fmt.Sprintf("k%d", recentHintsCap+2) || last.For != "c" {
		t.Fatalf("recent hints run %s..%s for %s, want k3..k%d for c", first.Key, last.Key, last.For, recentHintsCap+2)
	}
	// The snapshot is the caller's: later hints do not change it.
	n.Step(now, Message{Type: MsgReplicaPut, From: "b", ReqID: 999, Key: []byte("late"), Object: enc, Hint: "d"})
	if s.HintsHeld["d"] != 0 || string(s.RecentHints[len(s.RecentHints)-1].Key) == "late" {
		t.Fatal("a snapshot changed after it was taken")
	}
	if s := n.Stats(); s.HintsHeld["d"] != 1 || string(s.RecentHints[len(s.RecentHints)-1].Key) != "late" {
		t.Fatalf("the next snapshot misses the late hint: %v", s.HintsHeld)
	}
}
