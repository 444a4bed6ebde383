package node

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynago/dynago/cluster"
	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// TestHintsStopAtMaxHintBytes: a fallback holds hints up to MaxHintBytes
// and refuses the one that would pass it, with an error that says so; a
// hint that does not grow is still taken; delivering hints frees room; and
// a restart counts the bytes on disk again.
func TestHintsStopAtMaxHintBytes(t *testing.T) {
	st, err := cluster.Initial(8, 3, []ring.NodeID{"a", "b", "c", "d"})
	if err != nil {
		t.Fatal(err)
	}
	disk := storage.NewMem()
	value := encodedValue(strings.Repeat("v", 100), "x:1")
	primary := ring.NodeID("b")
	// Every hint here is for primary: its storage key (prefix, primary,
	// partition, key) plus the value.
	size := hintSize(storage.HintKey(string(primary), 0, []byte("key-0")), value)
	limit := 3*size + size/2 // room for three hints, not four
	start := func() *Node {
		t.Helper()
		n, err := New(Config{ID: "d", Actor: ActorFor("d", 1), State: &st, ReplicaTimeout: 100 * time.Millisecond,
			HintRetry: time.Second, MaxHintBytes: limit}, disk)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	now := time.Unix(1000, 0)
	n := start()
	n.SetStatus(primary, Dead)
	n.Tick(now)
	collect := func() Ready {
		t.Helper()
		rd := n.Ready()
		if rd.Err != nil {
			t.Fatal(rd.Err)
		}
		if err := disk.Apply(rd.Batch(), true); err != nil {
			t.Fatal(err)
		}
		n.Advance()
		return rd
	}
	collect()
	// hint sends a hinted replica put for key and returns the fallback's
	// acknowledgement error ("" when stored).
	hint := func(id uint64, key string) string {
		t.Helper()
		n.Step(now, Message{Type: MsgReplicaPut, From: "a", To: "d", ReqID: id, Key: []byte(key), Object: value, Hint: primary})
		for _, m := range collect().Messages {
			if m.Type == MsgReplicaPutResp && m.ReqID == id {
				return m.Err
			}
		}
		t.Fatalf("no acknowledgement for the hint of %s", key)
		return ""
	}
	for i := range 3 {
		if e := hint(uint64(i+1), fmt.Sprintf("key-%d", i)); e != "" {
			t.Fatalf("hint %d of 3 refused: %s", i+1, e)
		}
	}
	if got := n.Stats().HintBytes; got != 3*size || got > limit {
		t.Fatalf("HintBytes = %d after three hints of %d bytes (limit %d)", got, size, limit)
	}
	e := hint(4, "key-3")
	if !strings.Contains(e, ErrHintsFull.Error()) || !strings.Contains(e, "--max-hint-bytes") {
		t.Fatalf("the fourth hint got %q, want a refusal naming the full hint store and the flag", e)
	}
	if s := n.Stats(); s.HintsRefused != 1 || s.HintBytes != 3*size || s.HintsHeld[primary] != 3 {
		t.Fatalf("after the refusal: refused %d, bytes %d, held %v; want 1, %d, 3", s.HintsRefused, s.HintBytes, s.HintsHeld, 3*size)
	}
	if _, err := disk.Get(storage.HintKey(string(primary), n.Ring().PartitionOf([]byte("key-3")), []byte("key-3"))); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the refused hint is on disk: %v", err)
	}
	// A restart counts what is on disk.
	limit = 2 * size
	n = start()
	n.SetStatus(primary, Dead)
	n.Tick(now)
	collect()
	if got := n.Stats().HintBytes; got != 3*size {
		t.Fatalf("HintBytes after a restart = %d, want %d", got, 3*size)
	}

	// Restarted with a lower limit, the node holds more than it allows
	// now: a new hint is refused, but a newer version of a hint held, of
	// the same size, replaces it, since nothing grows.
	o1, err := object.Decode(value)
	if err != nil {
		t.Fatal(err)
	}
	newer := object.Encode(object.Update(o1, o1.Clock.Join(), object.Sibling{Value: []byte(strings.Repeat("w", 100))}, "x:1"))
	n.Step(now, Message{Type: MsgReplicaPut, From: "a", To: "d", ReqID: 5, Key: []byte("key-0"), Object: newer, Hint: primary})
	for _, m := range collect().Messages {
		if m.Type == MsgReplicaPutResp && m.Err != "" {
			t.Fatalf("a newer hint of the same size was refused at the limit: %s", m.Err)
		}
	}
	if s := n.Stats(); s.HintBytes != 3*size || s.HintsRefused != 0 {
		t.Fatalf("after replacing a hint: bytes %d, refused %d; want %d, 0", s.HintBytes, s.HintsRefused, 3*size)
	}
	if e := hint(6, "key-4"); !strings.Contains(e, ErrHintsFull.Error()) {
		t.Fatalf("a new hint over the lowered limit got %q, want a refusal", e)
	}
	held, err := disk.Get(storage.HintKey(string(primary), n.Ring().PartitionOf([]byte("key-0")), []byte("key-0")))
	if err != nil || !bytes.Equal(held, newer) {
		t.Fatalf("the hint held for key-0 is not the newer version (%v)", err)
	}

	// The primary comes back: its hints are delivered (a key it no longer
	// replicates goes to the key's current primaries, this node among
	// them), and each acknowledgement frees the room its hint took.
	n.SetStatus(primary, Alive)
	now = now.Add(2 * time.Second)
	n.Tick(now)
	for range 10 {
		// The core reuses a Ready's slices once advanced: keep a copy.
		sent := slices.Clone(collect().Requests)
		if len(sent) == 0 {
			break
		}
		for _, m := range sent {
			if m.Type == MsgReplicaPut {
				n.Step(now, Message{Type: MsgReplicaPutResp, From: m.To, To: "d", ReqID: m.ReqID})
			}
		}
	}
	if s := n.Stats(); s.HintBytes != 0 || len(s.HintsHeld) != 0 {
		t.Fatalf("with every hint delivered: bytes %d, held %v; want 0, none", s.HintBytes, s.HintsHeld)
	}
	n.SetStatus(primary, Dead)
	if e := hint(7, "key-3"); e != "" {
		t.Fatalf("with the hints delivered, a new one was refused: %s", e)
	}
}

