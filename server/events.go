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

	// requestEventsPerSecond bounds the request events a node logs. A
	// dashboard shows a handful a second and the log keeps eventsKept;
	// past a few hundred a second each one only costs the request path
	// (formatting, the trace as JSON, the bus's lock) and pushes the log's
	// other events out sooner. Cassandra samples its request tracing for
	// the same reason (nodetool settraceprobability).
	requestEventsPerSecond = 200
)

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

	// Request events logged in the current second, and those skipped
	// because the second's requestEventsPerSecond were used up.
	reqSecond int64
	reqLogged int
	reqSkip   uint64
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
	return httpapi.EventStats{Published: b.seq, Dropped: b.dropped, Subscribers: len(b.subs), RequestsSkipped: b.reqSkip}
}

// admitRequest reports whether a request finishing at now may be logged,
// at most requestEventsPerSecond per wall-clock second.
func (b *eventBus) admitRequest(now time.Time) bool {
	sec := now.Unix()
	b.mu.Lock()
	defer b.mu.Unlock()
	if sec != b.reqSecond {
		b.reqSecond, b.reqLogged = sec, 0
	}
	if b.reqLogged >= requestEventsPerSecond {
		b.reqSkip++
		return false
	}
	b.reqLogged++
	return true
}

// publishEvents turns the core's events, released after the fsync that
// made them true, into metrics and event-log entries. Loop goroutine only.
// Hints, exchanges and read repairs are logged one by one (each names its
// key or partition); the objects sent by anti-entropy, handoffs and hint
// spreading can number thousands per exchange, so the log gets one entry
// per kind and batch, with a count.
func (s *Server) publishEvents(evs []node.Event) {
	var bulk map[node.RepairCause]int
	for _, e := range evs {
		s.metrics.count(e)
		switch e.Kind {
		case node.HintStored:
			s.events.publish("hint_stored", fmt.Sprintf("stored a hint for %s", e.Peer), map[string]any{"for": e.Peer, "key": string(e.Key)})
		case node.HintDelivered:
			s.events.publish("hint_delivered", fmt.Sprintf("delivered a hint to %s", e.Peer), map[string]any{"to": e.Peer, "key": string(e.Key), "count": 1})
		case node.Exchange:
			msg := fmt.Sprintf("anti-entropy with %s on partition %d: ", e.Peer, e.Partition)
			if e.InSync {
				msg += "in sync"
			} else {
				msg += "trees differ"
			}
			s.events.publish("ae_exchange", msg, map[string]any{"partition": e.Partition, "peer": e.Peer, "in_sync": e.InSync})
		case node.Repair:
			if e.Cause == node.RepairRead {
				s.events.publish("repair", fmt.Sprintf("read repair sent %q to stale replica %s", e.Key, e.Peer),
					map[string]any{"kind": "read", "count": 1, "to": e.Peer, "key": string(e.Key)})
				continue
			}
			if bulk == nil {
				bulk = map[node.RepairCause]int{}
			}
			bulk[e.Cause]++
		case node.HandoffStep:
			s.events.publish("handoff", fmt.Sprintf("handed partition %d to %s (%d objects)", e.Partition, e.Peer, e.N),
				map[string]any{"partition": e.Partition, "to": e.Peer, "objects": e.N})
		}
	}
	for _, c := range slices.Sorted(maps.Keys(bulk)) {
		what := map[node.RepairCause]string{node.RepairAE: "anti-entropy", node.RepairHandoff: "handoff", node.RepairSpread: "hint spreading"}[c]
		s.events.publish("repair", fmt.Sprintf("%s sent %d object(s) to replicas", what, bulk[c]), map[string]any{"kind": c.String(), "count": bulk[c]})
	}
}

// progressEvent logs a transition's handoff progress when it changed
// (old is nil at start).
func (s *Server) progressEvent(old, cur *stateView) {
	if old == nil || (old.progress.Done == cur.progress.Done && old.progress.Total == cur.progress.Total) {
		return
	}
	ho := cur.progress
	s.events.publish("handoff", fmt.Sprintf("handoff %d of %d partitions done", ho.Done, ho.Total), map[string]any{"done": ho.Done, "total": ho.Total})
}

// Subscribe implements httpapi.Observer.
func (s *Server) Subscribe(since uint64) ([]httpapi.Event, <-chan httpapi.Event, func()) {
	return s.events.Subscribe(since)
}

// Events implements httpapi.Observer.
func (s *Server) Events(since uint64) []httpapi.Event { return s.events.Events(since) }

// requestEvent publishes a client request's reply, for a request the
// event log sampled (admitRequest; see requestEventsPerSecond).
func (s *Server) requestEvent(req node.Request, rep node.Reply, took time.Duration) {
	ms := float64(took) / float64(time.Millisecond)
	s.events.publish("request", fmt.Sprintf("%s %q: %s in %.1f ms", req.Op, req.Key, rep.Code, ms), map[string]any{
		"op": req.Op.String(), "key": string(req.Key), "code": rep.Code.String(), "ms": ms, "trace": httpapi.TraceJSON(rep.Trace),
	})
}
