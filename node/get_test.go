package node

import (
	"slices"
	"testing"
	"time"

	"github.com/dynago/dynago/cluster"
	"github.com/dynago/dynago/dvv"
	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// getHarness is one core coordinating gets for a key whose three primaries
// are all other nodes; the test plays every other node's part.
type getHarness struct {
	t   *testing.T
	n   *Node
	now time.Time
	key []byte
	pl  []ring.NodeID
	fbs []ring.NodeID // the fallbacks other than the coordinator
	// reqs holds requests drained but not yet looked at (session tests).
	reqs []Message
}

func newGetHarness(t *testing.T) *getHarness {
	t.Helper()
	ids := []ring.NodeID{"a", "b", "c", "d", "e", "f"}
	st, err := cluster.Initial(8, 3, ids)
	if err != nil {
		t.Fatal(err)
	}
	rg, _ := st.Ring()
	key := []byte("k")
	pl := rg.PreferenceList(rg.PartitionOf(key))
	var via ring.NodeID
	var fbs []ring.NodeID
	for _, id := range rg.Fallbacks(rg.PartitionOf(key)) {
		if via == "" {
			via = id
		} else {
			fbs = append(fbs, id)
		}
	}
	n, err := New(Config{ID: via, Actor: ActorFor(via, 1), State: &st, R: 2, W: 2, ReplicaTimeout: 100 * time.Millisecond}, storage.NewMem())
	if err != nil {
		t.Fatal(err)
	}
	h := &getHarness{t: t, n: n, now: time.Unix(1000, 0), key: key, pl: pl, fbs: fbs}
	n.Tick(h.now)
	h.drain()
	return h
}

func (h *getHarness) drain() Ready {
	rd := h.n.Ready()
	h.n.Advance()
	return rd
}

// get proposes a get and returns the replica gets it sent, by target.
func (h *getHarness) get() map[ring.NodeID]Message {
	h.n.Propose(h.now, Request{ID: 1, Op: OpGet, Key: h.key, Timeout: 5 * time.Second})
	sent := map[ring.NodeID]Message{}
	for _, m := range h.drain().Requests {
		if m.Type == MsgReplicaGet {
			sent[m.To] = m
		}
	}
	return sent
}

// answer delivers from's answer to the get and returns any client reply.
func (h *getHarness) answer(sent map[ring.NodeID]Message, from ring.NodeID, value string) []Reply {
	h.t.Helper()
	m, ok := sent[from]
	if !ok {
		h.t.Fatalf("%s was not asked; asked %v", from, sent)
	}
	resp := Message{Type: MsgReplicaGetResp, From: from, To: h.n.ID(), ReqID: m.ReqID}
	if value != "" {
		o := object.Object{Clock: dvv.Update(dvv.Set[object.Sibling]{}, nil, object.Sibling{Value: []byte(value)}, "w")}
		resp.Found, resp.Object = true, object.Encode(o)
	}
	h.n.Step(h.now, resp)
	return h.drain().Replies
}

func (h *getHarness) tick(d time.Duration) []Reply {
	h.now = h.now.Add(d)
	h.n.Tick(h.now)
	return h.drain().Replies
}

func TestGetAsksPrimariesMarkedDeadAndFallbacksInParallel(t *testing.T) {
	h := newGetHarness(t)
	h.n.SetStatus(h.pl[1], Dead)
	h.n.SetStatus(h.pl[2], Dead)
	h.drain()
	sent := h.get()
	for _, p := range h.pl {
		if m, ok := sent[p]; !ok || m.Hint != "" {
			t.Fatalf("primary %s not asked as a primary: %v", p, sent)
		}
	}
	if m, ok := sent[h.fbs[0]]; !ok || m.Hint == "" {
		t.Fatalf("no fallback asked in place of a primary marked dead: %v", sent)
	}
	// The coordinator itself was the first fallback and holds no hint;
	// the other fallback holds none either: neither counts.
	if r := h.answer(sent, h.fbs[0], ""); len(r) != 0 {
		t.Fatalf("a fallback without a hint decided the read: %+v", r)
	}
	if r := h.answer(sent, h.pl[0], ""); len(r) != 0 {
		t.Fatalf("one primary's not-found decided an R=2 read: %+v", r)
	}
	// A primary marked dead answers after all: its copy counts.
	r := h.answer(sent, h.pl[2], "v")
	if len(r) != 1 || r[0].Code != CodeOK || r[0].Acks != 2 || string(r[0].Siblings[0].Value) != "v" {
		t.Fatalf("reply %+v; want ok with the value from the primary marked dead", r)
	}
}

func TestGetFallbackNotFoundIsNoInformation(t *testing.T) {
	h := newGetHarness(t)
	for _, p := range h.pl {
		h.n.SetStatus(p, Dead)
	}
	h.drain()
	sent := h.get()
	for _, fb := range h.fbs {
		if r := h.answer(sent, fb, ""); len(r) != 0 {
			t.Fatalf("fallbacks without hints decided the read: %+v", r)
		}
	}
	// The primaries stay silent: once the replica timeout passes they are
	// given up, and the honest answer is 503, never 404.
	if r := h.tick(50 * time.Millisecond); len(r) != 0 {
		t.Fatalf("decided before the replica timeout: %+v", r)
	}
	r := h.tick(50 * time.Millisecond)
	if len(r) != 1 || r[0].Code != CodeQuorumFailed || r[0].Acks != 0 {
		t.Fatalf("reply %+v; want quorum_failed with no vouching answer, at the replica timeout", r)
	}
}

func TestGetFallbackHoldingHintCounts(t *testing.T) {
	h := newGetHarness(t)
	h.n.SetStatus(h.pl[1], Dead)
	h.n.SetStatus(h.pl[2], Dead)
	h.drain()
	sent := h.get() // the coordinator stands in for pl[1], fbs[0] for pl[2]
	if r := h.answer(sent, h.pl[0], ""); len(r) != 0 {
		t.Fatalf("decided on one answer: %+v", r)
	}
	r := h.answer(sent, h.fbs[0], "hinted")
	if len(r) != 1 || r[0].Code != CodeOK || !slices.ContainsFunc(r[0].Siblings, func(s object.Sibling) bool { return string(s.Value) == "hinted" }) {
		t.Fatalf("reply %+v; want ok with the hinted value", r)
	}
}

func TestGetSilentPrimariesMoveToFallbacksAfterReplicaTimeout(t *testing.T) {
	h := newGetHarness(t)
	sent := h.get()
	if len(sent) != 3 {
		t.Fatalf("asked %v; want the three primaries only", sent)
	}
	h.answer(sent, h.pl[0], "v")
	// pl[1] and pl[2] are silent (alive to the detector).
	h.now = h.now.Add(100 * time.Millisecond)
	h.n.Tick(h.now)
	rd := h.drain()
	asked := map[ring.NodeID]Message{}
	for _, m := range rd.Requests {
		if m.Type == MsgReplicaGet {
			asked[m.To] = m
		}
	}
	if len(rd.Replies) != 0 {
		t.Fatalf("decided at the replica timeout with a fallback still to answer: %+v", rd.Replies)
	}
	// The coordinator, first fallback, answered for pl[1] from its own
	// (empty) hints; fbs[0] is asked for pl[2].
	if m, ok := asked[h.fbs[0]]; len(asked) != 1 || !ok || m.Hint != h.pl[2] {
		t.Fatalf("after the replica timeout asked %v; want %s in place of %s", asked, h.fbs[0], h.pl[2])
	}
	sent[h.fbs[0]] = asked[h.fbs[0]]
	r := h.answer(sent, h.fbs[0], "")
	if len(r) != 1 || r[0].Code != CodeQuorumFailed || r[0].Acks != 1 {
		t.Fatalf("reply %+v; want quorum_failed (1 of 2) as soon as the fallbacks said they know nothing", r)
	}
}
