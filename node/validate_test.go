package node

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dynago/dynago/cluster"
	"github.com/dynago/dynago/dvv"
	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// solo is a one-node cluster (N=1, so every write is local and acknowledged
// at once) with a driver that applies each Ready to an in-memory store: the
// smallest real core to aim hostile messages at.
type solo struct {
	t     testing.TB
	n     *Node
	store *storage.Mem
	now   time.Time
	id    uint64
	out   []Message // messages the node sent, all of them
}

func newSolo(t testing.TB, cfg Config) *solo {
	t.Helper()
	st, err := cluster.Initial(8, 1, []ring.NodeID{"a"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.ID, cfg.Actor, cfg.State = "a", ActorFor("a", 1), &st
	store := storage.NewMem()
	n, err := New(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	s := &solo{t: t, n: n, store: store, now: time.Unix(1000, 0)}
	n.Tick(s.now)
	s.drain()
	return s
}

// drain applies the node's outputs and returns its replies.
func (s *solo) drain() []Reply {
	var replies []Reply
	for s.n.HasReady() {
		rd := s.n.Ready()
		if len(rd.Writes) > 0 {
			if err := s.store.Apply(rd.Batch(), true); err != nil {
				s.t.Fatal(err)
			}
		}
		s.n.Advance()
		s.out = append(s.out, rd.Requests...)
		s.out = append(s.out, rd.Messages...)
		replies = append(replies, rd.Replies...)
	}
	return replies
}

func (s *solo) do(req Request) Reply {
	s.t.Helper()
	s.id++
	req.ID = s.id
	s.now = s.now.Add(time.Millisecond)
	s.n.Propose(s.now, req)
	for _, r := range s.drain() {
		if r.ID == req.ID {
			return r
		}
	}
	s.t.Fatalf("no reply to %v %q", req.Op, req.Key)
	return Reply{}
}

func (s *solo) step(m Message) {
	s.now = s.now.Add(time.Millisecond)
	s.n.Step(s.now, m)
	s.drain()
}

// mustRead asserts that key reads back with exactly value.
func (s *solo) mustRead(key, value string) Reply {
	s.t.Helper()
	r := s.do(Request{Op: OpGet, Key: []byte(key)})
	if r.Code != CodeOK || len(r.Siblings) != 1 || string(r.Siblings[0].Value) != value {
		s.t.Fatalf("read %q: code %v err %q siblings %v, want the one value %q", key, r.Code, r.Err, r.Siblings, value)
	}
	return r
}

// TestHostileMessagesChangeNothing: messages with out-of-range fields
// (the partition of a MsgReap far beyond the ring or negative, paired
// lists of different lengths, unknown types and codes, bad contexts) are
// dropped without a panic, and an acknowledged key still reads back.
func TestHostileMessagesChangeNothing(t *testing.T) {
	s := newSolo(t, Config{})
	if r := s.do(Request{Op: OpPut, Key: []byte("k"), Value: []byte("v")}); r.Code != CodeOK {
		t.Fatalf("put: %v %s", r.Code, r.Err)
	}
	raw, _ := s.store.Get(storage.ObjectKey(s.n.ring.PartitionOf([]byte("k")), []byte("k")))
	version := object.Hash(raw)
	bad := []Message{
		{Type: MsgReap, From: "x", Partition: 1_000_000, Keys: [][]byte{[]byte("k")}, Versions: []uint64{version}},
		{Type: MsgReap, From: "x", Partition: -1, Keys: [][]byte{[]byte("k")}, Versions: []uint64{version}},
		{Type: MsgReap, From: "x", Partition: 8, Keys: [][]byte{[]byte("k")}, Versions: []uint64{version}},
		{Type: MsgReapQuery, From: "x", Partition: 1 << 40},
		{Type: MsgReap, From: "x", Keys: [][]byte{[]byte("k")}},
		{Type: MsgAETreeReq, From: "x", Partition: 99, Levels: []uint32{1 << 31}, Indexes: []uint32{1 << 31}},
		{Type: MsgAETreeResp, From: "x", Levels: []uint32{1}, Hashes: [][]uint64{{1}, {2}}},
		{Type: MsgHandoffDone, From: "x", Partition: -5, Hint: "y"},
		{Type: 0, From: "x"},
		{Type: 200, From: "x"},
		{Type: MsgForwardResp, From: "x", Code: 77},
		{Type: MsgForwardResp, From: "x", Context: []byte{1, 1, 1, 'a', 0}},
		{Type: MsgReplicaPut, From: "x", Key: []byte("k"), Object: []byte("garbage")},
		{Type: MsgReplicaPut, From: "x", Key: nil, Object: raw},
		{Type: MsgReplicaGet, From: "", Key: []byte("k")},
		{Type: MsgForward, From: "x", Key: []byte("k"), Value: []byte("w"), W: -1},
		{Type: MsgForward, From: ring.NodeID(strings.Repeat("x", MaxNodeIDLen+1)), Key: []byte("k"), W: 1},
		{Type: MsgForward, From: "x", Key: []byte("k"), W: 1, Timeout: -time.Second},
	}
	for i, m := range bad {
		m.To = "a"
		m.ReqID = uint64(100 + i)
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("message %d (%+v) panicked: %v", i, m, p)
				}
			}()
			s.step(m)
		}()
	}
	s.mustRead("k", "v")
	if s.n.Rejected() == 0 {
		t.Error("no message counted as rejected")
	}
}

