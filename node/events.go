package node

import (
	"fmt"
	"slices"

	"github.com/dynago/dynago/ring"
)

// Events: what the core did that someone may want to watch (logs, metrics,
// the simulator's traces, the dashboard). They leave through Ready.Events,
// as raft's observations leave through its Ready, so that every watcher
// sees the same events and none has to diff counters to guess them.

// EventKind names what an Event reports.
type EventKind uint8

const (
	// HintStored: this node stored (or merged into) a hint for primary
	// Peer, for Key of Partition (sloppy quorum, Dynamo §4.6).
	HintStored EventKind = iota + 1
	// HintDelivered: primary Peer acknowledged the hint for Key, and this
	// node deleted it.
	HintDelivered
	// Exchange: this node compared its Merkle tree of Partition with
	// Peer's to the end; InSync says the roots were equal.
	Exchange
	// Repair: this node sent Peer its copy of Key (of Partition), which
	// Peer lacked or held an older version of; Cause says why.
	Repair
	// HandoffStep: this node finished handing Partition to Peer (a
	// membership change's transfer, or an orphaned partition handed off
	// and dropped); N objects were pushed for it.
	HandoffStep
	// TreeBuilt: this node built its Merkle tree of Partition from a scan
	// of storage, of N keys. The build runs inside the step that needed
	// it, so a driver timing its steps can time builds.
	TreeBuilt
)

func (k EventKind) String() string {
	switch k {
	case HintStored:
		return "hint_stored"
	case HintDelivered:
		return "hint_delivered"
	case Exchange:
		return "exchange"
	case Repair:
		return "repair"
	case HandoffStep:
		return "handoff_step"
	case TreeBuilt:
		return "tree_built"
	}
	return "unknown"
}

// RepairCause says why a Repair was sent.
type RepairCause uint8

const (
	// RepairRead: a read found the replica stale (Dynamo §5, read repair).
	RepairRead RepairCause = iota + 1
	// RepairAE: anti-entropy found the replica's tree different (§4.7).
	RepairAE
	// RepairHandoff: the object is pushed to a partition's new owner.
	RepairHandoff
	// RepairSpread: a hint whose primary cannot take it for now is copied
	// to the key's other primaries, so it is not kept on one fallback.
	RepairSpread
)

func (c RepairCause) String() string {
	switch c {
	case RepairRead:
		return "read"
	case RepairAE:
		return "ae"
	case RepairHandoff:
		return "handoff"
	case RepairSpread:
		return "spread"
	}
	return "unknown"
}

// Event is one observation; which fields are set depends on Kind (see
// each kind). Key is a copy the receiver owns.
type Event struct {
	Kind      EventKind
	Peer      ring.NodeID
	Key       []byte
	Partition int
	InSync    bool        // Exchange
	Cause     RepairCause // Repair
	N         int         // HandoffStep: objects pushed; TreeBuilt: keys scanned
}

func (e Event) String() string {
	switch e.Kind {
	case HintStored:
		return fmt.Sprintf("hint stored for %s: %q", e.Peer, e.Key)
	case HintDelivered:
		return fmt.Sprintf("hint delivered to %s: %q", e.Peer, e.Key)
	case Exchange:
		if e.InSync {
			return fmt.Sprintf("exchange with %s on partition %d: in sync", e.Peer, e.Partition)
		}
		return fmt.Sprintf("exchange with %s on partition %d: trees differ", e.Peer, e.Partition)
	case Repair:
		return fmt.Sprintf("%s repair to %s: %q", e.Cause, e.Peer, e.Key)
	case HandoffStep:
		return fmt.Sprintf("handed partition %d to %s (%d objects)", e.Partition, e.Peer, e.N)
	case TreeBuilt:
		return fmt.Sprintf("built tree of partition %d (%d keys)", e.Partition, e.N)
	}
	return "unknown event"
}

// emit adds an event to the next Ready. Events wait with Messages for the
// fsync (see Ready.Events).
func (n *Node) emit(e Event) {
	n.rd.Events = append(n.rd.Events, e)
}

// emitReadRepairs reports the read repair of key on each replica in
// targets.
func (n *Node) emitReadRepairs(p int, key []byte, targets []ring.NodeID) {
	for _, t := range targets {
		n.emit(Event{Kind: Repair, Peer: t, Key: slices.Clone(key), Partition: p, Cause: RepairRead})
	}
}

// repaired counts one object sent to peer to repair or hand off p.
func (n *Node) repaired(cause RepairCause, p int, peer ring.NodeID, key []byte) {
	n.aeStats.KeysRepaired++
	n.obs.noteSent(p, peer)
	n.emitRepair(cause, p, peer, key)
}

// emitRepair reports one object sent to peer to repair or hand off p.
func (n *Node) emitRepair(cause RepairCause, p int, peer ring.NodeID, key []byte) {
	n.emit(Event{Kind: Repair, Peer: peer, Key: slices.Clone(key), Partition: p, Cause: cause})
}
