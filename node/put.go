package node

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dynago/dynago/coord"
	"github.com/dynago/dynago/dvv"
	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
)

// putOp is a put (or delete) this node coordinates.
type putOp struct {
	origin   origin
	key      []byte
	p        int
	enc      []byte // the new version, encoded
	q        coord.Quorum
	context  []byte // context of the new version, returned to the client
	dot      dvv.Dot
	deadline time.Time
	trace    *tracer
	// manySiblings is the key's sibling count after the write when above
	// Config.SiblingWarn, else 0 (Reply.ManySiblings).
	manySiblings int

	// Sloppy quorum: sent pairs every node written with the primary it
	// stands in for (For "" for a primary itself), the first few in
	// sentBuf (a handful of nodes: a scan beats a map, and the op holds
	// them); fallbackAt is when primaries that have not acknowledged get
	// a fallback.
	sent       []ring.Target
	sentBuf    [4]ring.Target
	fallbackAt time.Time
	// refusal is the last error a replica or fallback answered, so that
	// a write that fails its quorum says why (a full hint store, a full
	// disk) rather than only how many acknowledged.
	refusal string
}

// maxRefusal bounds the refusal text a put keeps: it comes from a peer,
// and it ends up in a client's error message.
const maxRefusal = 300

// refuse notes why node did not store the write. The text is a peer's:
// it is cut to maxRefusal and control characters become '?', since it
// ends up in a client's error message and a terminal.
func (op *putOp) refuse(node ring.NodeID, err string) {
	r := string(node) + ": " + err
	if len(r) > maxRefusal {
		r = strings.ToValidUTF8(r[:maxRefusal], "") + "…"
	}
	op.refusal = strings.Map(func(c rune) rune {
		if c < ' ' || c == 0x7f || (c >= 0x80 && c < 0xa0) {
			return '?'
		}
		return c
	}, r)
}

// failure is the error text of a put that failed its quorum: why, and
// the last refusal a node gave, if any.
func (op *putOp) failure(why string) string {
	if op.refusal == "" {
		return why
	}
	return why + "; last refusal: " + op.refusal
}

// sentTo reports whether op's write was sent to node, and for which
// primary ("" for node itself).
func (op *putOp) sentTo(node ring.NodeID) (primary ring.NodeID, ok bool) {
	for _, t := range op.sent {
		if t.Node == node {
			return t.For, true
		}
	}
	return "", false
}

