package node

import (
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
