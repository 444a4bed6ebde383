package node

import (
	"maps"
	"slices"
	"time"

	"github.com/dynago/dynago/coord"
	"github.com/dynago/dynago/ring"
)

// Observation: read-only snapshots of the core's counters and state, for
// gauges and /admin/stats. What happened, one event at a time, leaves
// through Ready.Events instead (events.go): a driver never has to diff two
// snapshots to learn it.

// ExchangeRecord is the last completed anti-entropy exchange this node ran
// for one partition.
type ExchangeRecord struct {
	Peer   ring.NodeID
	At     time.Time // the core's clock when the trees were compared to the end
	InSync bool      // the roots were equal: nothing to repair
}

// Pair names a partition and another replica of it: anti-entropy is
// observed per pair, since each replica pair converges on its own.
type Pair struct {
	Partition int
	Peer      ring.NodeID
}

// PairStats is anti-entropy between this node and Peer for Partition.
type PairStats struct {
	Last ExchangeRecord // the last exchange this node ran with Peer; zero At: none yet
	// Sent counts objects this node sent Peer for the partition to repair
	// it or hand it off, whichever side started the exchange. What Peer
	// sent this node is in Peer's own stats.
	Sent uint64
}

// observeState is what the core counts only to be observed.
type observeState struct {
	deliveredTo map[ring.NodeID]uint64
	readRepairs uint64
	// readRepairsMissing: of readRepairs, those sent to a replica that
	// answered with no copy at all (lost a write), not an older one.
	readRepairsMissing uint64
	// Ownership handoff pushes by this node (transition transfers and
	// hand-off-and-drop alike): objects and their encoded bytes sent,
	// and pushes completed (every object acknowledged).
	handoffKeys, handoffBytes, handoffsDone uint64
	exchanges                               map[int]ExchangeRecord
	pairs                                   map[Pair]PairStats
}

func (o *observeState) noteDelivered(target ring.NodeID) {
	if o.deliveredTo == nil {
		o.deliveredTo = map[ring.NodeID]uint64{}
	}
	o.deliveredTo[target]++
}

// noteReadRepairs counts the repairs finishGet sends to targets, chosen
// from answers.
func (o *observeState) noteReadRepairs(targets []ring.NodeID, answers []coord.Answer) {
	o.readRepairs += uint64(len(targets))
	for _, a := range answers {
		if !a.Found && slices.Contains(targets, a.From) {
			o.readRepairsMissing++
		}
	}
}

func (o *observeState) noteExchange(p int, r ExchangeRecord) {
	if o.exchanges == nil {
		o.exchanges = map[int]ExchangeRecord{}
	}
	o.exchanges[p] = r
	k := Pair{p, r.Peer}
	ps := o.pair(k)
	ps.Last = r
	o.pairs[k] = ps
}

// noteSent counts one object sent to peer to repair or hand off p.
func (o *observeState) noteSent(p int, peer ring.NodeID) {
	k := Pair{p, peer}
	ps := o.pair(k)
	ps.Sent++
	o.pairs[k] = ps
}

func (o *observeState) pair(k Pair) PairStats {
	if o.pairs == nil {
		o.pairs = map[Pair]PairStats{}
	}
	return o.pairs[k]
}

// Stats is a snapshot of the core's observable state. Every map and slice
// is a copy the caller owns.
type Stats struct {
	RingVersion    uint64
	AE             AEStats
	HintsStored    uint64                 // hints stored (or merged into) since the core started
	HintsDelivered uint64                 // hints acknowledged by their primary since the core started
	HintsHeld      map[ring.NodeID]int    // hints held now, per primary
	HintBytes      int64                  // bytes of the hints held now (Config.MaxHintBytes bounds them)
	HintsRefused   uint64                 // hints not stored since the core started: they would have passed MaxHintBytes
	DeliveredTo    map[ring.NodeID]uint64 // HintsDelivered per primary
	ReadRepairs    uint64                 // replicas sent a read repair since the core started
	// ReadRepairsMissing counts the ReadRepairs sent to a replica that
	// held no copy of the key; the rest repaired an out-of-date copy.
	ReadRepairsMissing uint64
	// HandoffKeysSent and HandoffBytesSent count the objects (and their
	// encoded bytes) this node pushed to hand partitions off, for a
	// membership change or to drop data it no longer replicates;
	// HandoffsDone counts the pushes it completed.
	HandoffKeysSent, HandoffBytesSent, HandoffsDone uint64
	Reaped                                          uint64 // tombstones this node deleted (as a replica) since the core started
	// Keys approximates the objects this node stores: the keys of the
	// Merkle trees built so far. Trees are built lazily (by anti-entropy,
	// one partition per interval), so until every partition's tree exists
	// it undercounts.
	Keys int
	// Exchanges holds the last completed exchange per partition, for the
	// partitions this node has exchanged since it started.
	Exchanges map[int]ExchangeRecord
	// Pairs holds anti-entropy per partition and peer, for the pairs this
	// node has exchanged with or sent repairs to since it started.
	Pairs map[Pair]PairStats
}

// Stats returns a snapshot of the core's counters. It does no I/O beyond
// counting hints on disk once after a restart, as HintsHeld does.
func (n *Node) Stats() Stats {
	st := Stats{
		RingVersion:        n.state.Version,
		AE:                 n.aeStats,
		HintsStored:        n.hints.Stored,
		HintsDelivered:     n.hints.Delivered,
		HintsHeld:          n.HintsHeld(),
		HintBytes:          n.HintBytes(),
		HintsRefused:       n.hints.Refused,
		DeliveredTo:        maps.Clone(n.obs.deliveredTo),
		ReadRepairs:        n.obs.readRepairs,
		ReadRepairsMissing: n.obs.readRepairsMissing,
		HandoffKeysSent:    n.obs.handoffKeys,
		HandoffBytesSent:   n.obs.handoffBytes,
		HandoffsDone:       n.obs.handoffsDone,
		Exchanges:          maps.Clone(n.obs.exchanges),
		Pairs:              maps.Clone(n.obs.pairs),
		Reaped:             n.reaped,
	}
	for _, t := range n.ae.trees {
		st.Keys += t.Keys()
	}
	return st
}
