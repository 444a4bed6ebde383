package node

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/dynago/dynago/coord"
	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
)

// Reads that do not lie. A get counts toward R only answers that vouch
// for the key: every answer of a primary (a copy, or "not found"), and the
// answer of a fallback that holds a hinted copy of the key. A fallback
// without one knows nothing about the key (it is no replica), so its "not
// found" is no information and never counts: a 404 therefore needs R
// primaries that hold nothing live. The coordinator asks every primary,
// those its failure detector marks dead included (a restarted node's
// detector lags, and a node marked dead may answer), and, in parallel, a
// fallback in place of each primary marked dead. A primary silent for the
// replica timeout also gets a fallback, as a write's would; once its
// fallback has answered too it is given up. The read fails (503) as soon as
// the answers that may still come cannot bring R, not at the deadline.

// getOp is a get this node coordinates. It lives until every node asked
// has answered or the deadline passes, so that read repair can fix the
// replicas that answered after the client already had its reply.
type getOp struct {
	origin   origin
	key      []byte
	p        int
	pl       []ring.NodeID
	required int
	// order holds the nodes asked, in asking order, and asked their
	// targets, index for index (target looks one up). A preference list is
	// a handful of nodes, so a scan beats a map, and the first few of each
	// live in the op itself (orderBuf, askedBuf, targetBuf): a get
	// allocates them with its op, not one by one.
	order     []ring.NodeID
	asked     []*getTarget
	orderBuf  [inlineTargets]ring.NodeID
	askedBuf  [inlineTargets]*getTarget
	targetBuf [inlineTargets]getTarget
	// rg is the ring the get started on: its fallbacks are the ones
	// asked, even if a new ring is committed meanwhile. tried holds the
	// fallbacks already considered, asked or passed over as unreachable;
	// none is considered again (see standIn).
	rg      *ring.Ring
	tried   []ring.NodeID
	counted int // answers that count toward R
	decided bool
	merged  object.Object
	// mergedEnc is merged's encoding while every copy found so far was
	// these same bytes (the usual case: the replicas agree), else nil. An
	// answer with the same bytes is then the same object: it is neither
	// decoded nor merged again.
	mergedEnc  []byte
	foundAny   bool // a copy was found: merged holds at least one answer
	fallbackAt time.Time
	timedOut   bool // the replica timeout passed: silent primaries got fallbacks
	deadline   time.Time
	trace      *tracer
	// busy holds decisions back while the op is still sending (local
	// answers arrive synchronously); finished marks it forgotten.
	busy, finished bool
	// sess is the session's floor for a session read (see session.go).
	sess getSession
}

// inlineTargets is how many targets a getOp holds without allocating:
// the default N, which most gets ask and no more.
const inlineTargets = 3

// target returns the target of the node to, nil when to was not asked.
func (op *getOp) target(to ring.NodeID) *getTarget {
	for i, id := range op.order {
		if id == to {
			return op.asked[i]
		}
	}
	return nil
}

// getTarget is one node a get asked.
type getTarget struct {
	standsFor ring.NodeID // "" for a primary; else the primary this fallback is asked for
	answered  bool
	found     bool
	obj       object.Object
	counts    bool // the answer vouches for the key: it counts toward R
	failed    bool // answered with an error
	// Primaries only: a fallback was asked in its place, and the primary
	// was given up (silent past the replica timeout, its fallback answered).
	fallback  ring.NodeID
	abandoned bool
}

// startGet asks every primary of key's preference list for its copy, and a
// fallback in place of each primary the failure detector marks dead. Any
// node may coordinate a get; unlike a put it needs no local version stamp.
func (n *Node) startGet(o origin, key []byte, r int, timeout time.Duration, forwardedBy ring.NodeID, sess getSession) {
	p := n.ring.PartitionOf(key)
	pl := n.ring.PreferenceList(p)
	tr := newTracer(o.trace, n.now, n.cfg.ID, p, pl)
	tr.setForwardedBy(forwardedBy)
	id := n.newOpID()
	op := &getOp{
		origin: o, key: key, p: p, pl: pl, required: r, rg: n.ring,
		fallbackAt: n.now.Add(min(n.cfg.ReplicaTimeout, timeout)),
		deadline:   n.now.Add(timeout), trace: tr, busy: true, sess: sess,
	}
	op.sess.retryAt = op.deadline.Add(time.Nanosecond) // none until the floor is found unmet
	op.order, op.asked = op.orderBuf[:0], op.askedBuf[:0]
	n.gets[id] = op
	var down []ring.NodeID
	for _, rep := range pl {
		if !n.reachable(rep) {
			down = append(down, rep)
		}
		n.askGet(id, op, rep, "")
	}
	for _, rep := range down {
		n.askFallbackFor(id, op, rep)
	}
	op.busy = false
	n.evaluateGet(id, op)
}

