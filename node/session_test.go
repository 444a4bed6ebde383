package node

import (
	"testing"
	"time"

	"github.com/dynago/dynago/dvv"
	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// version returns actor w's object after n writes, the last holding value.
func version(n int, value string) object.Object {
	var o object.Object
	for i := 1; i <= n; i++ {
		o = object.Update(o, o.Clock.Join(), object.Sibling{Value: []byte(value)}, "w")
	}
	return o
}

// sessionGet proposes an R=1 get carrying floor and returns the replica
// gets it sent, by target.
func (h *getHarness) sessionGet(floor object.Object, deleted bool) map[ring.NodeID]Message {
	h.n.Propose(h.now, Request{ID: 1, Op: OpGet, Key: h.key, R: 1, Timeout: time.Second, Session: floor.Context(), SessionDeleted: deleted})
	return h.sent()
}

// sent returns the replica gets sent since the last call, by target.
func (h *getHarness) sent() map[ring.NodeID]Message {
	h.collect()
	sent := map[ring.NodeID]Message{}
	for _, m := range h.reqs {
		if m.Type == MsgReplicaGet {
			sent[m.To] = m
		}
	}
	h.reqs = nil
	return sent
}

// collect drains the core, keeping its requests for sent and returning
// its replies.
func (h *getHarness) collect() []Reply {
	rd := h.drain()
	h.reqs = append(h.reqs, rd.Requests...)
	return rd.Replies
}

func (h *getHarness) answerObj(m Message, from ring.NodeID, o *object.Object) []Reply {
	resp := Message{Type: MsgReplicaGetResp, From: from, To: h.n.ID(), ReqID: m.ReqID}
	if o != nil {
		resp.Found, resp.Object = true, object.Encode(*o)
	}
	h.n.Step(h.now, resp)
	return h.collect()
}

func TestSessionGetWaitsForTheFloorAndAsksAgain(t *testing.T) {
	h := newGetHarness(t)
	v1, v2 := version(1, "old"), version(2, "new")
	sent := h.sessionGet(v2, false)
	if len(sent) != 3 {
		t.Fatalf("asked %v, want the three primaries", sent)
	}
	// R=1 is met at once, but by a stale version: no answer yet.
	if r := h.answerObj(sent[h.pl[0]], h.pl[0], &v1); len(r) != 0 {
		t.Fatalf("answered with a version older than the session's: %+v", r)
	}
	// Chasing: a fallback in place of every primary, in parallel.
	fbs := h.sent()
	if len(fbs) == 0 {
		t.Fatal("no fallback asked while the floor is unmet")
	}
	for _, p := range h.pl[1:] {
		if r := h.answerObj(sent[p], p, nil); len(r) != 0 {
			t.Fatalf("answered %+v without the session's version", r)
		}
	}
	for to, m := range fbs {
		h.answerObj(m, to, nil)
	}
	// The next round asks every node again; the write has reached pl[2].
	h.now = h.now.Add(sessionRetryFirst)
	h.n.Tick(h.now)
	again := h.sent()
	if _, ok := again[h.pl[2]]; !ok {
		t.Fatalf("round 1 asked %v, want %s again", again, h.pl[2])
	}
	r := h.answerObj(again[h.pl[2]], h.pl[2], &v2)
	if len(r) != 1 || r[0].Code != CodeOK || string(r[0].Siblings[0].Value) != "new" {
		t.Fatalf("reply %+v, want the session's version", r)
	}
	ctx, _ := dvv.DecodeContext(r[0].Context)
	if !ctx.Descends(v2.Clock.Join()) {
		t.Fatalf("reply context %v does not dominate the floor %v", ctx, v2.Clock.Join())
	}
}

func TestSessionGetUnavailableWhenNoReplicaHasTheVersion(t *testing.T) {
	h := newGetHarness(t)
	v1, v2 := version(1, "old"), version(2, "new")
	sent := h.sessionGet(v2, false)
	for _, p := range h.pl {
		h.answerObj(sent[p], p, &v1)
	}
	var replies []Reply
	rounds := 0
	for i := 0; i < 200 && len(replies) == 0; i++ {
		h.now = h.now.Add(5 * time.Millisecond)
		h.n.Tick(h.now)
		replies = append(replies, h.collect()...)
		for to, m := range h.sent() {
			rounds++
			replies = append(replies, h.answerObj(m, to, &v1)...)
		}
	}
	if len(replies) != 1 || replies[0].Code != CodeSessionUnavailable || replies[0].Acks < 1 {
		t.Fatalf("replies %+v, want one session_unavailable with R answers", replies)
	}
	// Backoff: over a 1 s timeout, a handful of rounds, not hundreds.
	if rounds > 60 {
		t.Fatalf("%d replica reads for one session read: the backoff does not bound the work", rounds)
	}
	if h.n.InFlight() != 0 {
		t.Fatalf("%d operations left in flight", h.n.InFlight())
	}
}

func TestSessionGetDeletedFloorAcceptsNothingLeft(t *testing.T) {
	h := newGetHarness(t)
	sent := h.sessionGet(version(3, "gone"), true)
	r := h.answerObj(sent[h.pl[0]], h.pl[0], nil)
	if len(r) != 1 || r[0].Code != CodeNotFound {
		t.Fatalf("reply %+v, want not found: the session's newest view was a delete, since reaped", r)
	}
}

func TestGetWithoutSessionAnswersStale(t *testing.T) {
	// The control: the same stale replica, no floor, R=1: answered at once.
	h := newGetHarness(t)
	v1 := version(1, "old")
	h.n.Propose(h.now, Request{ID: 1, Op: OpGet, Key: h.key, R: 1, Timeout: time.Second})
	sent := h.sent()
	r := h.answerObj(sent[h.pl[0]], h.pl[0], &v1)
	if len(r) != 1 || r[0].Code != CodeOK || string(r[0].Siblings[0].Value) != "old" {
		t.Fatalf("reply %+v, want the stale value at once", r)
	}
}

func TestSessionPutFollowsTheFloor(t *testing.T) {
	h := newGetHarness(t)
	rg := h.n.Ring()
	coordID := h.pl[0]
	n, err := New(Config{ID: coordID, Actor: ActorFor(coordID, 1), State: ptr(h.n.State()), R: 1, W: 1}, storage.NewMem())
	if err != nil {
		t.Fatal(err)
	}
	_ = rg
	n.Tick(h.now)
	seen := version(4, "seen elsewhere") // a version this coordinator never stored
	n.Propose(h.now, Request{ID: 7, Op: OpPut, Key: h.key, Value: []byte("mine"), W: 1, Timeout: time.Second, Session: seen.Context()})
	rd := n.Ready()
	n.Advance()
	if len(rd.Replies) != 1 || rd.Replies[0].Code != CodeOK {
		t.Fatalf("replies %+v", rd.Replies)
	}
	ctx, _ := dvv.DecodeContext(rd.Replies[0].Context)
	if !ctx.Descends(seen.Clock.Join()) {
		t.Fatalf("the write's version %v does not follow the session's %v", ctx, seen.Clock.Join())
	}
	// Wherever the two versions meet, the session's write supersedes the
	// version it followed: no sibling.
	var stored object.Object
	for _, w := range rd.Writes {
		if o, err := object.Decode(w.Value); err == nil && len(w.Value) > 0 {
			stored = o
		}
	}
	merged := object.Merge(stored, seen)
	if live := merged.Live(); len(live) != 1 || string(live[0].Value) != "mine" {
		t.Fatalf("merged with the version it followed: %+v, want only the session's write", live)
	}
	// A bad floor is a bad request, not a crash.
	n.Propose(h.now, Request{ID: 8, Op: OpGet, Key: h.key, Session: []byte{9, 9}})
	if rd := n.Ready(); len(rd.Replies) != 1 || rd.Replies[0].Code != CodeBadRequest {
		t.Fatalf("bad floor: %+v", rd.Replies)
	}
}

func ptr[T any](v T) *T { return &v }
