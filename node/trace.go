package node

import (
	"cmp"
	"slices"
	"time"

	"github.com/dynago/dynago/ring"
)

// tracer accumulates a Trace while an operation runs. A nil tracer (an
// operation nobody asked to trace) records nothing: every method is a
// no-op on nil, so the request path allocates no events, no copies of the
// preference list and no notes unless a trace was asked for.
type tracer struct {
	start time.Time
	t     Trace
}

// newTracer returns a tracer for an operation, or nil when on is false.
func newTracer(on bool, now time.Time, coordinator ring.NodeID, p int, pl []ring.NodeID) *tracer {
	if !on {
		return nil
	}
	return &tracer{start: now, t: Trace{Coordinator: coordinator, Partition: p, PreferenceList: append([]ring.NodeID(nil), pl...)}}
}

func (tr *tracer) event(now time.Time, node ring.NodeID, what, note string) {
	if tr == nil {
		return
	}
	tr.t.Events = append(tr.t.Events, TraceEvent{At: now.Sub(tr.start), Node: node, What: what, Note: note})
}

// on reports whether the operation is traced: callers that build a note
// with fmt check it first, so that an untraced operation does not pay.
func (tr *tracer) on() bool { return tr != nil }

func (tr *tracer) setCoordinator(id ring.NodeID) {
	if tr != nil {
		tr.t.Coordinator = id
	}
}

func (tr *tracer) setForwardedBy(id ring.NodeID) {
	if tr != nil {
		tr.t.ForwardedBy = id
	}
}

// finish returns a copy of the trace so far (nil when untraced); the
// operation may keep adding events (late answers, read repair) to its own
// copy.
func (tr *tracer) finish() *Trace {
	if tr == nil {
		return nil
	}
	t := tr.t
	t.Events = append([]TraceEvent(nil), tr.t.Events...)
	return &t
}

func traceEvents(t *Trace) []TraceEvent {
	if t == nil {
		return nil
	}
	return t.Events
}

// merge adds a remote coordinator's events to a forwarding node's trace.
// The two nodes' clocks are not comparable, so the remote offsets are
// shifted to the middle of the forward's round trip: the coordinator's
// work is centred between the forwarding node's "sent" (at sentAt) and the
// answer (at now), which is exact when both legs take equally long.
func (tr *tracer) merge(now, sentAt time.Time, remote []TraceEvent) {
	if tr == nil || len(remote) == 0 {
		return
	}
	var span time.Duration // how long the coordinator worked
	for _, e := range remote {
		span = max(span, e.At)
	}
	shift := sentAt.Sub(tr.start) + max(0, (now.Sub(sentAt)-span)/2)
	for _, e := range remote {
		e.At += shift
		tr.t.Events = append(tr.t.Events, e)
	}
	slices.SortStableFunc(tr.t.Events, func(a, b TraceEvent) int { return cmp.Compare(a.At, b.At) })
}