// askGet sends one node a replica get (or reads locally); standsFor names
// the primary a fallback is asked in place of.
func (n *Node) askGet(id uint64, op *getOp, to, standsFor ring.NodeID) {
	if op.target(to) != nil {
		return
	}
	var t *getTarget
	if i := len(op.order); i < len(op.targetBuf) {
		t = &op.targetBuf[i]
	} else {
		t = new(getTarget)
	}
	t.standsFor = standsFor
	op.order = append(op.order, to)
	op.asked = append(op.asked, t)
	if n.requestCopy(id, op, to, standsFor) {
		return
	}
	if standsFor != "" {
		op.trace.event(n.now, to, "sent", "replica get (fallback for "+string(standsFor)+")")
	} else if !n.reachable(to) {
		op.trace.event(n.now, to, "sent", "replica get (marked dead, asked anyway)")
	} else {
		op.trace.event(n.now, to, "sent", "replica get")
	}
}

// requestCopy sends to a replica get for op, or, when to is this node,
// reads its copy (its hints' copy when it stands in for a primary) and
// answers at once; it reports whether it read locally. A session read's
// later rounds ask again through it too.
func (n *Node) requestCopy(id uint64, op *getOp, to, standsFor ring.NodeID) (local bool) {
	if to == n.cfg.ID {
		var (
			obj  object.Object
			enc  []byte
			have bool
			err  error
		)
		if standsFor != "" {
			obj, have, err = n.readHints(op.key)
		} else {
			obj, enc, have, err = n.readLocalEnc(op.p, op.key)
		}
		n.onAnswer(id, op, to, obj, enc, have, err)
		return true
	}
	n.send(Message{Type: MsgReplicaGet, To: to, ReqID: id, Key: op.key, Hint: standsFor})
	return false
}

// askFallbackFor asks the next reachable fallback not asked yet in place of
// primary. With none left, the primary has no stand-in.
func (n *Node) askFallbackFor(id uint64, op *getOp, primary ring.NodeID) {
	t := op.target(primary)
	if t == nil || t.fallback != "" {
		return
	}
	if fb := n.standIn(op, primary); fb != "" {
		t.fallback = fb
		n.askGet(id, op, fb, primary)
	}
}

// standIn picks the fallback a get asks in place of primary (ring.StandIns),
// or "" when none is left. The get walks its fallbacks once over its
// lifetime, as a cursor: a fallback passed over because it was unreachable
// is not reconsidered in a later round, and once the walk found none left,
// no later round asks any.
func (n *Node) standIn(op *getOp, primary ring.NodeID) ring.NodeID {
	tg := op.rg.StandIns(op.p, []ring.NodeID{primary}, func(fb ring.NodeID) bool {
		if slices.Contains(op.tried, fb) {
			return false
		}
		op.tried = append(op.tried, fb)
		return op.target(fb) == nil && n.reachable(fb)
	})
	if len(tg) == 0 {
		return ""
	}
	return tg[0].Node
}

// getFallbacks runs when the replica timeout passes: every primary that has
// not answered with something that counts gets a fallback (as a write's
// would), and primaries whose fallback already answered are given up.
func (n *Node) getFallbacks(id uint64, op *getOp) {
	op.fallbackAt = op.deadline.Add(time.Nanosecond) // one round only
	op.timedOut = true
	if op.decided {
		return
	}
	op.busy = true
	for _, rep := range op.pl {
		t := op.target(rep)
		if t == nil || t.counts {
			continue
		}
		if !t.answered {
			op.trace.event(n.now, rep, "timeout", "no answer within the replica timeout")
		}
		n.askFallbackFor(id, op, rep)
	}
	op.busy = false
	n.evaluateGet(id, op)
}

