package node

import (
	"fmt"
	"time"

	"github.com/dynago/dynago/dvv"
	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/session"
)

// Session guarantees (Terry et al. 1994) at any R and W. A session read
// carries a floor: the join of the versions its session saw of the key
// (Request.Session). The coordinator answers only once the merge of what
// replicas said dominates the floor. With R answers in hand and the floor
// not met, it asks a fallback in place of every primary (a write acked by
// W=1 fallbacks sits there as a hint), and then, until the deadline, asks
// every node it asked again and one more fallback per round, the rounds
// spaced by a doubling backoff: a write still on its way to the replicas
// (W < N) or a hint on its way home arrives within a round or two. At the
// deadline it answers CodeSessionUnavailable: the version the session saw
// lives only on nodes it cannot reach.
//
// Writes need no waiting: the floor is merged into the write's context,
// so the new version supersedes everything the session saw of the key.

const (
	// sessionRetryFirst is the first pause before asking again: a replica
	// put in flight inside one datacenter lands within a few ms.
	sessionRetryFirst = 10 * time.Millisecond
	// sessionRetryMax caps the backoff, so that a session read waiting for
	// a dead node costs at most about one round of replica reads a second
	// (a forged floor can make a read wait for its whole timeout, so the
	// work it causes must stay small).
	sessionRetryMax = time.Second
)

// getSession is a get's session floor and its re-asking schedule.
type getSession struct {
	floor   dvv.VV
	deleted bool      // the floor's newest version held no live value
	retryAt time.Time // next round of asking again; after the deadline when none is due
	backoff time.Duration
	rounds  int
}

// sessionFloor returns the floor of req (checkRequest validated it).
func sessionFloor(req Request) getSession {
	floor, _ := dvv.DecodeContext(req.Session)
	return getSession{floor: floor, deleted: req.SessionDeleted}
}

// sessionContext returns the context a session write is stamped on: the
// client's context joined with the session's floor for the key.
func sessionContext(req Request) []byte {
	if len(req.Session) == 0 {
		return req.Context
	}
	ctx, err1 := dvv.DecodeContext(req.Context)
	floor, err2 := dvv.DecodeContext(req.Session)
	if err1 != nil || err2 != nil {
		return req.Context // checkRequest rejected it already
	}
	return dvv.EncodeContext(dvv.Merge(ctx, floor))
}

// met reports whether what op merged so far satisfies the session: it
// dominates the floor, or the session's newest view was a delete and
// nothing at all is left of the key (the tombstone was reaped).
func (s *getSession) met(op *getOp) bool {
	if len(s.floor) == 0 {
		return true
	}
	if op.merged.Clock.Join().Descends(s.floor) {
		return true
	}
	return s.deleted && op.merged.Empty()
}

// waiting reports whether op is a session read still looking for its
// floor, so that second answers of nodes asked again are wanted.
func (s *getSession) waiting(op *getOp) bool {
	return len(s.floor) > 0 && !op.decided && !op.finished
}

// sessionChase runs when R answers are in but the floor is not met: a
// fallback for every primary that has none yet, and a round of asking
// again scheduled if none is.
func (n *Node) sessionChase(id uint64, op *getOp) {
	if op.sess.retryAt.After(op.deadline) {
		if op.sess.backoff == 0 {
			op.sess.backoff = sessionRetryFirst
			op.trace.event(n.now, n.cfg.ID, "session", "R answered without the session's version; asking fallbacks and again")
		}
		op.sess.retryAt = n.now.Add(op.sess.backoff)
		op.sess.backoff = min(2*op.sess.backoff, sessionRetryMax)
	}
	asked := len(op.order)
	op.busy = true
	for _, rep := range op.pl {
		n.askFallbackFor(id, op, rep)
	}
	op.busy = false
	if len(op.order) > asked {
		// Local answers arrived while busy: weigh them. The next chase
		// asks nothing new, so this recursion ends.
		n.evaluateGet(id, op)
	}
}

// sessionRetry asks again every node asked so far, and one more
// fallback, for a session read whose floor is still unmet.
func (n *Node) sessionRetry(id uint64, op *getOp) {
	op.sess.retryAt = op.deadline.Add(time.Nanosecond)
	if !op.sess.waiting(op) {
		return
	}
	op.sess.rounds++
	op.busy = true
	// Silent nodes too: a request or its answer may have been lost, or
	// the node restarted since it was first asked.
	for _, to := range append([]ring.NodeID(nil), op.order...) {
		n.requestCopy(id, op, to, op.target(to).standsFor)
	}
	if fb := n.standIn(op, op.pl[0]); fb != "" {
		n.askGet(id, op, fb, op.pl[0])
	}
	op.busy = false
	op.trace.event(n.now, n.cfg.ID, "session", fmt.Sprintf("round %d: asked %d node(s) again", op.sess.rounds, len(op.order)))
	n.evaluateGet(id, op)
}

// onSessionReanswer folds a second (or later) answer of a node into a
// session read. Only what it holds matters now: a node that answered
// "not found" or failed before and now holds the key starts counting.
func (n *Node) onSessionReanswer(id uint64, op *getOp, t *getTarget, from ring.NodeID, obj object.Object, found bool, err error) {
	if err != nil || !found {
		return
	}
	t.found, t.failed = true, false
	t.obj = object.Merge(t.obj, obj)
	if !t.counts {
		t.counts = true
		op.counted++
	}
	op.merged, op.mergedEnc = object.Merge(op.merged, obj), nil
	op.trace.event(n.now, from, "answer", fmt.Sprintf("%d sibling(s), asked again for the session", obj.Clock.Size()))
	n.evaluateGet(id, op)
}

// failSessionGet answers a session read whose floor no answer met by the
// deadline, although R nodes answered.
func (n *Node) failSessionGet(op *getOp) {
	n.deliverGet(op, Reply{
		Code: CodeSessionUnavailable, Acks: op.counted, Required: op.required, Trace: op.trace.finish(),
		Err: fmt.Sprintf("%d replicas answered, but none that answered in time holds the version this session already saw (it may live only on unreachable nodes); retry later", op.counted),
	})
}

// WithSession gives req the floor tok holds for req.Key: what a front end
// (HTTP, RESP, the simulator) does with a session token before Propose.
// A nil tok leaves req alone.
func WithSession(tok *session.Token, req *Request) {
	if tok == nil {
		return
	}
	floor, deleted := tok.Floor(req.Key)
	req.Session, req.SessionDeleted = dvv.EncodeContext(floor), deleted
}

// ObserveSession records in tok what rep, the answer to req, showed the
// session: the version read (a get answered OK or not found) or written
// (a put or delete answered OK). A write that failed (outcome unknown) is
// not recorded, so the session's reads never wait for a write that may
// never have been stored. A nil tok is left alone.
func ObserveSession(tok *session.Token, req Request, rep Reply) {
	if tok == nil {
		return
	}
	var seen, deleted bool
	switch req.Op {
	case OpGet:
		seen, deleted = rep.Code == CodeOK || rep.Code == CodeNotFound, rep.Code == CodeNotFound
	default:
		seen, deleted = rep.Code == CodeOK, req.Op == OpDelete
	}
	if !seen {
		return
	}
	// Contexts the core hands out decode; an error leaves tok as it was.
	if vv, err := dvv.DecodeContext(rep.Context); err == nil {
		tok.Observe(req.Key, vv, deleted)
	}
}
