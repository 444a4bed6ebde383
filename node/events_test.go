package node

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dynago/dynago/cluster"
	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// eventNet runs a few cores on in-memory disks and carries their messages
// at once, keeping each node's Ready.Events.
type eventNet struct {
	t      *testing.T
	now    time.Time
	ids    []ring.NodeID
	ring   *ring.Ring
	nodes  map[ring.NodeID]*Node
	disks  map[ring.NodeID]*storage.Mem
	down   map[ring.NodeID]bool // messages to these are dropped
	events map[ring.NodeID][]Event
}

func newEventNet(t *testing.T, ids ...ring.NodeID) *eventNet {
	t.Helper()
	st, err := cluster.Initial(8, 3, ids)
	if err != nil {
		t.Fatal(err)
	}
	rg, err := st.Ring()
	if err != nil {
		t.Fatal(err)
	}
	en := &eventNet{t: t, now: time.Unix(1000, 0), ids: ids, ring: rg, nodes: map[ring.NodeID]*Node{},
		disks: map[ring.NodeID]*storage.Mem{}, down: map[ring.NodeID]bool{}, events: map[ring.NodeID][]Event{}}
	for _, id := range ids {
		en.disks[id] = storage.NewMem()
		n, err := New(Config{ID: id, Actor: ActorFor(id, 1), State: &st, ReplicaTimeout: 100 * time.Millisecond,
			HintRetry: time.Second, AEInterval: time.Second, TreeLeaves: 16}, en.disks[id])
		if err != nil {
			t.Fatal(err)
		}
		n.Tick(en.now)
		en.nodes[id] = n
	}
	en.pump()
	return en
}

// collect takes one node's Ready, applies its writes and returns it.
func (en *eventNet) collect(id ring.NodeID) Ready {
	n := en.nodes[id]
	rd := n.Ready()
	if rd.Err != nil {
		en.t.Fatalf("%s stopped: %v", id, rd.Err)
	}
	if err := en.disks[id].Apply(rd.Batch(), true); err != nil {
		en.t.Fatal(err)
	}
	n.Advance()
	en.events[id] = append(en.events[id], rd.Events...)
	return rd
}

// pump delivers messages until every core is quiet (bounded).
func (en *eventNet) pump() {
	for range 1000 {
		var msgs []Message
		for _, id := range en.ids {
			if en.nodes[id].HasReady() {
				rd := en.collect(id)
				msgs = append(append(msgs, rd.Requests...), rd.Messages...)
			}
		}
		if len(msgs) == 0 {
			return
		}
		for _, m := range msgs {
			if n, ok := en.nodes[m.To]; ok && !en.down[m.To] {
				n.Step(en.now, m)
			}
		}
	}
	en.t.Fatal("the cores never went quiet")
}

// tick advances every core's clock by d and pumps.
func (en *eventNet) tick(d time.Duration) {
	en.now = en.now.Add(d)
	for _, id := range en.ids {
		if !en.down[id] {
			en.nodes[id].Tick(en.now)
		}
	}
	en.pump()
}

func (en *eventNet) find(id ring.NodeID, match func(Event) bool) (Event, bool) {
	i := slices.IndexFunc(en.events[id], match)
	if i < 0 {
		return Event{}, false
	}
	return en.events[id][i], true
}

func encodedValue(v, actor string) []byte {
	return object.Encode(object.Update(object.Object{}, nil, object.Sibling{Value: []byte(v)}, actor))
}

func TestEventsHintStoredThenDelivered(t *testing.T) {
	en := newEventNet(t, "a", "b", "c", "d")
	key := []byte("cart")
	p := en.ring.PartitionOf(key)
	pl := en.ring.PreferenceList(p)
	fb := en.ring.Fallbacks(p)[0]
	primary := pl[2]

	// A coordinator stands fb in for primary, which is down.
	en.down[primary] = true
	en.nodes[fb].Step(en.now, Message{Type: MsgReplicaPut, From: pl[0], To: fb, ReqID: 7, Key: key, Object: encodedValue("v", "x:1"), Hint: primary})
	rd := en.collect(fb)
	want := Event{Kind: HintStored, Peer: primary, Key: key, Partition: p}
	if len(rd.Events) != 1 || !eventEqual(rd.Events[0], want) {
		t.Fatalf("events = %v, want [%v]", rd.Events, want)
	}
	// The event comes with the acknowledgement, which waits for the fsync.
	if len(rd.Writes) == 0 || !slices.ContainsFunc(rd.Messages, func(m Message) bool { return m.Type == MsgReplicaPutResp }) {
		t.Fatalf("the hint's event left without its write and acknowledgement: %+v", rd)
	}
	// The same hint merged again is no news; a newer version is.
	en.nodes[fb].Step(en.now, Message{Type: MsgReplicaPut, From: pl[0], To: fb, ReqID: 8, Key: key, Object: encodedValue("v", "x:1"), Hint: primary})
	if rd := en.collect(fb); len(rd.Events) != 0 {
		t.Fatalf("an unchanged hint was reported: %v", rd.Events)
	}

	// The primary recovers: the next sweep delivers the hint.
	en.down[primary] = false
	en.tick(2 * time.Second)
	got, ok := en.find(fb, func(e Event) bool { return e.Kind == HintDelivered })
	if want := (Event{Kind: HintDelivered, Peer: primary, Key: key, Partition: p}); !ok || !eventEqual(got, want) {
		t.Fatalf("events of %s = %v, want %v among them", fb, en.events[fb], want)
	}
	if s := en.nodes[fb].Stats(); s.HintsStored != 1 || s.HintsDelivered != 1 || len(s.HintsHeld) != 0 {
		t.Fatalf("stats disagree with the events: stored %d, delivered %d, held %v", s.HintsStored, s.HintsDelivered, s.HintsHeld)
	}
}

