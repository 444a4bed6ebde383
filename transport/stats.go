package transport

import (
	"sync"
	"sync/atomic"

	"github.com/dynago/dynago/ring"
)

// Counters count messages. For one peer, every Send ends in exactly one of
// Sent, Failed, Dropped or FaultDropped (FaultDelayed messages end in one of
// the others once their delay is over), so once the transport is idle
//
//	Send calls = Sent + Failed + Dropped + FaultDropped.
type Counters struct {
	// Sent: messages in Step calls the peer acknowledged (for the local
	// node: messages handed to the Handler).
	Sent uint64
	// Received: messages from the peer handed to the Handler.
	Received uint64
	// Dropped: messages discarded before any Step call: queue full, unknown
	// peer, peer removed, transport closed.
	Dropped uint64
	// Failed: messages in Step calls that returned an error (timeout,
	// connection refused) or that the peer rejected. They may or may not
	// have been delivered.
	Failed uint64
	// Rejected: envelopes received from the peer and not handed to the
	// Handler, because they were addressed to another node or malformed.
	Rejected uint64
	// FaultDropped: messages the Interceptor dropped.
	FaultDropped uint64
	// FaultDelayed: messages the Interceptor delayed.
	FaultDelayed uint64
}

func (c *Counters) add(o Counters) {
	c.Sent += o.Sent
	c.Received += o.Received
	c.Dropped += o.Dropped
	c.Failed += o.Failed
	c.Rejected += o.Rejected
	c.FaultDropped += o.FaultDropped
	c.FaultDelayed += o.FaultDelayed
}

// Stats is a snapshot of a Transport's counters.
type Stats struct {
	// Total sums Peers.
	Total Counters
	// Malformed counts received envelopes rejected as malformed (bad
	// enum, out-of-range field, bad context...): a bug in a peer, or
	// someone other than a peer writing to the RPC port. Also in
	// Peers[UnknownPeer].Rejected.
	Malformed uint64
	// Peers holds the counters of every node ever sent to or received from,
	// this node included, even after it was removed from the peers.
	Peers map[ring.NodeID]Counters
}

// counters is the live, atomically updated form of Counters.
type counters struct {
	sent, received, dropped, failed, rejected, faultDropped, faultDelayed atomic.Uint64
}

func (c *counters) snapshot() Counters {
	return Counters{
		Sent:         c.sent.Load(),
		Received:     c.received.Load(),
		Dropped:      c.dropped.Load(),
		Failed:       c.failed.Load(),
		Rejected:     c.rejected.Load(),
		FaultDropped: c.faultDropped.Load(),
		FaultDelayed: c.faultDelayed.Load(),
	}
}

// UnknownPeer names the counters of envelopes whose sender is not trusted
// to name an entry of its own: malformed ones, and any sender beyond
// maxStatsPeers. No node has the empty ID.
const UnknownPeer ring.NodeID = ""

// maxStatsPeers bounds the stats table: the From of an envelope is chosen
// by whoever reaches the RPC port, and an entry per forged ID would grow
// without limit. A real cluster has far fewer nodes.
const maxStatsPeers = 4096

// statsTable holds counters per node ID. Entries are never removed, so a
// pointer from of stays valid and hot paths can keep it.
type statsTable struct {
	mu sync.RWMutex
	m  map[ring.NodeID]*counters
}

func newStatsTable() *statsTable {
	return &statsTable{m: make(map[ring.NodeID]*counters)}
}

func (s *statsTable) of(id ring.NodeID) *counters {
	s.mu.RLock()
	c := s.m[id]
	s.mu.RUnlock()
	if c != nil {
		return c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c = s.m[id]; c == nil {
		if len(s.m) >= maxStatsPeers && id != UnknownPeer {
			return s.ofLocked(UnknownPeer)
		}
		c = new(counters)
		s.m[id] = c
	}
	return c
}

func (s *statsTable) snapshot() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := Stats{Peers: make(map[ring.NodeID]Counters, len(s.m))}
	for id, c := range s.m {
		snap := c.snapshot()
		st.Peers[id] = snap
		st.Total.add(snap)
	}
	return st
}

func (s *statsTable) ofLocked(id ring.NodeID) *counters {
	c := s.m[id]
	if c == nil {
		c = new(counters)
		s.m[id] = c
	}
	return c
}
