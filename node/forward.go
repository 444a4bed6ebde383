package node

import (
	"fmt"
	"time"

	"github.com/dynago/dynago/ring"
)

// forwardOp is a client write this node received but does not coordinate
// because it is not in the key's preference list.
type forwardOp struct {
	client   uint64
	to       ring.NodeID
	w        int
	timeout  time.Duration
	deadline time.Time
	trace    *tracer

	// When the coordinator stays silent past the replica timeout (dead but
	// not yet detected), the write goes to the next preference-list node.
	// If the first was merely slow both may apply it: the result is two
	// siblings with the same value, never a lost write.
	req     Request
	pl      []ring.NodeID
	tried   map[ring.NodeID]bool
	retryAt time.Time
	sentAt  map[ring.NodeID]time.Time // when the request went to each coordinator tried

	// refused holds the nodes that answered CodeNotCoordinator: by their
	// ring they are not replicas of the key, and they applied nothing.
	refused map[ring.NodeID]bool
}

// forwardMargin is the share of a forwarded request's timeout the
// coordinator may spend, leaving the rest for its answer to travel back
// before the forwarding node gives up.
const forwardMargin = 0.9

// forward sends a client write to the first reachable node of the
// preference list, which coordinates it.
func (n *Node) forward(req Request, p int, pl []ring.NodeID) {
	tr := newTracer(req.Trace, n.now, "", p, pl)
	tr.setForwardedBy(n.cfg.ID)
	var to ring.NodeID
	for _, id := range pl {
		if n.reachable(id) {
			to = id
			break
		}
	}
	if to == "" {
		// Every primary is down or cut off: this node coordinates the
		// write itself, on fallbacks only (Dynamo's sloppy quorum).
		n.startPut(origin{client: req.ID, trace: req.Trace}, req.Key, req.Value, req.Context, req.Op == OpDelete, req.Replace, req.W, req.Timeout, "")
		return
	}
	id := n.newOpID()
	op := &forwardOp{client: req.ID, w: req.W, timeout: req.Timeout, deadline: n.now.Add(req.Timeout), trace: tr,
		req: req, pl: pl, tried: map[ring.NodeID]bool{}, refused: map[ring.NodeID]bool{}, sentAt: map[ring.NodeID]time.Time{}}
	n.fwds[id] = op
	n.sendForward(id, op, to)
}

func (n *Node) sendForward(id uint64, op *forwardOp, to ring.NodeID) {
	op.to = to
	op.sentAt[to] = n.now
	op.tried[to] = true
	op.trace.setCoordinator(to)
	// Retrying risks a duplicate (two coordinators applying one write), so
	// wait long unless the failure detector already suspects the node.
	remaining := op.deadline.Sub(n.now)
	op.retryAt = n.now.Add(max(n.cfg.ReplicaTimeout, remaining/2))
	n.send(Message{
		Type: MsgForward, To: to, ReqID: id, Key: op.req.Key, Value: op.req.Value, Context: op.req.Context,
		Delete: op.req.Op == OpDelete, Replace: op.req.Replace, W: op.req.W, Timeout: time.Duration(float64(remaining) * forwardMargin),
	})
	op.trace.event(n.now, to, "sent", "forward to coordinator")
}

// retryForward re-sends a forwarded write whose coordinator is silent to
// the next reachable preference-list node, if any is left.
func (n *Node) retryForward(id uint64, op *forwardOp) {
	op.retryAt = op.deadline.Add(time.Nanosecond)
	n.redirect(id, op)
}

// redirect moves a forwarded write on to the next node, if any is left.
func (n *Node) redirect(id uint64, op *forwardOp) {
	for _, next := range op.pl {
		if !op.tried[next] && n.reachable(next) {
			op.trace.event(n.now, op.to, "timeout", "coordinator silent; trying the next")
			n.sendForward(id, op, next)
			return
		}
	}
}

// onForward coordinates a write forwarded by another node — if this node
// is in the key's preference list by its own ring. During a membership
// change nodes hear of the ring switch at different times, so the
// forwarding node may route by a ring in which this node still (or
// already) is a replica while by this node's ring it is not. It must not
// coordinate then: it would store the write in a partition it no longer
// replicates, where nothing hands it off or drops it (it stays there for
// good), count that copy towards W, and, if it had already dropped its
// old copy of the key, stamp a version its actor had used for another
// value, which the replicas would skip as already seen. It answers
// CodeNotCoordinator instead, naming the coordinator by its ring, and
// the forwarding node tries that one.
func (n *Node) onForward(m Message) {
	p := n.ring.PartitionOf(m.Key)
	pl := n.ring.PreferenceList(p)
	if !n.inList(pl) {
		resp := Message{Type: MsgForwardResp, To: m.From, ReqID: m.ReqID, Code: CodeNotCoordinator,
			Err: fmt.Sprintf("node: %s is not a replica of partition %d by ring version %d", n.cfg.ID, p, n.ring.Version())}
		for _, id := range pl {
			if id != m.From && n.reachable(id) {
				resp.Hint = id
				break
			}
		}
		n.send(resp)
		return
	}
	n.startPut(origin{remote: m.From, reqID: m.ReqID, trace: true}, m.Key, m.Value, m.Context, m.Delete, m.Replace, m.W, m.Timeout, m.From)
}

// onNotCoordinator moves a forwarded write on from a node that declined to
// coordinate it: to the node it named, else to the next preference-list
// node. When every node tried declined, nothing was applied and the client
// hears so at once.
func (n *Node) onNotCoordinator(id uint64, op *forwardOp, m Message) {
	op.refused[m.From] = true
	op.trace.event(n.now, m.From, "redirect", m.Err)
	if m.From != op.to {
		// A late answer from an earlier attempt: the current one runs,
		// unless it too has refused already, in which case this was the
		// last node that could still have applied the write.
		if len(op.refused) == len(op.tried) {
			n.refuseForward(id, op)
		}
		return
	}
	if h := m.Hint; h != "" && !op.tried[h] && n.reachable(h) {
		n.sendForward(id, op, h)
		return
	}
	for _, next := range op.pl {
		if !op.tried[next] && n.reachable(next) {
			n.sendForward(id, op, next)
			return
		}
	}
	if len(op.refused) < len(op.tried) {
		return // an earlier, silent coordinator may still answer: wait for it or the deadline
	}
	n.refuseForward(id, op)
}

// refuseForward answers a forwarded write that every node tried declined:
// none applied it, so the client hears so at once.
func (n *Node) refuseForward(id uint64, op *forwardOp) {
	delete(n.fwds, id)
	n.reply(Reply{ID: op.client, Code: CodeUnavailable, Required: op.w, Trace: op.trace.finish(),
		Err: "node: no node would coordinate the write while the ring is changing; it was not applied"})
}

func (n *Node) onForwardResp(m Message) {
	op, ok := n.fwds[m.ReqID]
	if !ok {
		return
	}
	if m.Code == CodeNotCoordinator {
		n.onNotCoordinator(m.ReqID, op, m)
		return
	}
	delete(n.fwds, m.ReqID)
	// The answer may come from an earlier coordinator than the last one
	// tried (it was slow, not dead): the trace names the one that answered.
	op.trace.setCoordinator(m.From)
	op.trace.merge(n.now, op.sentAt[m.From], m.Trace)
	op.trace.event(n.now, m.From, "answer", m.Code.String())
	n.reply(Reply{ID: op.client, Code: m.Code, Err: m.Err, Context: m.Context, Dot: m.Dot, Acks: m.Acks, Required: m.Required, Trace: op.trace.finish(),
		ManySiblings: siblingsNoted(m.Trace)})
}