func (n *Node) onReplicaGetResp(m Message) {
	op, ok := n.gets[m.ReqID]
	if !ok {
		return
	}
	var (
		obj object.Object
		err error
	)
	switch {
	case m.Err != "":
		err = fmt.Errorf("%s", m.Err)
	case !m.Found:
	case op.mergedEnc != nil && bytes.Equal(m.Object, op.mergedEnc):
		// The copy the others sent: those bytes were decoded (so checked)
		// once already, and decoding them again gives merged itself.
		obj = op.merged
	default:
		obj, err = object.Decode(m.Object)
	}
	n.onAnswer(m.ReqID, op, m.From, obj, m.Object, m.Found && err == nil, err)
}

// onAnswer folds one node's answer into the get. A primary's answer counts
// toward R whatever it says; a fallback's only when it holds a hinted copy.
// enc is obj's canonical encoding when the caller has it, else nil.
func (n *Node) onAnswer(id uint64, op *getOp, from ring.NodeID, obj object.Object, enc []byte, found bool, err error) {
	t := op.target(from)
	if t != nil && t.answered && op.sess.waiting(op) {
		n.onSessionReanswer(id, op, t, from, obj, found, err)
		return
	}
	if t == nil || t.answered {
		return // not asked, or a duplicate
	}
	t.answered = true
	switch {
	case err != nil:
		t.failed = true
		op.trace.event(n.now, from, "error", err.Error())
		if t.standsFor == "" && !op.decided {
			busy := op.busy
			op.busy = true
			n.askFallbackFor(id, op, from)
			op.busy = busy
		}
	case found:
		t.found, t.obj, t.counts = true, obj, true
		switch {
		case !op.foundAny:
			op.merged, op.mergedEnc = object.Merge(op.merged, obj), enc
		case enc != nil && bytes.Equal(enc, op.mergedEnc):
			// Equal to merged: merging would change nothing.
		default:
			op.merged, op.mergedEnc = object.Merge(op.merged, obj), nil
		}
		op.foundAny = true
		if op.trace.on() {
			note := fmt.Sprintf("%d sibling(s)", obj.Clock.Size())
			if t.standsFor != "" {
				note += " from hints"
			}
			op.trace.event(n.now, from, "answer", note)
		}
	case t.standsFor == "":
		t.counts = true
		op.trace.event(n.now, from, "not_found", "")
	default:
		op.trace.event(n.now, from, "no_hint", "fallback for "+string(t.standsFor)+" holds no hint: no information, not counted")
	}
	if t.counts {
		op.counted++
	}
	n.evaluateGet(id, op)
}

// evaluateGet answers the client once R answers that count are in, or as
// soon as the answers still possible cannot bring R; and runs read repair
// once every node asked has answered.
func (n *Node) evaluateGet(id uint64, op *getOp) {
	if op.busy || op.finished {
		return
	}
	if !op.decided {
		pending := 0
		for i, rep := range op.order {
			t := op.asked[i]
			if t.answered {
				continue
			}
			if t.standsFor == "" && op.timedOut && (t.fallback == "" || op.target(t.fallback).answered) {
				// Silent past the replica timeout, and its stand-in has
				// said what it knows: give it up. A later answer still
				// counts while the get is undecided.
				if !t.abandoned {
					t.abandoned = true
					op.trace.event(n.now, rep, "timeout", "given up: silent past the replica timeout")
				}
				continue
			}
			pending++
		}
		switch {
		case op.counted >= op.required && op.sess.met(op):
			op.decided = true
			n.replyGet(op)
		case op.counted >= op.required:
			// R answered, but not with the session's versions: keep
			// asking (sessionChase) until they come or the deadline.
			n.sessionChase(id, op)
			return
		case op.counted+pending < op.required:
			op.decided = true
			n.failGet(op, "")
		}
	}
	for _, t := range op.asked {
		if !t.answered {
			return
		}
	}
	n.finishGet(id, op)
}

