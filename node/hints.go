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
//
// Two things keep a hint from being stuck forever:
//   - A hint whose primary is no longer in the key's preference list (the
//     node left the ring while down, or the partition moved) goes to the
//     key's current primaries instead: this node's own copy when it is one
//     of them, else the first reachable one.
//   - While a hint cannot reach its primary (the detector marks it dead, or
//     a delivery went unanswered) the fallback copies it, once per version,
//     to the key's other reachable primaries as a repair. From then on the
//     write is in their Merkle trees, and anti-entropy carries it to every
//     replica, the primary included, even if the hint itself is later lost
//     with the fallback's disk. The hint stays until its primary acknowledges
//     it, so no copy is ever given up early.

// hintState tracks hints being delivered.
type hintState struct {
	inflight  map[uint64]*hintOp
	sending   map[string]bool     // storage keys of hints in flight
	perTarget map[ring.NodeID]int // hints in flight per target
	held      map[ring.NodeID]int // hints stored per target
	bytes     int64               // their storage keys and values, against Config.MaxHintBytes
	nextSweep time.Time
	loaded    bool
	// stuck marks targets a delivery went unanswered to; spread remembers
	// the version (object.Hash) of each hint copied to the other primaries,
	// and spreadDone the targets all of whose hints were.
	stuck      map[ring.NodeID]bool
	spread     map[string]uint64
	spreadDone map[ring.NodeID]bool
	sweeps     uint64

	Stored, Delivered uint64
	Refused           uint64 // hints not stored: they would have passed MaxHintBytes
}

// spreadAgain is how many hint sweeps pass before stuck hints are copied to
// the other primaries again.
const spreadAgain = 10

type hintOp struct {
	target ring.NodeID // the primary the hint names
	to     ring.NodeID // where it was sent: target, or a current primary
	skey   []byte
	hash   uint64
	sentAt time.Time
}

func newHintState() hintState {
	return hintState{
		inflight:   map[uint64]*hintOp{},
		sending:    map[string]bool{},
		perTarget:  map[ring.NodeID]int{},
		held:       map[ring.NodeID]int{},
		stuck:      map[ring.NodeID]bool{},
		spread:     map[string]uint64{},
		spreadDone: map[ring.NodeID]bool{},
	}
}

// ErrHintsFull is a hint a fallback refused because its hints would pass
// Config.MaxHintBytes. The coordinator counts it as that fallback's
// failure to store the write.
var ErrHintsFull = errors.New("node: hint store full")

// errStopScan ends a scan early; it never escapes this package.
var errStopScan = errors.New("node: stop scan")

// loadHints counts the hints on disk once, after a restart. It reports
// false when the scan failed (the core has stopped); the counts are then
// left as they were, never half-loaded.
func (n *Node) loadHints() bool {
	if n.hints.loaded {
		return true
	}
	counts := map[ring.NodeID]int{}
	var bytes int64
	lo, hi := storage.AllHintsRange()
	if !n.scan(lo, hi, func(k, v []byte) error {
		if target, _, _, ok := storage.ParseHintKey(k); ok {
			counts[ring.NodeID(target)]++
			bytes += hintSize(k, v)
		}
		return nil
	}) {
		return false
	}
	n.hints.held = counts // every use of held waits for this first load
	n.hints.bytes = bytes
	n.hints.loaded = true
	return true
}

// HintsHeld returns how many hints this node stores, per primary.
func (n *Node) HintsHeld() map[ring.NodeID]int {
	n.loadHints() // on failure held is still empty: nothing to report
	out := make(map[ring.NodeID]int, len(n.hints.held))
	for k, v := range n.hints.held {
		if v > 0 {
			out[k] = v
		}
	}
	return out
}

// HintBytes returns the bytes of hints this node stores (storage keys and
// values), the figure Config.MaxHintBytes bounds.
func (n *Node) HintBytes() int64 {
	n.loadHints()
	return n.hints.bytes
}

// hintSize is what a hint counts against Config.MaxHintBytes.
func hintSize(skey, value []byte) int64 { return int64(len(skey) + len(value)) }

