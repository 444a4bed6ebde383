package node

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/dynago/dynago/coord"
	"github.com/dynago/dynago/dvv"
	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/replica"
	"github.com/dynago/dynago/ring"
)

// putOp is a put (or delete) this node coordinates.
type putOp struct {
	origin   origin
	key      []byte
	p        int
	enc      []byte // the new version, encoded
	q        *coord.Quorum
	context  []byte // context of the new version, returned to the client
	dot      dvv.Dot
	deadline time.Time
	trace    *tracer

	// Sloppy quorum: sent maps every node written to the primary it stands
	// in for ("" for a primary itself); fallbackAt is when primaries that
	// have not acknowledged get a fallback.
	sent       map[ring.NodeID]ring.NodeID
	fallbackAt time.Time
}

// startPut coordinates a write: stamp a new version on top of the local copy
// and the client's context, persist it locally, and send it to the other
// replicas of the preference list.
func (n *Node) startPut(o origin, key, value, ctx []byte, del bool, w int, timeout time.Duration, forwardedBy ring.NodeID) {
	p := n.ring.PartitionOf(key)
	pl := n.ring.PreferenceList(p)
	tr := newTracer(n.now, n.cfg.ID, p, pl)
	tr.t.ForwardedBy = forwardedBy
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
	local, old, _, err := n.readLocalEnc(p, key)
	if err != nil {
		fail(CodeInternal, fmt.Sprintf("node: reading local copy: %v", err))
		return
	}
	sib := object.Sibling{Value: value, Deleted: del, Timestamp: n.now.UnixMilli()}
	actor := n.cfg.Actor
	if dvv.Exhausted(local.Clock, cctx, actor) {
		// A context (forged, or from a peer gone mad) claimed the last
		// counter of this node's actor for the key. Another actor keeps
		// the key writable; the next dot of this one would be unreadable.
		actor = n.freshActor()
	}
	updated := object.UpdateAt(local, cctx, sib, actor, n.dotFloor())
	dot := dvv.Dot{Actor: actor, Counter: updated.Clock.Join().Get(actor)}
	if n.cfg.LWW {
		updated = object.LWW(updated)
	}
	if code, err := n.checkVersion(local, updated, tr); err != nil {
		fail(code, err.Error())
		return
	}
	enc := object.Encode(updated)
	n.writeLocal(p, key, old, enc)

	id := n.newOpID()
	op := &putOp{
		origin:     o,
		key:        key,
		p:          p,
		enc:        enc,
		q:          coord.NewQuorum(w, len(pl)),
		context:    updated.Context(),
		dot:        dot,
		deadline:   n.now.Add(timeout),
		trace:      tr,
		sent:       map[ring.NodeID]ring.NodeID{},
		fallbackAt: n.now.Add(min(n.cfg.ReplicaTimeout, timeout)),
	}
	// The local write counts at once: Ready's rule holds the reply until it
	// is durable.
	op.sent[n.cfg.ID] = ""
	tr.event(n.now, n.cfg.ID, "ack", "stored locally")
	outcome := op.q.Ack(n.cfg.ID)
	var down []ring.NodeID
	for _, r := range pl {
		switch {
		case r == n.cfg.ID:
		case n.reachable(r):
			op.sent[r] = ""
			n.send(Message{Type: MsgReplicaPut, To: r, ReqID: id, Key: key, Object: enc})
			tr.event(n.now, r, "sent", "replica put")
		default:
			down = append(down, r)
		}
	}
	if n.hintFor(id, op, down) == coord.Succeeded {
		outcome = coord.Succeeded
	}
	n.dualWrite(op, pl)
	if outcome != coord.Succeeded && op.q.SetTotal(len(op.sent)) == coord.Failed {
		tr.event(n.now, n.cfg.ID, "error", "not enough reachable replicas")
		n.finishPut(o, Reply{
			Code: CodeQuorumFailed, Acks: op.q.Acks(), Required: w, Trace: tr.finish(),
			Err: fmt.Sprintf("only %d nodes reachable for W=%d; the write is stored on those and may spread later", len(op.sent), w),
		})
		return
	}
	if outcome == coord.Succeeded {
		n.replyPut(op)
	}
	if !op.q.Complete() {
		n.puts[id] = op
	}
}

