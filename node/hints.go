package node

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// Hinted handoff. A fallback that accepts a write for an unreachable
// primary stores it under a hint key naming that primary, apart from its
// own data. When the failure detector reports the primary alive again (and
// periodically while it stays alive, in case an acknowledgement was lost or
// it restarted faster than the detector noticed) the fallback sends each
// hint home as an ordinary replica put. A hint is deleted only after the
// primary acknowledged it durably, and only if it did not change meanwhile.

// hintState tracks hints being delivered.
type hintState struct {
	inflight  map[uint64]*hintOp
	sending   map[string]bool     // storage keys of hints in flight
	perTarget map[ring.NodeID]int // hints in flight per target
	held      map[ring.NodeID]int // hints stored per target
	nextSweep time.Time
	loaded    bool

	Stored, Delivered uint64
}

type hintOp struct {
	target ring.NodeID
	skey   []byte
	hash   uint64
	sentAt time.Time
}

func newHintState() hintState {
	return hintState{
		inflight:  map[uint64]*hintOp{},
		sending:   map[string]bool{},
		perTarget: map[ring.NodeID]int{},
		held:      map[ring.NodeID]int{},
	}
}

// errStopScan ends a scan early; it never escapes this package.
var errStopScan = errors.New("node: stop scan")

// loadHints counts the hints on disk once, after a restart.
func (n *Node) loadHints() {
	if n.hints.loaded {
		return
	}
	n.hints.loaded = true
	lo, hi := storage.AllHintsRange()
	_ = n.store.Scan(lo, hi, func(k, _ []byte) error {
		if target, _, _, ok := storage.ParseHintKey(k); ok {
			n.hints.held[ring.NodeID(target)]++
		}
		return nil
	})
}

// HintsHeld returns how many hints this node stores, per primary.
func (n *Node) HintsHeld() map[ring.NodeID]int {
	n.loadHints()
	out := make(map[ring.NodeID]int, len(n.hints.held))
	for k, v := range n.hints.held {
		if v > 0 {
			out[k] = v
		}
	}
	return out
}

// HintStats returns how many hints this node stored and delivered since
// the core started.
func (n *Node) HintStats() (stored, delivered uint64) { return n.hints.Stored, n.hints.Delivered }

// storeHint merges a write meant for primary into the hint kept for it.
func (n *Node) storeHint(primary ring.NodeID, p int, key, encoded []byte) error {
	n.loadHints()
	in, err := object.Decode(encoded)
	if err != nil {
		return fmt.Errorf("node: bad object from peer: %w", err)
	}
	skey := storage.HintKey(string(primary), p, key)
	cur, have, err := n.readRaw(skey)
	if err != nil {
		return fmt.Errorf("node: reading hint: %w", err)
	}
	if have {
		old, err := object.Decode(cur)
		if err != nil {
			return fmt.Errorf("node: reading hint: %w", err)
		}
		merged := object.Merge(old, in)
		if merged.Clock.Equal(old.Clock) {
			return nil
		}
		encoded = object.Encode(merged)
	} else {
		n.hints.held[primary]++
	}
	n.hints.Stored++
	n.obs.noteHint(primary, key)
	n.put(skey, encoded)
	return nil
}

// readHint returns the hint this node holds for primary and key.
func (n *Node) readHint(primary ring.NodeID, key []byte) (object.Object, bool, error) {
	raw, have, err := n.readRaw(storage.HintKey(string(primary), n.ring.PartitionOf(key), key))
	if err != nil || !have {
		return object.Object{}, false, err
	}
	o, err := object.Decode(raw)
	return o, err == nil, err
}

// deliverHints offers target the hints held for it, up to HintBatch in
// flight at once.
func (n *Node) deliverHints(target ring.NodeID) {
	n.loadHints()
	if n.hints.held[target] == 0 || !n.reachable(target) || target == n.cfg.ID {
		return
	}
	room := n.cfg.HintBatch - n.hints.perTarget[target]
	if room <= 0 {
		return
	}
	lo, hi := storage.HintRange(string(target))
	_ = n.store.Scan(lo, hi, func(k, v []byte) error {
		if room <= 0 {
			return errStopScan
		}
		if n.hints.sending[string(k)] {
			return nil
		}
		if cur, ok := n.pending[string(k)]; ok {
			if cur == nil {
				return nil // deleted in this batch
			}
			v = cur
		}
		_, _, userKey, ok := storage.ParseHintKey(k)
		if !ok {
			return nil
		}
		id := n.newOpID()
		skey := slices.Clone(k)
		n.hints.inflight[id] = &hintOp{target: target, skey: skey, hash: object.Hash(v), sentAt: n.now}
		n.hints.sending[string(skey)] = true
		n.hints.perTarget[target]++
		n.send(Message{Type: MsgReplicaPut, To: target, ReqID: id, Key: slices.Clone(userKey), Object: slices.Clone(v)})
		room--
		return nil
	})
}

// onHintAck handles a primary's answer to a delivered hint. It reports
// whether m answered a hint at all.
func (n *Node) onHintAck(m Message) bool {
	op, ok := n.hints.inflight[m.ReqID]
	if !ok {
		return false
	}
	n.forgetHintOp(m.ReqID, op)
	if m.Err != "" {
		return true
	}
	cur, have, err := n.readRaw(op.skey)
	if err == nil && have && object.Hash(cur) == op.hash {
		n.put(op.skey, nil)
		n.hints.held[op.target]--
		n.hints.Delivered++
		n.obs.noteDelivered(op.target)
	}
	n.deliverHints(op.target)
	return true
}

func (n *Node) forgetHintOp(id uint64, op *hintOp) {
	delete(n.hints.inflight, id)
	delete(n.hints.sending, string(op.skey))
	n.hints.perTarget[op.target]--
}

// tickHints gives up on unanswered deliveries so they can be retried, and
// periodically re-offers hints to every node believed alive.
func (n *Node) tickHints() {
	stale := n.now.Add(-2 * n.cfg.ReplicaTimeout)
	for _, id := range expired(n.hints.inflight, stale, func(op *hintOp) time.Time { return op.sentAt }) {
		n.forgetHintOp(id, n.hints.inflight[id])
	}
	if n.now.Before(n.hints.nextSweep) {
		return
	}
	n.hints.nextSweep = n.now.Add(n.cfg.HintRetry)
	n.loadHints()
	targets := make([]ring.NodeID, 0, len(n.hints.held))
	for t, c := range n.hints.held {
		if c > 0 {
			targets = append(targets, t)
		}
	}
	slices.Sort(targets)
	for _, t := range targets {
		n.deliverHints(t)
	}
}
