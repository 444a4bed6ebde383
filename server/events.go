package server

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

// Event log sizes. The log is for watching a node, not auditing it: a
// dashboard that connects sees the recent past, then the live stream.
const (
	eventsKept    = 1000 // events retained for polling and reconnects
	eventsReplay  = 200  // events a new stream starts with
	subscriberBuf = 256  // events a stream may fall behind before losing some
)

// observeEvery bounds how often the loop compares the core's counters for
// events: cheap enough to do after every iteration, but a burst of client
// writes should cost one comparison, not one per write.
const observeEvery = 200 * time.Millisecond

// eventBus is a node's event log: a ring buffer of recent events with
// sequence numbers, fanned out to subscribers. Publishing never blocks:
// the event loop publishes, and a slow dashboard must not slow the node.
type eventBus struct {
	node ring.NodeID

	mu      sync.Mutex
	buf     []httpapi.Event // ring of the last eventsKept events
	next    int             // where the next event goes in buf
	seq     uint64          // sequence number of the last event published
	subs    map[*subscriber]struct{}
	dropped uint64
	closed  bool
}

type subscriber struct {
	ch chan httpapi.Event
}

func newEventBus(id ring.NodeID) *eventBus {
	return &eventBus{node: id, buf: make([]httpapi.Event, 0, eventsKept), subs: map[*subscriber]struct{}{}}
}

// publish appends an event and offers it to every subscriber. data must
// not be modified afterwards.
func (b *eventBus) publish(kind, msg string, data any) {
	at := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	ev := httpapi.Event{Seq: b.seq, At: at, Node: b.node, Kind: kind, Msg: msg, Data: data}
	if len(b.buf) < eventsKept {
		b.buf = append(b.buf, ev)
	} else {
		b.buf[b.next] = ev
	}
	b.next = (b.next + 1) % eventsKept
	if b.closed {
		return
	}
	for s := range b.subs {
		select {
		case s.ch <- ev:
		default:
			b.dropped++
		}
	}
}

// newerLocked returns the retained events with a sequence number above
// since, oldest first, at most limit of them (the newest).
func (b *eventBus) newerLocked(since uint64, limit int) []httpapi.Event {
	var out []httpapi.Event
	start := 0
	if len(b.buf) == eventsKept {
		start = b.next // the oldest event, about to be overwritten
	}
	for i := range len(b.buf) {
		if ev := b.buf[(start+i)%eventsKept]; ev.Seq > since {
			out = append(out, ev)
		}
	}
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out
}

// Events implements httpapi.Observer.
func (b *eventBus) Events(since uint64) []httpapi.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.newerLocked(since, eventsKept)
}

// Subscribe implements httpapi.Observer.
func (b *eventBus) Subscribe(since uint64) ([]httpapi.Event, <-chan httpapi.Event, func()) {
	s := &subscriber{ch: make(chan httpapi.Event, subscriberBuf)}
	b.mu.Lock()
	defer b.mu.Unlock()
	replay := b.newerLocked(since, eventsReplay)
	if b.closed {
		close(s.ch)
		return replay, s.ch, func() {}
	}
	b.subs[s] = struct{}{}
	var once sync.Once
	return replay, s.ch, func() {
		once.Do(func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			if _, ok := b.subs[s]; ok {
				delete(b.subs, s)
				close(s.ch)
			}
		})
	}
}

// close ends every stream, so that the HTTP server's shutdown does not
// wait on them.
func (b *eventBus) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		delete(b.subs, s)
		close(s.ch)
	}
}

func (b *eventBus) stats() httpapi.EventStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return httpapi.EventStats{Published: b.seq, Dropped: b.dropped, Subscribers: len(b.subs)}
}

// observer tracks what the loop last published about the core, to turn
// counter snapshots into events. Loop goroutine only.
type observer struct {
	at   time.Time
	last node.Stats
	ho   node.HandoffProgress
	init bool
}