// startHintedPut coordinates a write no primary can take: every node of
// the preference list is down or cut off from this node, which is not in
// it. The write goes to the first reachable fallbacks, one per primary,
// each holding it as a hint for that primary (this node included, when it
// is one of them), and the hints reach the primaries when liveness reports
// them back. W counts the fallbacks' acknowledgements, as in any sloppy
// quorum.
//
// The version stamp needs care. A coordinator stamps dot (actor, c+1) on
// top of its own copy of the key; this node has no copy, so it cannot know
// which counters its actor already used for the key, and a reused dot
// would be skipped by replicas as already seen (Riak's kv679). So each
// such write gets an actor of its own: this node's actor, the time and a
// sequence number. The version vector grows by one entry per hinted write,
// a fair price for a write that otherwise would be refused.
func (n *Node) startHintedPut(o origin, req Request, p int, pl []ring.NodeID) {
	tr := newTracer(n.now, n.cfg.ID, p, pl)
	fail := func(code Code, err string) {
		tr.event(n.now, n.cfg.ID, "error", err)
		n.finishPut(o, Reply{Code: code, Err: err, Required: req.W, Trace: tr.finish()})
	}
	if req.W < 1 || req.W > len(pl) {
		fail(CodeBadRequest, fmt.Sprintf("node: w=%d outside 1..%d", req.W, len(pl)))
		return
	}
	cctx, err := dvv.DecodeContext(req.Context)
	if err != nil {
		fail(CodeBadRequest, err.Error())
		return
	}
	actor := n.freshActor()
	sib := object.Sibling{Value: req.Value, Deleted: req.Op == OpDelete, Timestamp: n.now.UnixMilli()}
	updated := object.UpdateAt(object.Object{}, cctx, sib, actor, n.dotFloor())
	if n.cfg.LWW {
		updated = object.LWW(updated)
	}
	if code, err := n.checkVersion(object.Object{}, updated, tr); err != nil {
		fail(code, err.Error())
		return
	}
	id := n.newOpID()
	op := &putOp{
		origin:     o,
		key:        req.Key,
		p:          p,
		enc:        object.Encode(updated),
		q:          coord.NewQuorum(req.W, len(pl)),
		context:    updated.Context(),
		dot:        dvv.Dot{Actor: actor, Counter: updated.Clock.Join().Get(actor)},
		deadline:   n.now.Add(req.Timeout),
		trace:      tr,
		sent:       map[ring.NodeID]ring.NodeID{},
		fallbackAt: n.now.Add(req.Timeout).Add(time.Nanosecond), // no second round: every fallback is used at once
	}
	// Pair each primary with the next reachable fallback first, so that
	// the quorum's total is known before any acknowledgement is counted.
	fbs := n.ring.Fallbacks(p)
	i := 0
	for _, primary := range pl {
		tr.event(n.now, primary, "timeout", "primary unreachable")
		for ; i < len(fbs); i++ {
			if fb := fbs[i]; n.reachable(fb) {
				op.sent[fb] = primary
				i++
				break
			}
		}
	}
	outcome := op.q.SetTotal(len(op.sent))
	if outcome == coord.Failed {
		fail(CodeUnavailable, fmt.Sprintf("node: no node of the preference list is reachable and only %d fallbacks are, for W=%d; the write was not applied", len(op.sent), req.W))
		return
	}
	for _, fb := range fbs {
		primary, ok := op.sent[fb]
		if !ok || outcome == coord.Failed {
			continue
		}
		if fb != n.cfg.ID {
			n.send(Message{Type: MsgReplicaPut, To: fb, ReqID: id, Key: op.key, Object: op.enc, Hint: primary})
			tr.event(n.now, fb, "hint", "sent, for "+string(primary))
			continue
		}
		if err := n.storeHint(primary, p, op.key, op.enc); err != nil {
			tr.event(n.now, fb, "error", err.Error())
			outcome = op.q.Fail(fb)
			continue
		}
		tr.event(n.now, fb, "hint", "stored locally for "+string(primary))
		if o := op.q.Ack(fb); o != coord.Pending {
			outcome = o
		}
	}
	if outcome != coord.Failed {
		n.dualWrite(op, pl)
	}
	if outcome == coord.Failed {
		n.finishPut(o, Reply{
			Code: CodeQuorumFailed, Acks: op.q.Acks(), Required: req.W, Trace: tr.finish(),
			Err: "node: a fallback failed to store the write; it may be stored on the others",
		})
		return
	}
	if outcome == coord.Succeeded {
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
		if _, sent := op.sent[r]; !sent && r != n.cfg.ID && !slices.Contains(pl, r) {
			n.send(Message{Type: MsgReplicaPut, To: r, Key: op.key, Object: op.enc, Repair: true})
			op.trace.event(n.now, r, "sent", "dual write to incoming replica")
		}
	}
}