// startPut coordinates a write: stamp a new version, persist it locally,
// and send it to the other replicas of the preference list, with a
// fallback (ring.StandIns) holding it as a hint for each primary that is
// unreachable (Dynamo's sloppy quorum, §4.6). W counts the fallbacks'
// acknowledgements too.
//
// Usually this node is a replica of the key: it stamps the version on top
// of its own copy and the client's context and stores it first. Otherwise
// (forward: every primary is down or cut off from this node) the write
// goes to fallbacks only, this node included when it is one of them, and
// the hints reach the primaries when liveness reports them back. Then the
// version stamp needs care. A coordinator stamps dot (actor, c+1) on top
// of its own copy of the key; this node has no copy, so it cannot know
// which counters its actor already used for the key, and a reused dot
// would be skipped by replicas as already seen (Riak's kv679). So each
// such write gets an actor of its own (freshActor): the version vector
// grows by one entry per such write, a fair price for a write that
// otherwise would be refused. And with too few fallbacks reachable for W
// it is refused before anything is stored (503 unavailable), where a
// replica, having stored its copy, sends it on anyway.
func (n *Node) startPut(o origin, key, value, ctx []byte, del, replace bool, w int, timeout time.Duration, forwardedBy ring.NodeID) {
	p := n.ring.PartitionOf(key)
	pl := n.ring.PreferenceList(p)
	stored := n.inList(pl) // this node is a replica: it writes its own copy
	tr := newTracer(o.trace, n.now, n.cfg.ID, p, pl)
	tr.setForwardedBy(forwardedBy)
	fail := func(code Code, err string) {
		tr.event(n.now, n.cfg.ID, "error", err)
		n.finishPut(o, Reply{Code: code, Err: err, Required: w, Trace: tr.finish()})
	}
	if w < 1 || w > len(pl) {
		// A forwarded request was validated by the forwarding node against
		// its own ring; re-check against ours.
		fail(CodeBadRequest, fmt.Sprintf("node: w=%d outside 1..%d", w, len(pl)))
		return
	}
	cctx, err := dvv.DecodeContext(ctx)
	if err != nil {
		fail(CodeBadRequest, err.Error())
		return
	}
	var (
		local object.Object
		old   []byte
	)
	if stored {
		if local, old, _, err = n.readLocalEnc(p, key); err != nil {
			fail(CodeInternal, fmt.Sprintf("node: reading local copy: %v", err))
			return
		}
	}
	if replace && stored {
		// Request.Replace: the new version covers the local copy, as if
		// the client had read it here first.
		cctx = dvv.Merge(cctx, local.Clock.Join())
	}
	sib := object.Sibling{Value: value, Deleted: del, Timestamp: n.now.UnixMilli()}
	actor := n.cfg.Actor
	if !stored || dvv.Exhausted(local.Clock, cctx, actor) {
		// Without a local copy, see above. With one, a context (forged,
		// or from a peer gone mad) may have claimed the last counter of
		// this node's actor for the key: another actor keeps the key
		// writable; the next dot of this one would be unreadable.
		actor = n.freshActor()
	}
	updated := object.UpdateAt(local, cctx, sib, actor, n.dotFloor())
	dot := dvv.Dot{Actor: actor, Counter: counterOf(updated.Clock, actor)}
	if n.cfg.LWW {
		updated = object.LWW(updated)
	}
	if code, err := n.checkVersion(local, updated, tr); err != nil {
		fail(code, err.Error())
		return
	}
	enc := object.Encode(updated)
	if stored {
		n.writeLocal(p, key, old, enc)
	}

	id := n.newOpID()
	op := &putOp{
		origin:       o,
		key:          key,
		p:            p,
		enc:          enc,
		q:            coord.Quorum{Required: w, Total: len(pl)},
		context:      updated.Context(),
		dot:          dot,
		deadline:     n.now.Add(timeout),
		trace:        tr,
		manySiblings: n.siblingWarning(updated),
		fallbackAt:   n.now.Add(min(n.cfg.ReplicaTimeout, timeout)),
	}
	op.sent = op.sentBuf[:0]
	outcome := coord.Pending
	if stored {
		// The local write counts at once: Ready's rule holds the reply
		// until it is durable.
		op.sent = append(op.sent, ring.Target{Node: n.cfg.ID})
		tr.event(n.now, n.cfg.ID, "ack", "stored locally")
		outcome = op.q.Ack(n.cfg.ID)
	} else {
		// No second round: every primary gets its fallback at once.
		op.fallbackAt = op.deadline.Add(time.Nanosecond)
	}
	// Stack room for a preference list of the usual size.
	var upBuf, downBuf [4]ring.NodeID
	up, down := upBuf[:0], downBuf[:0]
	for _, r := range pl {
		switch {
		case r == n.cfg.ID:
		case n.reachable(r):
			op.sent = append(op.sent, ring.Target{Node: r})
			up = append(up, r)
		default:
			down = append(down, r)
			if !stored {
				tr.event(n.now, r, "timeout", "primary unreachable")
			}
		}
	}
	// Pick every stand-in first, so that the quorum's total is known
	// before any of their acknowledgements is counted.
	tgs := n.standIns(op, down)
	if !stored && len(op.sent) < w {
		fail(CodeUnavailable, fmt.Sprintf("node: no node of the preference list is reachable and only %d fallbacks are, for W=%d; the write was not applied", len(op.sent), w))
		return
	}
	if op.q.SetTotal(len(op.sent)) == coord.Failed {
		outcome = coord.Failed
	}
	// A write that has its W already (W=1, stored here) waits for no
	// replica, so their copies need not hurry to disk; each still
	// acknowledges only once durable (Message.LazySync).
	lazy := outcome == coord.Succeeded
	for _, r := range up {
		n.send(Message{Type: MsgReplicaPut, To: r, ReqID: id, Key: key, Object: enc, LazySync: lazy})
		tr.event(n.now, r, "sent", "replica put")
	}
	if o := n.hint(id, op, tgs); o != coord.Pending {
		outcome = o
	}
	n.dualWrite(op, pl)
	switch outcome {
	case coord.Failed:
		why := "node: a fallback failed to store the write; it may be stored on the others"
		if stored {
			tr.event(n.now, n.cfg.ID, "error", "not enough reachable replicas")
			why = fmt.Sprintf("only %d nodes reachable for W=%d; the write is stored on those and may spread later", len(op.sent), w)
		}
		n.finishPut(o, Reply{Code: CodeQuorumFailed, Acks: op.q.Acks(), Required: w, Trace: tr.finish(), Err: op.failure(why)})
		return
	case coord.Succeeded:
		n.replyPut(op)
	}
	if !op.q.Complete() {
		n.puts[id] = op
	}
}