// TestForwardedRequestsAreCheckedByTheCoordinator: a forwarded write with
// a key or value over this node's limits (the forwarding node's may be
// different, or it may not be a node at all) is answered "bad request" and
// not stored.
func TestForwardedRequestsAreCheckedByTheCoordinator(t *testing.T) {
	s := newSolo(t, Config{MaxKeySize: 8, MaxValueSize: 16})
	for i, m := range []Message{
		{Key: []byte("a-key-over-8"), Value: []byte("v")},
		{Key: []byte("k"), Value: bytes.Repeat([]byte("v"), 17)},
	} {
		m.Type, m.From, m.To, m.ReqID, m.W, m.Timeout = MsgForward, "x", "a", uint64(i+1), 1, time.Second
		s.out = nil
		s.step(m)
		if len(s.out) != 1 || s.out[0].Type != MsgForwardResp || s.out[0].Code != CodeBadRequest || s.out[0].ReqID != m.ReqID {
			t.Fatalf("forward %d: sent %+v, want one bad-request answer", i, s.out)
		}
	}
	if r := s.do(Request{Op: OpGet, Key: []byte("k")}); r.Code != CodeNotFound {
		t.Fatalf("oversized forwarded value was stored: %v", r.Code)
	}
}

// TestExhaustedCounterKeepsTheKeyReadable: a context claiming the largest
// counter for the coordinator's own actor used to make it stamp a dot one
// beyond what decoders accept, and the key answered "corrupt encoding"
// from then on. Now the write gets another actor; the key reads back and
// takes contextual writes.
func TestExhaustedCounterKeepsTheKeyReadable(t *testing.T) {
	s := newSolo(t, Config{})
	if r := s.do(Request{Op: OpPut, Key: []byte("k"), Value: []byte("v1")}); r.Code != CodeOK {
		t.Fatalf("put: %v %s", r.Code, r.Err)
	}
	for _, c := range []uint64{dvv.MaxCounter, dvv.MaxCounter - 1} {
		forged := dvv.EncodeContext(dvv.VV{{Actor: s.n.cfg.Actor, Counter: c}})
		r := s.do(Request{Op: OpPut, Key: []byte("k"), Value: []byte("v2"), Context: forged})
		if r.Code != CodeOK {
			t.Fatalf("put with counter %d: %v %s", c, r.Code, r.Err)
		}
		got := s.mustRead("k", "v2")
		if _, err := dvv.DecodeContext(got.Context); err != nil {
			t.Fatalf("context read back does not decode: %v", err)
		}
		r = s.do(Request{Op: OpPut, Key: []byte("k"), Value: []byte("v3"), Context: got.Context})
		if r.Code != CodeOK {
			t.Fatalf("contextual write after counter %d: %v %s", c, r.Code, r.Err)
		}
		s.mustRead("k", "v3")
		// And a blind write, which stamps on top of the stored counter.
		if r := s.do(Request{Op: OpPut, Key: []byte("k"), Value: []byte("v4")}); r.Code != CodeOK {
			t.Fatalf("blind write after counter %d: %v %s", c, r.Code, r.Err)
		}
		cur := s.do(Request{Op: OpGet, Key: []byte("k")})
		if r := s.do(Request{Op: OpPut, Key: []byte("k"), Value: []byte("v2"), Context: cur.Context}); r.Code != CodeOK {
			t.Fatalf("resolving write: %v %s", r.Code, r.Err)
		}
	}
}

