package node

import (
	"slices"
	"testing"
	"time"

	"github.com/dynago/dynago/cluster"
	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// newPutNode starts a core for a six-node, N=3 cluster as id, and returns
// it with key's preference list and fallbacks.
func newPutNode(t *testing.T, id func(pl, fbs []ring.NodeID) ring.NodeID) (n *Node, now time.Time, key []byte, pl, fbs []ring.NodeID) {
	t.Helper()
	st, err := cluster.Initial(8, 3, []ring.NodeID{"a", "b", "c", "d", "e", "f"})
	if err != nil {
		t.Fatal(err)
	}
	rg, _ := st.Ring()
	key = []byte("k")
	p := rg.PartitionOf(key)
	pl, fbs = rg.PreferenceList(p), rg.Fallbacks(p)
	me := id(pl, fbs)
	n, err = New(Config{ID: me, Actor: ActorFor(me, 1), State: &st, R: 2, W: 2, ReplicaTimeout: 100 * time.Millisecond}, storage.NewMem())
	if err != nil {
		t.Fatal(err)
	}
	now = time.Unix(1000, 0)
	n.Tick(now)
	n.Ready()
	n.Advance()
	return n, now, key, pl, fbs
}

func step(n *Node) Ready {
	rd := n.Ready()
	n.Advance()
	return rd
}

// TestPutFallbacksForTwoDownPrimariesMeetW3: with two of three primaries
// down, a W=3 write goes to the coordinator and one fallback per down
// primary, and the fallbacks' acknowledgements complete W. (Before the
// picker was shared, the quorum's total was raised one fallback at a time,
// so it briefly fell below W, was decided as failed without a reply, and
// the client waited for its own timeout.)
func TestPutFallbacksForTwoDownPrimariesMeetW3(t *testing.T) {
	n, now, key, pl, fbs := newPutNode(t, func(pl, _ []ring.NodeID) ring.NodeID { return pl[0] })
	n.SetStatus(pl[1], Dead)
	n.SetStatus(pl[2], Dead)
	n.Propose(now, Request{ID: 1, Op: OpPut, Key: key, Value: []byte("v"), W: 3, Timeout: time.Second})
	rd := step(n)
	if len(rd.Replies) != 0 {
		t.Fatalf("replied before any fallback acknowledged: %+v", rd.Replies)
	}
	want := map[ring.NodeID]ring.NodeID{fbs[0]: pl[1], fbs[1]: pl[2]}
	if len(rd.Requests) != len(want) {
		t.Fatalf("sent %+v; want hints to %v", rd.Requests, want)
	}
	for _, m := range rd.Requests {
		if m.Type != MsgReplicaPut || want[m.To] != m.Hint {
			t.Fatalf("sent %s to %s with hint %q; want hints %v", m.Type, m.To, m.Hint, want)
		}
	}
	for i, m := range rd.Requests {
		n.Step(now, Message{Type: MsgReplicaPutResp, From: m.To, To: pl[0], ReqID: m.ReqID})
		replies := step(n).Replies
		switch {
		case i == 0 && len(replies) != 0:
			t.Fatalf("replied after 2 of 3 acknowledgements: %+v", replies)
		case i == 1 && (len(replies) != 1 || replies[0].Code != CodeOK || replies[0].Acks != 3):
			t.Fatalf("after the third acknowledgement replied %+v; want one OK with 3 acks", replies)
		}
	}
}

// TestPutOnFallbacksOnly covers a write coordinated by a node outside the
// preference list that can reach no primary: it goes to fallbacks only,
// one hint per primary (this node's own stored here), and is refused
// before anything is stored when too few fallbacks are reachable for W.
func TestPutOnFallbacksOnly(t *testing.T) {
	t.Run("enough fallbacks", func(t *testing.T) {
		n, now, key, pl, fbs := newPutNode(t, func(_, fbs []ring.NodeID) ring.NodeID { return fbs[0] })
		for _, id := range pl {
			n.SetStatus(id, Dead)
		}
		n.SetStatus(fbs[2], Dead)
		n.Propose(now, Request{ID: 1, Op: OpPut, Key: key, Value: []byte("v"), W: 2, Timeout: time.Second})
		rd := step(n)
		if len(rd.Replies) != 0 || len(rd.Requests) != 1 {
			t.Fatalf("replies %+v, requests %+v; want one hint sent and no reply yet", rd.Replies, rd.Requests)
		}
		if m := rd.Requests[0]; m.To != fbs[1] || m.Hint != pl[1] {
			t.Fatalf("sent to %s for %q; want %s holding a hint for %s", m.To, m.Hint, fbs[1], pl[1])
		}
		if len(rd.Writes) != 1 || string(rd.Writes[0].Key) != string(storage.HintKey(string(pl[0]), n.Ring().PartitionOf(key), key)) {
			t.Fatalf("writes %+v; want only the local hint for %s", rd.Writes, pl[0])
		}
		n.Step(now, Message{Type: MsgReplicaPutResp, From: fbs[1], To: fbs[0], ReqID: rd.Requests[0].ReqID})
		if r := step(n).Replies; len(r) != 1 || r[0].Code != CodeOK || r[0].Acks != 2 {
			t.Fatalf("replied %+v; want OK with 2 acks", r)
		}
	})
	t.Run("too few fallbacks", func(t *testing.T) {
		n, now, key, pl, fbs := newPutNode(t, func(_, fbs []ring.NodeID) ring.NodeID { return fbs[0] })
		for _, id := range append(append([]ring.NodeID(nil), pl...), fbs[2]) {
			n.SetStatus(id, Dead)
		}
		n.Propose(now, Request{ID: 1, Op: OpPut, Key: key, Value: []byte("v"), W: 3, Timeout: time.Second})
		rd := step(n)
		if len(rd.Requests) != 0 || len(rd.Writes) != 0 {
			t.Fatalf("requests %+v, writes %+v; want nothing sent or stored", rd.Requests, rd.Writes)
		}
		if len(rd.Replies) != 1 || rd.Replies[0].Code != CodeUnavailable {
			t.Fatalf("replied %+v; want unavailable", rd.Replies)
		}
	})
}

// TestReplaceSupersedesTheCoordinatorsCopy: two blind writes leave two
// siblings; a write with Request.Replace (Redis's SET) supersedes both in
// one round trip, and what the coordinator never held stays a sibling.
func TestReplaceSupersedesTheCoordinatorsCopy(t *testing.T) {
	st := storage.NewMem()
	cs, err := cluster.Initial(8, 3, []ring.NodeID{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{ID: "a", Actor: ActorFor("a", 1), State: &cs, R: 2, W: 2, ReplicaTimeout: 100 * time.Millisecond}, st)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	n.Tick(now)
	step(n)
	key := []byte("k")
	put := func(id uint64, value string, replace bool) Ready {
		t.Helper()
		n.Propose(now, Request{ID: id, Op: OpPut, Key: key, Value: []byte(value), W: 1, Timeout: time.Second, Replace: replace})
		rd := step(n)
		if err := st.Apply(rd.Batch(), true); err != nil {
			t.Fatal(err)
		}
		if len(rd.Replies) != 1 || rd.Replies[0].Code != CodeOK {
			t.Fatalf("put %s: replies %+v", value, rd.Replies)
		}
		return rd
	}
	live := func() []string {
		t.Helper()
		o, _, _, err := n.readLocalEnc(n.Ring().PartitionOf(key), key)
		if err != nil {
			t.Fatal(err)
		}
		var vs []string
		for _, s := range o.Live() {
			vs = append(vs, string(s.Value))
		}
		slices.Sort(vs)
		return vs
	}
	put(1, "a", false)
	put(2, "b", false)
	if got := live(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("after two blind writes: %q, want siblings a and b", got)
	}
	rd := put(3, "c", true)
	if got := live(); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("after a replacing write: %q, want c alone", got)
	}
	// The replicas get the replacing version: merged with what they held
	// (a and b), it leaves c alone there too.
	var sent object.Object
	for _, m := range rd.Requests {
		if m.Type == MsgReplicaPut {
			if sent, err = object.Decode(m.Object); err != nil {
				t.Fatal(err)
			}
		}
	}
	ab, _, _, _ := n.readLocalEnc(n.Ring().PartitionOf(key), key)
	if l := object.Merge(sent, ab).Live(); len(l) != 1 || string(l[0].Value) != "c" {
		t.Fatalf("the replicas would keep %+v, want c alone", l)
	}
	// A version written through another coordinator that has not reached
	// this one is not covered: it stays a sibling, never lost.
	other := object.Update(object.Object{}, nil, object.Sibling{Value: []byte("elsewhere")}, ActorFor("b", 1))
	if l := object.Merge(sent, other).Live(); len(l) != 2 {
		t.Fatalf("merged with a version the coordinator never held: %+v, want both", l)
	}
}

// A node outside the preference list forwards a replacing write as one:
// the coordinator must know to stamp it on top of its own copy.
func TestForwardKeepsReplace(t *testing.T) {
	n, now, key, pl, _ := newPutNode(t, func(_, fbs []ring.NodeID) ring.NodeID { return fbs[0] })
	n.Propose(now, Request{ID: 1, Op: OpPut, Key: key, Value: []byte("v"), Timeout: time.Second, Replace: true})
	rd := step(n)
	if len(rd.Requests) != 1 || rd.Requests[0].Type != MsgForward || rd.Requests[0].To != pl[0] || !rd.Requests[0].Replace {
		t.Fatalf("sent %+v; want a forward to %s with Replace", rd.Requests, pl[0])
	}
}

// TestSilentPrimaryGetsTheWriteAgain: in a three-node cluster no fallback
// is left to stand in for a primary whose replica put was lost; the
// coordinator sends it the write again after ReplicaTimeout, and its
// acknowledgement completes W=3 (it used to fail the quorum with every
// replica up).
func TestSilentPrimaryGetsTheWriteAgain(t *testing.T) {
	cs, err := cluster.Initial(8, 3, []ring.NodeID{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{ID: "a", Actor: ActorFor("a", 1), State: &cs, R: 2, W: 2, ReplicaTimeout: 100 * time.Millisecond}, storage.NewMem())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	n.Tick(now)
	step(n)
	n.Propose(now, Request{ID: 1, Op: OpPut, Key: []byte("k"), Value: []byte("v"), W: 3, Timeout: time.Second})
	first := map[ring.NodeID]Message{}
	for _, m := range step(n).Requests {
		first[m.To] = m
	}
	if len(first) != 2 {
		t.Fatalf("sent %v, want replica puts to b and c", first)
	}
	// b acknowledges; c's copy is lost on the way.
	n.Step(now, Message{Type: MsgReplicaPutResp, From: "b", To: "a", ReqID: first["b"].ReqID})
	if r := step(n).Replies; len(r) != 0 {
		t.Fatalf("replied %+v with 2 of 3 acknowledgements", r)
	}
	now = now.Add(100 * time.Millisecond)
	n.Tick(now)
	rd := step(n)
	if len(rd.Requests) != 1 || rd.Requests[0].To != "c" || rd.Requests[0].Type != MsgReplicaPut || rd.Requests[0].ReqID != first["c"].ReqID {
		t.Fatalf("after the replica timeout sent %+v, want the write again to c", rd.Requests)
	}
	n.Step(now, Message{Type: MsgReplicaPutResp, From: "c", To: "a", ReqID: rd.Requests[0].ReqID})
	if r := step(n).Replies; len(r) != 1 || r[0].Code != CodeOK || r[0].Acks != 3 {
		t.Fatalf("replied %+v, want OK with 3 acks", r)
	}
	// The first copy arriving late as well counts once: no second reply.
	n.Step(now, Message{Type: MsgReplicaPutResp, From: "c", To: "a", ReqID: first["c"].ReqID})
	if r := step(n).Replies; len(r) != 0 {
		t.Fatalf("a duplicate acknowledgement replied again: %+v", r)
	}
}

// TestReplicaPutsAreLazyOnlyWhenNoQuorumWaits: a put that has its W on the
// coordinator's own copy (W=1) sends its replica puts with LazySync, and a
// replica echoes the flag on its acknowledgement (the driver may then leave
// the copy to its next fsync); a put that needs a replica's
// acknowledgement (W=2) does not.
func TestReplicaPutsAreLazyOnlyWhenNoQuorumWaits(t *testing.T) {
	for _, tc := range []struct {
		name        string
		coordinator func(pl, fbs []ring.NodeID) ring.NodeID
		w           int
		lazy        bool
	}{
		{"W=1 on a replica", func(pl, _ []ring.NodeID) ring.NodeID { return pl[0] }, 1, true},
		{"W=2 on a replica", func(pl, _ []ring.NodeID) ring.NodeID { return pl[0] }, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, now, key, _, _ := newPutNode(t, tc.coordinator)
			n.Propose(now, Request{ID: 1, Op: OpPut, Key: key, Value: []byte("v"), W: tc.w, Timeout: time.Second})
			rd := step(n)
			if got := len(rd.Replies) == 1; got != tc.lazy {
				t.Fatalf("replied at once: %v (%+v); want %v", got, rd.Replies, tc.lazy)
			}
			var puts []Message
			for _, m := range rd.Requests {
				if m.Type == MsgReplicaPut {
					puts = append(puts, m)
				}
			}
			if len(puts) == 0 {
				t.Fatalf("no replica put sent: %+v", rd.Requests)
			}
			for _, m := range puts {
				if m.LazySync != tc.lazy {
					t.Fatalf("replica put to %s has LazySync %v; want %v", m.To, m.LazySync, tc.lazy)
				}
			}

			// The replica's side: its acknowledgement carries the flag, and
			// it still writes the copy (the driver holds the ack for it).
			r, err := New(Config{ID: puts[0].To, Actor: ActorFor(puts[0].To, 1), State: n.cfg.State, R: 2, W: 2}, storage.NewMem())
			if err != nil {
				t.Fatal(err)
			}
			r.Tick(now)
			step(r)
			in := puts[0]
			in.From = n.cfg.ID
			r.Step(now, in)
			rrd := step(r)
			if len(rrd.Writes) == 0 || len(rrd.Messages) != 1 || rrd.Messages[0].Type != MsgReplicaPutResp {
				t.Fatalf("replica wrote %d keys and answered %+v; want the copy written and one acknowledgement", len(rrd.Writes), rrd.Messages)
			}
			if rrd.Messages[0].LazySync != tc.lazy || rrd.Messages[0].Err != "" {
				t.Fatalf("acknowledgement %+v; want LazySync %v and no error", rrd.Messages[0], tc.lazy)
			}
		})
	}
}