// dualWrite sends op's write to the nodes entering the key's preference
// list during a transition (pl is the current one), so that they keep up
// while the partition's data moves to them. It is a repair: no
// acknowledgement is awaited, and the nodes do not count towards W.
func (n *Node) dualWrite(op *putOp, pl []ring.NodeID) {
	if n.next == nil {
		return
	}
	for _, r := range n.next.PreferenceList(op.p) {
		if _, sent := op.sentTo(r); !sent && r != n.cfg.ID && !slices.Contains(pl, r) {
			n.send(Message{Type: MsgReplicaPut, To: r, Key: op.key, Object: op.enc, Repair: true})
			op.trace.event(n.now, r, "sent", "dual write to incoming replica")
		}
	}
}

// standIns picks a fallback for each primary in down (ring.StandIns): a
// reachable one op was not sent to yet. It records them in op.sent; the
// caller updates the quorum's total, then sends them the write (hint).
func (n *Node) standIns(op *putOp, down []ring.NodeID) []ring.Target {
	tgs := n.ring.StandIns(op.p, down, func(fb ring.NodeID) bool {
		_, used := op.sentTo(fb)
		return !used && n.reachable(fb)
	})
	for _, tg := range tgs {
		op.sent = append(op.sent, tg)
	}
	return tgs
}

// hint sends op's write to the fallbacks tgs, each with a hint naming the
// primary it stands in for, storing it here when this node is one of them.
// It returns Succeeded or Failed when a hint stored here decided the
// quorum, else Pending.
func (n *Node) hint(id uint64, op *putOp, tgs []ring.Target) coord.Outcome {
	outcome := coord.Pending
	for _, tg := range tgs {
		fb, primary := tg.Node, tg.For
		if fb != n.cfg.ID {
			n.send(Message{Type: MsgReplicaPut, To: fb, ReqID: id, Key: op.key, Object: op.enc, Hint: primary})
			op.trace.event(n.now, fb, "hint", "sent, for "+string(primary))
			continue
		}
		var o coord.Outcome
		if err := n.storeHint(primary, op.p, op.key, op.enc); err != nil {
			op.trace.event(n.now, fb, "error", err.Error())
			op.refuse(fb, err.Error())
			o = op.q.Fail(fb)
		} else {
			op.trace.event(n.now, fb, "hint", "stored locally for "+string(primary))
			o = op.q.Ack(fb)
		}
		if o == coord.Succeeded || o == coord.Failed {
			outcome = o
		}
	}
	return outcome
}

// sendToFallbacks runs when primaries have been silent for ReplicaTimeout:
// each of them gets a fallback, once, and the write again. The transport
// may lose a message (a peer's connection failing and coming back while
// the liveness view still says up: the startup race of members dialling
// each other, a restart between two gossip rounds), and a primary without
// a fallback left to stand in for it (a small cluster) would otherwise
// leave the write short of W for good although every replica is up.
// Applying a version twice is harmless (dvv.Sync is idempotent), and a
// second acknowledgement counts once.
func (n *Node) sendToFallbacks(id uint64, op *putOp) {
	op.fallbackAt = op.deadline.Add(time.Nanosecond) // one round only
	if op.q.Done() {
		return
	}
	var silent []ring.NodeID
	for _, r := range n.ring.PreferenceList(op.p) {
		if hint, ok := op.sentTo(r); ok && hint == "" && !op.q.Answered(r) {
			silent = append(silent, r)
			op.trace.event(n.now, r, "timeout", "no ack within the replica timeout")
			if r != n.cfg.ID && n.reachable(r) {
				n.send(Message{Type: MsgReplicaPut, To: r, ReqID: id, Key: op.key, Object: op.enc})
				op.trace.event(n.now, r, "sent", "replica put again")
			}
		}
	}
	tgs := n.standIns(op, silent)
	if len(tgs) == 0 {
		return
	}
	op.q.SetTotal(len(op.sent)) // grows: the quorum cannot fail here
	if n.hint(id, op, tgs) == coord.Succeeded {
		n.replyPut(op)
	}
}

// counterOf returns actor's counter in c, as c.Join().Get(actor) would,
// without building the join.
func counterOf(c dvv.Set[object.Sibling], actor string) uint64 {
	for _, e := range c.Entries {
		if e.Actor == actor {
			return e.Counter
		}
	}
	return 0
}

func (n *Node) replyPut(op *putOp) {
	n.finishPut(op.origin, Reply{Code: CodeOK, Context: op.context, Dot: op.dot, Acks: op.q.Acks(), Required: op.q.Required, Trace: op.trace.finish(),
		ManySiblings: op.manySiblings})
}

// freshActor returns an actor no write has used: this node's actor, the
// time and a sequence number. For writes whose version cannot be stamped
// by the node's own actor (a write coordinated by a node that is no
// replica of the key, and an exhausted counter).
func (n *Node) freshActor() string {
	n.hintedSeq++
	return fmt.Sprintf("%s+%x.%x", n.cfg.Actor, n.now.UnixNano(), n.hintedSeq)
}