// TestSiblingCap: blind writes past SiblingWarn succeed with a warning;
// past MaxSiblings they are refused and change nothing; a write with the
// read's context resolves them.
func TestSiblingCap(t *testing.T) {
	s := newSolo(t, Config{SiblingWarn: 3, MaxSiblings: 5})
	for i := 1; i <= 5; i++ {
		r := s.do(Request{Op: OpPut, Key: []byte("k"), Value: fmt.Appendf(nil, "v%d", i)})
		if r.Code != CodeOK {
			t.Fatalf("blind write %d: %v %s", i, r.Code, r.Err)
		}
		want := 0
		if i > 3 {
			want = i
		}
		if got := r.SiblingCount(); got != want {
			t.Fatalf("blind write %d: SiblingCount %d, want %d", i, got, want)
		}
	}
	r := s.do(Request{Op: OpPut, Key: []byte("k"), Value: []byte("v6")})
	if r.Code != CodeTooManySiblings {
		t.Fatalf("sixth blind write: %v %s, want too_many_siblings", r.Code, r.Err)
	}
	got := s.do(Request{Op: OpGet, Key: []byte("k")})
	if got.Code != CodeOK || len(got.Siblings) != 5 {
		t.Fatalf("after the refused write: %v with %d siblings, want the 5 acknowledged", got.Code, len(got.Siblings))
	}
	if r := s.do(Request{Op: OpPut, Key: []byte("k"), Value: []byte("merged"), Context: got.Context}); r.Code != CodeOK || r.SiblingCount() != 0 {
		t.Fatalf("resolving write: %v %s, siblings %d", r.Code, r.Err, r.SiblingCount())
	}
	s.mustRead("k", "merged")
}

// TestContextSizeCap: a write whose context would grow the key's context
// beyond MaxContextSize is refused and changes nothing.
func TestContextSizeCap(t *testing.T) {
	s := newSolo(t, Config{MaxContextSize: 256})
	if r := s.do(Request{Op: OpPut, Key: []byte("k"), Value: []byte("v")}); r.Code != CodeOK {
		t.Fatalf("put: %v %s", r.Code, r.Err)
	}
	cur := s.do(Request{Op: OpGet, Key: []byte("k")})
	vv, _ := dvv.DecodeContext(cur.Context)
	for i := range 40 {
		vv = append(vv, dvv.Dot{Actor: fmt.Sprintf("zz-forged-%02d", i), Counter: 1})
	}
	r := s.do(Request{Op: OpPut, Key: []byte("k"), Value: []byte("w"), Context: dvv.EncodeContext(vv)})
	if r.Code != CodeBadRequest {
		t.Fatalf("put with a 40-actor context: %v %s, want bad_request", r.Code, r.Err)
	}
	s.mustRead("k", "v")
}

// A request is traced only when it asks: an untraced one records nothing
// (the request path's allocations), and still carries its sibling warning.
func TestTraceOnlyWhenAsked(t *testing.T) {
	s := newSolo(t, Config{SiblingWarn: 1})
	if r := s.do(Request{Op: OpPut, Key: []byte("k"), Value: []byte("a")}); r.Code != CodeOK || r.Trace != nil {
		t.Fatalf("untraced put: %v, trace %+v; want ok and no trace", r.Code, r.Trace)
	}
	r := s.do(Request{Op: OpPut, Key: []byte("k"), Value: []byte("b"), Trace: true})
	if r.Code != CodeOK || r.Trace == nil || len(r.Trace.Events) == 0 || r.Trace.Coordinator == "" {
		t.Fatalf("traced put: %v, trace %+v; want its events", r.Code, r.Trace)
	}
	if r.SiblingCount() != 2 {
		t.Fatalf("traced blind write: SiblingCount %d, want 2", r.SiblingCount())
	}
	if r := s.do(Request{Op: OpPut, Key: []byte("k"), Value: []byte("c")}); r.Trace != nil || r.SiblingCount() != 3 {
		t.Fatalf("untraced blind write: trace %+v, SiblingCount %d; want none and 3", r.Trace, r.SiblingCount())
	}
	if r := s.do(Request{Op: OpGet, Key: []byte("k")}); r.Code != CodeOK || r.Trace != nil {
		t.Fatalf("untraced get: %v, trace %+v", r.Code, r.Trace)
	}
	if r := s.do(Request{Op: OpGet, Key: []byte("k"), Trace: true}); r.Code != CodeOK || r.Trace == nil || len(r.Trace.Events) == 0 {
		t.Fatalf("traced get: %v, trace %+v", r.Code, r.Trace)
	}
}
