package node

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/dynago/dynago/coord"
	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// getOp is a get this node coordinates. It lives until every replica asked
// has answered or the deadline passes, so that read repair can fix the
// replicas that answered after the client already had its reply.
type getOp struct {
	origin   origin
	key      []byte
	p        int
	q        *coord.Quorum
	answers  []coord.Answer
	merged   object.Object
	deadline time.Time
	trace    *tracer
	hintOf   map[ring.NodeID]ring.NodeID // fallback -> the primary it stands in for
}

// startGet asks every replica of key's preference list for its copy. Any
// node may coordinate a get; unlike a put it needs no local version stamp.
func (n *Node) startGet(o origin, key []byte, r int, timeout time.Duration, forwardedBy ring.NodeID) {
	p := n.ring.PartitionOf(key)
	pl := n.ring.PreferenceList(p)
	tr := newTracer(n.now, n.cfg.ID, p, pl)
	tr.t.ForwardedBy = forwardedBy
	id := n.newOpID()
	// Ask every reachable primary, and a fallback in place of each primary
	// the failure detector reports dead: it answers from its hints.
	asked := map[ring.NodeID]ring.NodeID{}
	var down []ring.NodeID
	for _, rep := range pl {
		if n.reachable(rep) {
			asked[rep] = ""
		} else {
			down = append(down, rep)
		}
	}
	fbs := n.ring.Fallbacks(p)
	next := 0
	for _, primary := range down {
		for ; next < len(fbs); next++ {
			if fb := fbs[next]; n.reachable(fb) {
				asked[fb] = primary
				next++
				break
			}
		}
	}
	op := &getOp{origin: o, key: key, p: p, q: coord.NewQuorum(r, len(asked)), deadline: n.now.Add(timeout), trace: tr, hintOf: asked}
	if op.q.SetTotal(len(asked)) == coord.Failed {
		n.failGet(op, fmt.Sprintf("only %d replicas reachable, R=%d", len(asked), r))
		return
	}
	n.gets[id] = op
	targets := make([]ring.NodeID, 0, len(asked))
	for rep := range asked {
		targets = append(targets, rep)
	}
	slices.Sort(targets) // map order must not leak into the message order
	for _, rep := range targets {
		if rep != n.cfg.ID {
			n.send(Message{Type: MsgReplicaGet, To: rep, ReqID: id, Key: key, Hint: asked[rep]})
			if asked[rep] != "" {
				tr.event(n.now, rep, "sent", "replica get (fallback for "+string(asked[rep])+")")
			} else {
				tr.event(n.now, rep, "sent", "replica get")
			}
		}
	}
	if hint, ok := asked[n.cfg.ID]; ok {
		var (
			local object.Object
			have  bool
			err   error
		)
		if hint != "" {
			local, have, err = n.readHint(hint, key)
		} else {
			local, have, err = n.readLocal(p, key)
		}
		n.onAnswer(id, op, n.cfg.ID, local, have, err)
	}
}

func (n *Node) onReplicaGet(m Message) {
	resp := Message{Type: MsgReplicaGetResp, To: m.From, ReqID: m.ReqID}
	var (
		raw   []byte
		found bool
		err   error
	)
	if m.Hint != "" && m.Hint != n.cfg.ID {
		raw, found, err = n.readRaw(storage.HintKey(string(m.Hint), n.ring.PartitionOf(m.Key), m.Key))
	} else {
		raw, found, err = n.readLocalRaw(m.Key)
	}
	switch {
	case err != nil:
		resp.Err = err.Error()
	case found:
		resp.Found = true
		resp.Object = raw
	}
	n.send(resp)
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
	if m.Err != "" {
		err = fmt.Errorf("%s", m.Err)
	} else if m.Found {
		obj, err = object.Decode(m.Object)
	}
	n.onAnswer(m.ReqID, op, m.From, obj, m.Found, err)
}

// onAnswer folds one replica's answer into the get.
func (n *Node) onAnswer(id uint64, op *getOp, from ring.NodeID, obj object.Object, found bool, err error) {
	if op.q.Answered(from) {
		return
	}
	var outcome coord.Outcome
	if err != nil {
		op.trace.event(n.now, from, "error", err.Error())
		outcome = op.q.Fail(from)
	} else {
		if found {
			op.merged = object.Merge(op.merged, obj)
			op.trace.event(n.now, from, "answer", fmt.Sprintf("%d sibling(s)", obj.Clock.Size()))
		} else {
			op.trace.event(n.now, from, "not_found", "")
		}
		op.answers = append(op.answers, coord.Answer{From: from, Found: found, Object: obj})
		outcome = op.q.Ack(from)
	}
	switch outcome {
	case coord.Succeeded:
		n.replyGet(op)
	case coord.Failed:
		n.failGet(op, "")
	}
	if op.q.Complete() {
		n.finishGet(id, op)
	}
}

func (n *Node) replyGet(op *getOp) {
	r := Reply{Acks: op.q.Acks(), Required: op.q.Required, Trace: op.trace.finish()}
	if n.cfg.LWW {
		op.merged = object.LWW(op.merged)
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
		why = fmt.Sprintf("only %d of %d required replicas answered", op.q.Acks(), op.q.Required)
	}
	n.deliverGet(op, Reply{Code: CodeQuorumFailed, Err: why, Acks: op.q.Acks(), Required: op.q.Required, Trace: op.trace.finish()})
}

func (n *Node) deliverGet(op *getOp, r Reply) {
	r.ID = op.origin.client
	n.reply(r)
}

func (n *Node) expireGet(id uint64, op *getOp) {
	if op.q.Expire() == coord.Failed {
		op.trace.event(n.now, n.cfg.ID, "timeout", "")
		n.failGet(op, fmt.Sprintf("only %d of %d required replicas answered in time", op.q.Acks(), op.q.Required))
	}
	n.finishGet(id, op)
}

// finishGet runs read repair with every answer collected and forgets op.
func (n *Node) finishGet(id uint64, op *getOp) {
	delete(n.gets, id)
	targets := coord.RepairTargets(op.merged, op.answers)
	if len(targets) == 0 {
		return
	}
	n.obs.readRepairs += uint64(len(targets))
	enc := object.Encode(op.merged)
	for _, t := range targets {
		hint := op.hintOf[t]
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

// readLocalRaw returns the encoded local copy of key, validated.
func (n *Node) readLocalRaw(key []byte) ([]byte, bool, error) {
	p := n.ring.PartitionOf(key)
	o, found, err := n.readLocal(p, key)
	if err != nil || !found {
		return nil, found, err
	}
	return object.Encode(o), true, nil
}

// distinct drops siblings whose value repeats an earlier one. Two
// coordinators can apply one forwarded write (a retry after a slow
// answer); the copies are concurrent versions of the same bytes, and the
// reply's context covers both, so showing one loses nothing.
func distinct(sibs []object.Sibling) []object.Sibling {
	out := sibs[:0:0]
	for _, s := range sibs {
		if !slices.ContainsFunc(out, func(o object.Sibling) bool { return bytes.Equal(o.Value, s.Value) }) {
			out = append(out, s)
		}
	}
	return out
}