// observe compares the core's counters with the last snapshot, at most
// every observeEvery, and publishes what changed. Loop goroutine only.
func (s *Server) observe(now time.Time) {
	o := &s.obs
	if now.Sub(o.at) < observeEvery {
		return
	}
	o.at = now
	cur := s.core.Stats()
	s.coreSnapshot.Store(&cur)
	ho := s.view.Load().progress
	if !o.init {
		// What happened before this node started serving is not news.
		o.last, o.ho, o.init = cur, ho, true
		return
	}
	prev := o.last
	o.last = cur
	s.hintEvents(prev, cur)
	for _, p := range slices.Sorted(maps.Keys(cur.Exchanges)) {
		x := cur.Exchanges[p]
		if px, ok := prev.Exchanges[p]; ok && px == x {
			continue
		}
		msg := fmt.Sprintf("anti-entropy with %s on partition %d: ", x.Peer, p)
		if x.InSync {
			msg += "in sync"
		} else {
			msg += "trees differ"
		}
		s.events.publish("ae_exchange", msg, map[string]any{"partition": p, "peer": x.Peer, "in_sync": x.InSync})
	}
	if d := cur.AE.KeysRepaired - prev.AE.KeysRepaired; d > 0 {
		s.events.publish("repair", fmt.Sprintf("anti-entropy sent %d object(s) to replicas", d), map[string]any{"kind": "ae", "count": d})
	}
	if d := cur.ReadRepairs - prev.ReadRepairs; d > 0 {
		s.events.publish("repair", fmt.Sprintf("read repair sent %d object(s) to stale replicas", d), map[string]any{"kind": "read", "count": d})
	}
	if ho.Done != o.ho.Done || ho.Total != o.ho.Total {
		s.events.publish("handoff", fmt.Sprintf("handoff %d of %d partitions done", ho.Done, ho.Total), map[string]any{"done": ho.Done, "total": ho.Total})
	}
	o.ho = ho
}

// hintEvents publishes the hints stored and delivered between two
// snapshots.
func (s *Server) hintEvents(prev, cur node.Stats) {
	stored := cur.HintsStored - prev.HintsStored
	named := cur.RecentHints[len(cur.RecentHints)-int(min(stored, uint64(len(cur.RecentHints)))):]
	if unnamed := stored - uint64(len(named)); unnamed > 0 {
		// More hints than the core remembers: count the rest.
		s.events.publish("hint_stored", fmt.Sprintf("%d more hint(s) stored", unnamed), map[string]any{"for": "", "key": "", "count": unnamed})
	}
	for _, h := range named {
		s.events.publish("hint_stored", fmt.Sprintf("stored a hint for %s", h.For), map[string]any{"for": h.For, "key": string(h.Key)})
	}
	for _, to := range slices.Sorted(maps.Keys(cur.DeliveredTo)) {
		if d := cur.DeliveredTo[to] - prev.DeliveredTo[to]; d > 0 {
			s.events.publish("hint_delivered", fmt.Sprintf("delivered %d hint(s) to %s", d, to), map[string]any{"to": to, "count": d})
		}
	}
}

// Subscribe implements httpapi.Observer.
func (s *Server) Subscribe(since uint64) ([]httpapi.Event, <-chan httpapi.Event, func()) {
	return s.events.Subscribe(since)
}

// Events implements httpapi.Observer.
func (s *Server) Events(since uint64) []httpapi.Event { return s.events.Events(since) }

// requestEvent publishes a client request's reply.
func (s *Server) requestEvent(req node.Request, rep node.Reply, took time.Duration) {
	ms := float64(took) / float64(time.Millisecond)
	s.events.publish("request", fmt.Sprintf("%s %q: %s in %.1f ms", req.Op, req.Key, rep.Code, ms), map[string]any{
		"op": req.Op.String(), "key": string(req.Key), "code": rep.Code.String(), "ms": ms, "trace": httpapi.TraceJSON(rep.Trace),
	})
}