// hintFor sends op's write to one fallback for each primary in down, with a
// hint naming the primary, so that W can still be met (sloppy quorum). It
// returns Succeeded when a hint stored locally completed the quorum.
func (n *Node) hintFor(id uint64, op *putOp, down []ring.NodeID) coord.Outcome {
	outcome := coord.Pending
	if len(down) == 0 {
		return outcome
	}
	fbs := n.ring.Fallbacks(op.p)
	i := 0
	for _, primary := range down {
		for ; i < len(fbs); i++ {
			fb := fbs[i]
			if _, used := op.sent[fb]; used || !n.reachable(fb) {
				continue
			}
			op.sent[fb] = primary
			op.q.SetTotal(len(op.sent))
			if fb == n.cfg.ID {
				if err := n.storeHint(primary, op.p, op.key, op.enc); err != nil {
					op.trace.event(n.now, fb, "error", err.Error())
					op.q.Fail(fb)
					break
				}
				op.trace.event(n.now, fb, "hint", "stored locally for "+string(primary))
				if op.q.Ack(fb) == coord.Succeeded {
					outcome = coord.Succeeded
				}
			} else {
				n.send(Message{Type: MsgReplicaPut, To: fb, ReqID: id, Key: op.key, Object: op.enc, Hint: primary})
				op.trace.event(n.now, fb, "hint", "sent, for "+string(primary))
			}
			i++
			break
		}
	}
	return outcome
}

// sendToFallbacks runs when primaries have been silent for ReplicaTimeout:
// each of them gets a fallback, once.
func (n *Node) sendToFallbacks(id uint64, op *putOp) {
	op.fallbackAt = op.deadline.Add(time.Nanosecond) // one round only
	if op.q.Done() {
		return
	}
	var silent []ring.NodeID
	for _, r := range n.ring.PreferenceList(op.p) {
		if hint, ok := op.sent[r]; ok && hint == "" && !op.q.Answered(r) {
			silent = append(silent, r)
			op.trace.event(n.now, r, "timeout", "no ack within the replica timeout")
		}
	}
	if n.hintFor(id, op, silent) == coord.Succeeded {
		n.replyPut(op)
	}
}

func (n *Node) replyPut(op *putOp) {
	n.finishPut(op.origin, Reply{Code: CodeOK, Context: op.context, Dot: op.dot, Acks: op.q.Acks(), Required: op.q.Required, Trace: op.trace.finish()})
}

// freshActor returns an actor no write has used: this node's actor, the
// time and a sequence number. For writes whose version cannot be stamped
// by the node's own actor (startHintedPut, and an exhausted counter).
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
	if size := len(updated.Context()); size > n.cfg.MaxContextSize && size > len(local.Context()) {
		return CodeBadRequest, fmt.Errorf("node: the write would give the key a context of %d bytes, more than the limit of %d; nothing was written", size, n.cfg.MaxContextSize)
	}
	sibs := updated.Clock.Size()
	if sibs > n.cfg.MaxSiblings && sibs > local.Clock.Size() {
		return CodeTooManySiblings, fmt.Errorf("node: the write would leave %d siblings, more than the limit of %d; nothing was written: read the key and write the resolved value with its context", sibs, n.cfg.MaxSiblings)
	}
	if sibs > n.cfg.SiblingWarn {
		tr.event(n.now, n.cfg.ID, SiblingsEvent, strconv.Itoa(sibs))
	}
	return CodeOK, nil
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
			Err: fmt.Sprintf("only %d of %d required replicas acknowledged; the write may or may not have been applied", op.q.Acks(), op.q.Required),
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
		Err: fmt.Sprintf("only %d of %d required replicas acknowledged in time; the write may or may not have been applied", op.q.Acks(), op.q.Required),
	})
}

// onReplicaPut merges a version sent by a coordinator (or by read repair)
// into the local copy and acknowledges once it is durable.
func (n *Node) onReplicaPut(m Message) {
	resp := Message{Type: MsgReplicaPutResp, To: m.From, ReqID: m.ReqID}
	var err error
	if m.Hint != "" && m.Hint != n.cfg.ID {
		err = n.storeHint(m.Hint, n.ring.PartitionOf(m.Key), m.Key, m.Object)
	} else {
		err = n.mergeLocal(m.Key, m.Object)
	}
	if err != nil {
		resp.Err = err.Error()
	}
	if !m.Repair {
		n.send(resp)
	}
}

// mergeLocal merges an encoded incoming object into the local copy of key.
func (n *Node) mergeLocal(key, encoded []byte) error {
	in, err := object.Decode(encoded)
	if err != nil {
		return fmt.Errorf("node: bad object from peer: %w", err)
	}
	p := n.ring.PartitionOf(key)
	local, old, have, err := n.readLocalEnc(p, key)
	if err != nil {
		return fmt.Errorf("node: reading local copy: %w", err)
	}
	merged, changed := replica.Merge(local, have, in)
	if n.cfg.LWW && changed {
		merged = object.LWW(merged)
		changed = !merged.Clock.Equal(local.Clock) || !have
	}
	if !changed {
		return nil
	}
	n.noteWrite(p)
	if !have && !n.cfg.LWW {
		n.writeLocal(p, key, nil, encoded) // the incoming encoding is already canonical
		return nil
	}
	n.writeLocal(p, key, old, object.Encode(merged))
	return nil
}