// storeHint merges a write meant for primary into the hint kept for it,
// unless that would take the hints held past Config.MaxHintBytes
// (ErrHintsFull).
func (n *Node) storeHint(primary ring.NodeID, p int, key, encoded []byte) error {
	if !n.loadHints() {
		return n.err
	}
	in, err := object.Decode(encoded)
	if err != nil {
		return fmt.Errorf("node: bad object from peer: %w", err)
	}
	skey := storage.HintKey(string(primary), p, key)
	cur, have, err := n.readRaw(skey)
	if err != nil {
		return fmt.Errorf("node: reading hint: %w", err)
	}
	grow := hintSize(skey, encoded)
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
		grow = int64(len(encoded) - len(cur))
	}
	// A hint that does not grow is always taken: it frees nothing to
	// refuse it, and merging keeps the hint as new as the writes.
	if limit := n.cfg.MaxHintBytes; limit > 0 && grow > 0 && n.hints.bytes+grow > limit {
		n.hints.Refused++
		return fmt.Errorf("%w: %d bytes of hints held, limit %d (--max-hint-bytes); the write for %s was not stored here, and reaches %s by anti-entropy from the replicas that took it",
			ErrHintsFull, n.hints.bytes, limit, primary, primary)
	}
	if !have {
		n.hints.held[primary]++
	}
	n.hints.bytes += grow
	n.hints.Stored++
	delete(n.hints.spreadDone, primary)
	n.emit(Event{Kind: HintStored, Peer: primary, Key: slices.Clone(key), Partition: p})
	n.put(skey, encoded)
	return nil
}

// readHints merges every hint this node holds for key, whichever primary
// each names.
func (n *Node) readHints(key []byte) (object.Object, bool, error) {
	if !n.loadHints() {
		return object.Object{}, false, n.err
	}
	p := n.ring.PartitionOf(key)
	var (
		merged object.Object
		found  bool
	)
	for _, t := range n.hintTargets() {
		raw, have, err := n.readRaw(storage.HintKey(string(t), p, key))
		if err != nil {
			return object.Object{}, false, fmt.Errorf("node: reading hint: %w", err)
		}
		if !have {
			continue
		}
		o, err := object.Decode(raw)
		if err != nil {
			return object.Object{}, false, fmt.Errorf("node: reading hint: %w", err)
		}
		merged, found = object.Merge(merged, o), true
	}
	return merged, found, nil
}

// hintTargets lists, sorted, the nodes this node holds hints for.
func (n *Node) hintTargets() []ring.NodeID {
	targets := make([]ring.NodeID, 0, len(n.hints.held))
	for t, c := range n.hints.held {
		if c > 0 {
			targets = append(targets, t)
		}
	}
	slices.Sort(targets)
	return targets
}

// replicaOf reports whether id is in partition p's preference list, in the
// current ring or in the ring being moved to.
func (n *Node) replicaOf(id ring.NodeID, p int) bool {
	return slices.Contains(n.ring.PreferenceList(p), id) || (n.next != nil && slices.Contains(n.next.PreferenceList(p), id))
}

// isMember reports whether id is in the current ring or the next one.
func (n *Node) isMember(id ring.NodeID) bool {
	return n.ring.Contains(id) || (n.next != nil && n.next.Contains(id))
}

// rerouteTo picks where a hint for a node that no longer replicates
// partition p goes: this node when it is one of p's primaries, else the
// first reachable one ("" when none is).
func (n *Node) rerouteTo(p int) ring.NodeID {
	pl := n.ring.PreferenceList(p)
	if slices.Contains(pl, n.cfg.ID) {
		return n.cfg.ID
	}
	for _, r := range pl {
		if n.reachable(r) {
			return r
		}
	}
	return ""
}

// hintValue returns the current value of a hint met in a scan, seeing this
// batch's writes; ok is false when the batch deleted it.
func (n *Node) hintValue(k, v []byte) ([]byte, bool) {
	if cur, pend := n.pending[string(k)]; pend {
		return cur, cur != nil
	}
	return v, true
}

// localHint is a hint this node resolves into its own copy, after a scan
// (the store cannot be read inside its own scan).
type localHint struct {
	skey, key, value []byte
}

// deliverHints offers target the hints held for it, up to HintBatch in
// flight at once; hints whose key target no longer replicates go to the
// key's current primaries instead.
func (n *Node) deliverHints(target ring.NodeID) {
	if !n.loadHints() || n.hints.held[target] == 0 || target == n.cfg.ID || n.ring == nil {
		return
	}
	member := n.isMember(target)
	if member && (!n.reachable(target) || n.hints.stuck[target]) {
		n.spreadHints(target)
	}
	if member && !n.reachable(target) {
		return // its hints wait for it (or for it to leave the ring)
	}
	room := n.cfg.HintBatch - n.hints.perTarget[target]
	if room <= 0 {
		return
	}
	var locals []localHint
	if !n.scanHints(target, func(k, userKey, v []byte) error {
		if room <= 0 {
			return errStopScan
		}
		if n.hints.sending[string(k)] {
			return nil
		}
		to := target
		if p := n.ring.PartitionOf(userKey); !n.replicaOf(target, p) {
			if to = n.rerouteTo(p); to == "" {
				return nil // no primary reachable: try again next sweep
			}
		}
		room--
		if to == n.cfg.ID {
			locals = append(locals, localHint{skey: slices.Clone(k), key: slices.Clone(userKey), value: slices.Clone(v)})
			return nil
		}
		id := n.newOpID()
		skey := slices.Clone(k)
		n.hints.inflight[id] = &hintOp{target: target, to: to, skey: skey, hash: object.Hash(v), sentAt: n.now}
		n.hints.sending[string(skey)] = true
		n.hints.perTarget[target]++
		n.send(Message{Type: MsgReplicaPut, To: to, ReqID: id, Key: slices.Clone(userKey), Object: slices.Clone(v)})
		return nil
	}) {
		return // the core stopped
	}
	for _, h := range locals {
		if err := n.mergeLocal(h.key, h.value); err == nil {
			n.dropHint(target, h.skey, h.value)
		}
	}
}

