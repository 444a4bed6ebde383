package node

import (
	"cmp"
	"slices"
	"time"

	"github.com/dynago/dynago/ring"
)

// tracer accumulates a Trace while an operation runs.
type tracer struct {
	start time.Time
	t     Trace
}

func newTracer(now time.Time, coordinator ring.NodeID, p int, pl []ring.NodeID) *tracer {
	return &tracer{start: now, t: Trace{Coordinator: coordinator, Partition: p, PreferenceList: append([]ring.NodeID(nil), pl...)}}
}

func (tr *tracer) event(now time.Time, node ring.NodeID, what, note string) {
	tr.t.Events = append(tr.t.Events, TraceEvent{At: now.Sub(tr.start), Node: node, What: what, Note: note})
}

// finish returns a copy of the trace so far; the operation may keep adding
// events (late answers, read repair) to its own copy.
func (tr *tracer) finish() *Trace {
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
	if len(remote) == 0 {
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