// SiblingsEvent is the trace event a coordinator records when a write
// leaves its key with more than Config.SiblingWarn siblings; its Note is
// the count in decimal. It travels with a forwarded write's trace, so the
// node the client asked can warn the client (see Reply.SiblingCount).
const SiblingsEvent = "siblings"

// checkVersion vets a new version before it is stored: its context must
// stay within MaxContextSize and its siblings within MaxSiblings, unless
// the key was already beyond the limit and this write makes it no worse
// (a write resolving siblings must always be possible). Above SiblingWarn
// it records a SiblingsEvent in the trace.
func (n *Node) checkVersion(local, updated object.Object, tr *tracer) (Code, error) {
	if size := updated.ContextLen(); size > n.cfg.MaxContextSize && size > local.ContextLen() {
		return CodeBadRequest, fmt.Errorf("node: the write would give the key a context of %d bytes, more than the limit of %d; nothing was written", size, n.cfg.MaxContextSize)
	}
	sibs := updated.Clock.Size()
	if sibs > n.cfg.MaxSiblings && sibs > local.Clock.Size() {
		return CodeTooManySiblings, fmt.Errorf("node: the write would leave %d siblings, more than the limit of %d; nothing was written: read the key and write the resolved value with its context", sibs, n.cfg.MaxSiblings)
	}
	if many := n.siblingWarning(updated); many > 0 {
		tr.event(n.now, n.cfg.ID, SiblingsEvent, strconv.Itoa(many))
	}
	return CodeOK, nil
}

// siblingWarning returns o's sibling count when above Config.SiblingWarn,
// else 0: what a write that leaves o warns its client of.
func (n *Node) siblingWarning(o object.Object) int {
	if s := o.Clock.Size(); s > n.cfg.SiblingWarn {
		return s
	}
	return 0
}

// dotFloor is the first counter this node's actor takes for a key it has no
// entry for (dvv.UpdateAt): the clock in microseconds, which grows between
// a key's last write, its tombstone's reaping (a grace period later) and
// any write after, so a fresh write never reuses a dot a context read
// before the reap still covers. Only a clock stepped back by more than
// that span could.
func (n *Node) dotFloor() uint64 {
	if us := n.now.UnixMicro(); us > 0 {
		return uint64(us)
	}
	return 0
}

// finishPut delivers a put's outcome to whoever waits for it.
func (n *Node) finishPut(o origin, r Reply) {
	if o.remote == "" {
		r.ID = o.client
		n.reply(r)
		return
	}
	n.send(Message{
		Type: MsgForwardResp, To: o.remote, ReqID: o.reqID,
		Code: r.Code, Err: r.Err, Context: r.Context, Dot: r.Dot, Acks: r.Acks, Required: r.Required,
		Trace: traceEvents(r.Trace),
	})
}

func (n *Node) onReplicaPutResp(m Message) {
	if n.onHintAck(m) || n.onPushAck(m) {
		return
	}
	op, ok := n.puts[m.ReqID]
	if !ok {
		return // answered after the deadline, or a duplicate
	}
	var outcome coord.Outcome
	if m.Err != "" {
		op.trace.event(n.now, m.From, "error", m.Err)
		op.refuse(m.From, m.Err)
		outcome = op.q.Fail(m.From)
	} else {
		op.trace.event(n.now, m.From, "ack", "")
		outcome = op.q.Ack(m.From)
	}
	switch outcome {
	case coord.Succeeded:
		n.replyPut(op)
	case coord.Failed:
		n.finishPut(op.origin, Reply{
			Code: CodeQuorumFailed, Acks: op.q.Acks(), Required: op.q.Required, Trace: op.trace.finish(),
			Err: op.failure(fmt.Sprintf("only %d of %d required replicas acknowledged; the write may or may not have been applied", op.q.Acks(), op.q.Required)),
		})
	}
	if op.q.Complete() {
		delete(n.puts, m.ReqID)
	}
}

func (n *Node) expirePut(id uint64, op *putOp) {
	delete(n.puts, id)
	if op.q.Expire() != coord.Failed {
		return // already answered; the stragglers just did not ack in time
	}
	op.trace.event(n.now, n.cfg.ID, "timeout", "")
	n.finishPut(op.origin, Reply{
		Code: CodeQuorumFailed, Acks: op.q.Acks(), Required: op.q.Required, Trace: op.trace.finish(),
		Err: op.failure(fmt.Sprintf("only %d of %d required replicas acknowledged in time; the write may or may not have been applied", op.q.Acks(), op.q.Required)),
	})
}