// scanHints calls fn for each readable hint held for target, with its
// storage key, the user key it is for and its object; fn returns
// errStopScan to end the scan early. Unreadable hints are skipped here, in
// one place, rather than by each caller. It reports false when the scan
// failed (the core has stopped): what fn saw is then incomplete.
func (n *Node) scanHints(target ring.NodeID, fn func(skey, userKey, value []byte) error) bool {
	lo, hi := storage.HintRange(string(target))
	return n.scan(lo, hi, func(k, v []byte) error {
		v, ok := n.hintValue(k, v)
		if !ok {
			return nil
		}
		_, _, userKey, ok := storage.ParseHintKey(k)
		if !ok {
			return nil
		}
		return fn(k, userKey, v)
	})
}

// dropHint deletes a delivered hint, whose value is value.
func (n *Node) dropHint(target ring.NodeID, skey, value []byte) {
	n.put(skey, nil)
	delete(n.hints.spread, string(skey))
	n.hints.held[target]--
	n.hints.bytes -= hintSize(skey, value)
	n.hints.Delivered++
	n.obs.noteDelivered(target)
	ev := Event{Kind: HintDelivered, Peer: target}
	if _, p, key, ok := storage.ParseHintKey(skey); ok {
		ev.Partition, ev.Key = p, slices.Clone(key)
	}
	n.emit(ev)
}

// spreadHints copies the hints held for target, which cannot take them now,
// to the other reachable primaries of each key as repairs (no answer
// awaited), once per hint version, at most HintBatch per sweep.
func (n *Node) spreadHints(target ring.NodeID) {
	if n.hints.spreadDone[target] {
		return
	}
	budget, complete := n.cfg.HintBatch, true
	var locals []localHint
	if !n.scanHints(target, func(k, userKey, v []byte) error {
		if budget <= 0 {
			complete = false
			return errStopScan
		}
		h := object.Hash(v)
		if seen, ok := n.hints.spread[string(k)]; ok && seen == h {
			return nil
		}
		sent := false
		for _, r := range n.ring.PreferenceList(n.ring.PartitionOf(userKey)) {
			switch {
			case r == target || !n.reachable(r):
			case r == n.cfg.ID:
				locals = append(locals, localHint{key: slices.Clone(userKey), value: slices.Clone(v)})
				sent = true
			default:
				n.send(Message{Type: MsgReplicaPut, To: r, Key: slices.Clone(userKey), Object: slices.Clone(v), Repair: true})
				n.emit(Event{Kind: Repair, Peer: r, Key: slices.Clone(userKey), Partition: n.ring.PartitionOf(userKey), Cause: RepairSpread})
				sent = true
			}
		}
		if !sent {
			complete = false // no other primary reachable now
			return nil
		}
		n.hints.spread[string(k)] = h
		budget--
		return nil
	}) {
		return // the core stopped; spreadDone must not claim a full pass
	}
	for _, h := range locals {
		_ = n.mergeLocal(h.key, h.value) // a failure is retried: the hint stays
	}
	if complete {
		n.hints.spreadDone[target] = true
	}
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
	if m.From == op.target {
		delete(n.hints.stuck, op.target)
	}
	cur, have, err := n.readRaw(op.skey)
	if err == nil && have && object.Hash(cur) == op.hash {
		n.dropHint(op.target, op.skey, cur)
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
		op := n.hints.inflight[id]
		if op.to == op.target && !n.hints.stuck[op.target] {
			// Alive by the detector, yet silent: copy its hints to the
			// other primaries too (spreadHints) until it acknowledges one.
			n.hints.stuck[op.target] = true
			delete(n.hints.spreadDone, op.target)
		}
		n.forgetHintOp(id, op)
	}
	if n.now.Before(n.hints.nextSweep) {
		return
	}
	n.hints.nextSweep = n.now.Add(n.cfg.HintRetry)
	if n.hints.sweeps++; n.hints.sweeps%spreadAgain == 0 {
		// Spread copies are repairs nobody acknowledges: offer stuck
		// hints again now and then, in case one was lost.
		clear(n.hints.spread)
		clear(n.hints.spreadDone)
	}
	if !n.loadHints() {
		return
	}
	for _, t := range n.hintTargets() {
		n.deliverHints(t)
	}
}
