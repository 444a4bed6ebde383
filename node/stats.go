package node

import (
	"maps"
	"time"

	"github.com/dynago/dynago/ring"
)

// Observation: read-only snapshots of the core's counters for dashboards
// and event streams. The driver takes a Stats now and then and publishes
// what changed; the core only counts, it never reports on its own.

// recentHintsCap bounds the log of recently stored hints: enough for a
// driver that snapshots a few times a second to name each hint of a burst
// of client writes, small enough to copy on every snapshot.
const recentHintsCap = 64

// HintRecord is one hint stored for an unreachable primary.
type HintRecord struct {
	For ring.NodeID
	Key []byte
}

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
	recentHints []HintRecord // newest last, at most recentHintsCap
	deliveredTo map[ring.NodeID]uint64
	readRepairs uint64
	exchanges   map[int]ExchangeRecord
	pairs       map[Pair]PairStats
}

func (o *observeState) noteHint(primary ring.NodeID, key []byte) {
	if len(o.recentHints) == recentHintsCap {
		copy(o.recentHints, o.recentHints[1:])
		o.recentHints = o.recentHints[:recentHintsCap-1]
	}
	o.recentHints = append(o.recentHints, HintRecord{For: primary, Key: append([]byte(nil), key...)})
}

func (o *observeState) noteDelivered(target ring.NodeID) {
	if o.deliveredTo == nil {
		o.deliveredTo = map[ring.NodeID]uint64{}
	}
	o.deliveredTo[target]++
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
	DeliveredTo    map[ring.NodeID]uint64 // HintsDelivered per primary
	// RecentHints are the last hints stored, oldest first; the newest is
	// the HintsStored-th. Older ones are forgotten.
	RecentHints []HintRecord
	ReadRepairs uint64 // replicas sent a read repair since the core started
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
		RingVersion:    n.state.Version,
		AE:             n.aeStats,
		HintsStored:    n.hints.Stored,
		HintsDelivered: n.hints.Delivered,
		HintsHeld:      n.HintsHeld(),
		DeliveredTo:    maps.Clone(n.obs.deliveredTo),
		RecentHints:    append([]HintRecord(nil), n.obs.recentHints...),
		ReadRepairs:    n.obs.readRepairs,
		Exchanges:      maps.Clone(n.obs.exchanges),
		Pairs:          maps.Clone(n.obs.pairs),
	}
	for _, t := range n.ae.trees {
		st.Keys += t.Keys()
	}
	return st
}