func TestEventsExchangeAndRepair(t *testing.T) {
	en := newEventNet(t, "a", "b", "c")
	key := []byte("cart")
	p := en.ring.PartitionOf(key)
	// Only a holds the key: anti-entropy must find and repair it.
	en.nodes["a"].Step(en.now, Message{Type: MsgReplicaPut, From: "b", To: "a", ReqID: 1, Key: key, Object: encodedValue("v", "x:1")})
	en.pump()
	// Each node exchanges one partition per interval, with its replicas in
	// turn: run until both others hold the key (bounded).
	holds := func(id ring.NodeID) bool {
		_, err := en.disks[id].Get(storage.ObjectKey(p, key))
		return err == nil
	}
	for i := 0; i < 100 && !(holds("b") && holds("c")); i++ {
		en.tick(time.Second)
	}
	en.tick(10 * time.Second) // and an exchange that finds p in sync
	var differ, inSync, built bool
	repaired := map[ring.NodeID]bool{}
	for _, id := range en.ids {
		for _, e := range en.events[id] {
			switch {
			case e.Kind == Exchange && e.Partition == p && !e.InSync:
				differ = true
			case e.Kind == Exchange && e.InSync:
				inSync = true
			case e.Kind == Repair && e.Cause == RepairAE && string(e.Key) == "cart" && e.Partition == p:
				if id != "a" && e.Peer != "a" {
					t.Errorf("%s repaired %s, but only a held the key", id, e.Peer)
				}
				repaired[e.Peer] = true
			case e.Kind == TreeBuilt:
				built = true
			}
		}
	}
	if !differ || !inSync || !built {
		t.Fatalf("exchange that differed %v, in sync %v, tree built %v; events %v", differ, inSync, built, en.events)
	}
	if !repaired["b"] || !repaired["c"] {
		t.Fatalf("anti-entropy repairs reached %v, want b and c", repaired)
	}
	if got := en.nodes["a"].Stats().AE.KeysRepaired; got == 0 {
		t.Fatal("KeysRepaired did not count the repairs")
	}
}

func TestEventsReadRepair(t *testing.T) {
	en := newEventNet(t, "a", "b", "c")
	key := []byte("cart")
	p := en.ring.PartitionOf(key)
	pl := en.ring.PreferenceList(p)
	// pl[2] missed the write.
	for _, id := range pl[:2] {
		en.nodes[id].Step(en.now, Message{Type: MsgReplicaPut, From: pl[2], To: id, ReqID: 1, Key: key, Object: encodedValue("v", "x:1")})
	}
	en.pump()
	en.nodes[pl[0]].Propose(en.now, Request{ID: 1, Op: OpGet, Key: key})
	en.pump()
	en.tick(time.Millisecond) // any late answer
	var reads []Event
	for _, e := range en.events[pl[0]] {
		if e.Kind == Repair {
			reads = append(reads, e)
		}
	}
	want := Event{Kind: Repair, Peer: pl[2], Key: key, Partition: p, Cause: RepairRead}
	if len(reads) != 1 || !eventEqual(reads[0], want) {
		t.Fatalf("repairs = %v, want [%v]", reads, want)
	}
	if got := en.nodes[pl[0]].Stats().ReadRepairs; got != 1 {
		t.Fatalf("ReadRepairs = %d, want 1", got)
	}
}

func eventEqual(a, b Event) bool {
	return a.Kind == b.Kind && a.Peer == b.Peer && string(a.Key) == string(b.Key) && a.Partition == b.Partition &&
		a.InSync == b.InSync && a.Cause == b.Cause && a.N == b.N
}

func TestEventStrings(t *testing.T) {
	for _, c := range []struct {
		e    Event
		want string
	}{
		{Event{Kind: HintStored, Peer: "c", Key: []byte("k")}, `hint stored for c: "k"`},
		{Event{Kind: Repair, Peer: "b", Key: []byte("k"), Cause: RepairSpread}, `spread repair to b: "k"`},
		{Event{Kind: Exchange, Peer: "b", Partition: 3, InSync: true}, "exchange with b on partition 3: in sync"},
	} {
		if got := fmt.Sprint(c.e); got != c.want {
			t.Errorf("%#v prints %q, want %q", c.e, got, c.want)
		}
	}
}