func (n *Node) replyGet(op *getOp) {
	r := Reply{Acks: op.counted, Required: op.required, Trace: op.trace.finish()}
	if n.cfg.LWW {
		op.merged, op.mergedEnc = object.LWW(op.merged), nil
	}
	if !op.merged.Empty() {
		r.Context = op.merged.Context()
	}
	r.Siblings = distinct(op.merged.Live())
	if len(r.Siblings) == 0 {
		r.Code = CodeNotFound
	}
	n.deliverGet(op, r)
}

func (n *Node) failGet(op *getOp, why string) {
	if why == "" {
		why = fmt.Sprintf("only %d of %d required replicas answered (a fallback without a hint does not count)", op.counted, op.required)
	}
	n.deliverGet(op, Reply{Code: CodeQuorumFailed, Err: why, Acks: op.counted, Required: op.required, Trace: op.trace.finish()})
}

func (n *Node) deliverGet(op *getOp, r Reply) {
	r.ID = op.origin.client
	n.reply(r)
}

func (n *Node) expireGet(id uint64, op *getOp) {
	if !op.decided {
		op.decided = true
		op.trace.event(n.now, n.cfg.ID, "timeout", "")
		if op.counted >= op.required && len(op.sess.floor) > 0 {
			// R answered long ago; only the session's floor was missing.
			n.failSessionGet(op)
		} else {
			n.failGet(op, fmt.Sprintf("only %d of %d required replicas answered in time", op.counted, op.required))
		}
	}
	n.finishGet(id, op)
}

// finishGet runs read repair with every answer collected and forgets op.
// Repair fixes the primaries that answered with a missing or stale copy,
// and fallbacks whose hint was stale; a fallback that held no hint gets one
// only when the primary it stood in for never answered (the hint then
// reaches that primary when it returns).
func (n *Node) finishGet(id uint64, op *getOp) {
	if op.finished {
		return
	}
	op.finished = true
	delete(n.gets, id)
	// Nothing keeps answers past this call, so it stays on the stack.
	var buf [8]coord.Answer
	answers := buf[:0]
	for i, rep := range op.order {
		t := op.asked[i]
		switch {
		case !t.answered || t.failed:
		case t.standsFor == "" || t.found:
			answers = append(answers, coord.Answer{From: rep, Found: t.found, Object: t.obj})
		case !op.target(t.standsFor).answered:
			answers = append(answers, coord.Answer{From: rep})
		}
	}
	targets := coord.RepairTargets(op.merged, answers)
	if len(targets) == 0 {
		return
	}
	n.obs.noteReadRepairs(targets, answers)
	enc := op.mergedEnc
	if enc == nil {
		enc = object.Encode(op.merged)
	}
	n.emitReadRepairs(op.p, op.key, targets)
	for _, t := range targets {
		hint := op.target(t).standsFor
		switch {
		case t == n.cfg.ID && hint != "":
			if err := n.storeHint(hint, op.p, op.key, enc); err != nil {
				op.trace.event(n.now, t, "error", "read repair: "+err.Error())
			}
		case t == n.cfg.ID:
			// The local copy may have moved on since it answered: merge, do
			// not overwrite.
			if err := n.mergeLocal(op.key, enc); err != nil {
				op.trace.event(n.now, t, "error", "read repair: "+err.Error())
			}
		default:
			n.send(Message{Type: MsgReplicaPut, To: t, Key: op.key, Object: enc, Repair: true, Hint: hint})
		}
		op.trace.event(n.now, t, "repair", "")
	}
}

// distinct drops siblings whose value repeats an earlier one. Two
// coordinators can apply one forwarded write (a retry after a slow
// answer); the copies are concurrent versions of the same bytes, and the
// reply's context covers both, so showing one loses nothing. It filters
// sibs in place: callers pass a slice of their own (object.Live's).
func distinct(sibs []object.Sibling) []object.Sibling {
	out := sibs[:0]
	for _, s := range sibs {
		if !slices.ContainsFunc(out, func(o object.Sibling) bool { return bytes.Equal(o.Value, s.Value) }) {
			out = append(out, s)
		}
	}
	return out
}