// TestQuorumFailureSaysWhyAReplicaRefused: a write that fails its quorum
// because a node refused it (here a fallback whose hint store is full)
// tells the client what that node said, not only how many acknowledged.
func TestQuorumFailureSaysWhyAReplicaRefused(t *testing.T) {
	n, now, key, pl, fbs := newPutNode(t, func(pl, _ []ring.NodeID) ring.NodeID { return pl[0] })
	n.SetStatus(pl[1], Dead)
	n.SetStatus(pl[2], Dead)
	n.Propose(now, Request{ID: 1, Op: OpPut, Key: key, Value: []byte("v"), W: 3, Timeout: time.Second})
	rd := step(n)
	refusal := ErrHintsFull.Error() + ": 1000 bytes of hints held, limit 1000 (--max-hint-bytes)\x1b[2J"
	var replies []Reply
	for _, m := range rd.Requests {
		n.Step(now, Message{Type: MsgReplicaPutResp, From: m.To, To: pl[0], ReqID: m.ReqID, Err: refusal})
		replies = append(replies, step(n).Replies...)
	}
	if len(replies) != 1 || replies[0].Code != CodeQuorumFailed {
		t.Fatalf("replies %+v; want one quorum failure", replies)
	}
	// The peer's text arrives with its control characters made harmless.
	want := "last refusal: " + string(fbs[0]) + ": " + strings.ReplaceAll(refusal, "\x1b", "?")
	if !strings.Contains(replies[0].Err, want) {
		t.Fatalf("the failure says %q; want it to contain %q", replies[0].Err, want)
	}
}
