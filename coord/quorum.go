package coord

import (
	"errors"
	"fmt"
	"slices"

	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
)

// ErrBadQuorum reports an R or W outside 1..N.
var ErrBadQuorum = errors.New("coord: quorum outside 1..N")

// CheckQuorum validates a per-request R or W against the replication factor.
func CheckQuorum(name string, q, n int) error {
	if q < 1 || q > n {
		return fmt.Errorf("%w: %s=%d with N=%d", ErrBadQuorum, name, q, n)
	}
	return nil
}

// Outcome is the state of a quorum after an answer.
type Outcome uint8

const (
	Pending   Outcome = iota // not decided yet
	Succeeded                // the quorum was reached (reported once)
	Failed                   // the quorum can no longer be reached (reported once)
	Decided                  // already reported earlier; nothing new
)

// Quorum counts answers from a fixed set of replicas towards a required
// number. Each replica counts once; duplicates (a retransmitted ack) are
// ignored so that a flaky network cannot fake a quorum.
type Quorum struct {
	Required int
	Total    int // replicas asked
	// The replicas that answered, each once: the first few in the struct
	// itself (a quorum is a handful of replicas, so a scan beats a map and
	// a write's quorum costs one allocation), the rest in more.
	first      [inlineAnswers]ring.NodeID
	more       []ring.NodeID
	nOK, nFail int
	decided    bool
}

// inlineAnswers is how many answers a Quorum holds without allocating: a
// few more than the usual N, for fallbacks.
const inlineAnswers = 5

// NewQuorum makes a quorum of required answers among total replicas.
func NewQuorum(required, total int) *Quorum {
	return &Quorum{Required: required, Total: total}
}

// Ack records a successful answer from id.
func (q *Quorum) Ack(id ring.NodeID) Outcome {
	if q.Answered(id) {
		return q.settled()
	}
	q.record(id)
	q.nOK++
	return q.evaluate()
}

// Fail records that id answered with an error.
func (q *Quorum) Fail(id ring.NodeID) Outcome {
	if q.Answered(id) {
		return q.settled()
	}
	q.record(id)
	q.nFail++
	return q.evaluate()
}

// record notes that id answered, before the count of answers grows.
func (q *Quorum) record(id ring.NodeID) {
	if n := q.nOK + q.nFail; n < inlineAnswers {
		q.first[n] = id
		return
	}
	q.more = append(q.more, id)
}

// SetTotal changes the number of replicas asked (sloppy quorum adds
// fallbacks; unreachable primaries are never asked) and reports Failed if
// the quorum is now out of reach.
func (q *Quorum) SetTotal(total int) Outcome {
	q.Total = total
	return q.evaluate()
}

// Answered reports whether id has answered at all.
func (q *Quorum) Answered(id ring.NodeID) bool {
	n := q.nOK + q.nFail
	for i := range min(n, inlineAnswers) {
		if q.first[i] == id {
			return true
		}
	}
	return slices.Contains(q.more, id)
}

// Acks is the number of successful answers so far.
func (q *Quorum) Acks() int { return q.nOK }

// Complete reports whether every replica asked has answered.
func (q *Quorum) Complete() bool { return q.nOK+q.nFail >= q.Total }

// Done reports whether the outcome has been reported.
func (q *Quorum) Done() bool { return q.decided }

// Expire decides the quorum as failed if it is still pending (the deadline
// passed). It returns Failed only the first time.
func (q *Quorum) Expire() Outcome {
	if q.decided {
		return Decided
	}
	q.decided = true
	return Failed
}

func (q *Quorum) settled() Outcome {
	if q.decided {
		return Decided
	}
	return Pending
}

func (q *Quorum) evaluate() Outcome {
	if q.decided {
		return Decided
	}
	switch {
	case q.nOK >= q.Required:
		q.decided = true
		return Succeeded
	case q.Total-q.nFail < q.Required:
		// Even if every replica still silent answers, the quorum is out of
		// reach: say so now instead of making the client wait for the timeout.
		q.decided = true
		return Failed
	}
	return Pending
}

// Answer is one replica's reply to a get.
type Answer struct {
	From   ring.NodeID
	Found  bool
	Object object.Object // valid when Found
}

// RepairTargets returns the replicas whose answer is stale against merged:
// those that hold nothing while merged holds something, and those whose
// copy does not carry merged's full causal history. Repair sends them merged
// so that every replica that answered ends up with the same version.
func RepairTargets(merged object.Object, answers []Answer) []ring.NodeID {
	if merged.Empty() {
		return nil
	}
	var out []ring.NodeID
	for _, a := range answers {
		if !a.Found || !a.Object.Clock.Equal(merged.Clock) {
			out = append(out, a.From)
		}
	}
	return out
}
