package server

import (
	"errors"
	"maps"
	"slices"

	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// Stats implements httpapi.Observer from the loop's latest snapshot of the
// core (at most statsEvery old) and gossip's current view.
func (s *Server) Stats() httpapi.Stats {
	cs := s.stats()
	out := httpapi.Stats{
		Node:         s.cfg.ID,
		RingVersion:  s.view.Load().version,
		Keys:         cs.Keys,
		Hints:        cs.HintsHeld,
		HintBytes:    cs.HintBytes,
		HintsRefused: cs.HintsRefused,
		AE: httpapi.AEStats{
			Exchanges: cs.AE.Exchanges, InSync: cs.AE.InSync,
			KeysRepaired: cs.AE.KeysRepaired, TreeBuilds: cs.AE.TreeBuilds,
		},
		Events: s.events.stats(),
	}
	if r := s.Ring(); r != nil {
		for _, p := range r.PartitionsOf(s.cfg.ID) {
			ps := httpapi.PartitionStats{Partition: p, Replicas: r.PreferenceList(p)}
			if x, ok := cs.Exchanges[p]; ok {
				ps.LastExchange = &httpapi.Exchange{Peer: x.Peer, At: x.At, InSync: x.InSync}
			}
			ps.Pairs = []httpapi.PairStats{}
			for _, peer := range ps.Replicas {
				if peer == s.cfg.ID {
					continue
				}
				pair := httpapi.PairStats{Peer: peer}
				if x, ok := cs.Pairs[node.Pair{Partition: p, Peer: peer}]; ok {
					pair.KeysSent = x.Sent
					if !x.Last.At.IsZero() {
						pair.LastExchange = &httpapi.Exchange{Peer: peer, At: x.Last.At, InSync: x.Last.InSync}
					}
				}
				ps.Pairs = append(ps.Pairs, pair)
			}
			out.Partitions = append(out.Partitions, ps)
		}
	}
	if s.members != nil {
		for _, m := range s.members.Members() {
			out.Gossip = append(out.Gossip, httpapi.GossipMember{ID: m.ID, Status: m.Status.String(), Addr: m.Addr, HTTPAddr: m.Meta.HTTPAddr})
		}
	}
	return out
}

// ownCopy is what this node itself holds of one key, read straight from
// storage: its replica's object (nil when it has none) and the hints it
// keeps for other nodes.
type ownCopy struct {
	partition int
	obj       *object.Object
	hints     []heldHint
}

type heldHint struct {
	forNode ring.NodeID
	obj     object.Object
}

// readOwnCopy reads this node's copy of key and its hints for key: the one
// read behind GET /admin/local (httpapi.Backend.Local) and GET
// /admin/history (httpapi.Observer.History). ok is false while the node
// has no ring yet.
func (s *Server) readOwnCopy(key []byte) (c ownCopy, ok bool, err error) {
	r := s.Ring()
	if r == nil {
		return c, false, nil
	}
	c.partition = r.PartitionOf(key)
	raw, err := s.engine.Get(storage.ObjectKey(c.partition, key))
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return c, false, err
	default:
		o, err := object.Decode(raw)
		if err != nil {
			return c, false, err
		}
		c.obj = &o
	}
	// A hint for key is at HintKey(target, partition, key) for some
	// target: a point read per node it can be for (the ring's members, and
	// whoever hints are still held for), not a scan of every hint, which
	// would cost a node holding a long outage's hints (up to
	// --max-hint-bytes) a full pass per call.
	for _, target := range s.hintTargets(r) {
		raw, err := s.engine.Get(storage.HintKey(string(target), c.partition, key))
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return c, false, err
		}
		o, err := object.Decode(raw)
		if err != nil {
			return c, false, err
		}
		c.hints = append(c.hints, heldHint{forNode: target, obj: o})
	}
	return c, true, nil
}

// hintTargets lists, sorted, the nodes this node may hold hints for: the
// members of r and of the ring being moved to, and those the core's
// latest snapshot holds hints for (a node that left the ring keeps its
// hints until they are rerouted).
func (s *Server) hintTargets(r *ring.Ring) []ring.NodeID {
	seen := map[ring.NodeID]bool{}
	for _, id := range r.Members() {
		seen[id] = true
	}
	if v := s.view.Load(); v != nil && v.next != nil {
		for _, id := range v.next.Members() {
			seen[id] = true
		}
	}
	for id := range s.stats().HintsHeld {
		seen[id] = true
	}
	delete(seen, s.cfg.ID) // a node holds no hints for itself
	return slices.Sorted(maps.Keys(seen))
}

// History implements httpapi.Observer: this node's copy of key and the
// hints it holds for it, with their dots.
func (s *Server) History(key []byte) (httpapi.History, bool, error) {
	c, ok, err := s.readOwnCopy(key)
	h := httpapi.History{Key: string(key), Node: s.cfg.ID, Partition: c.partition}
	if !ok || err != nil {
		return h, false, err
	}
	if c.obj != nil {
		h.Clock, h.Siblings = httpapi.ObjectHistory(*c.obj)
	}
	for _, hint := range c.hints {
		hh := httpapi.HistoryHint{For: hint.forNode}
		hh.Clock, hh.Siblings = httpapi.ObjectHistory(hint.obj)
		h.Hints = append(h.Hints, hh)
	}
	return h, c.obj != nil || len(h.Hints) > 0, nil
}

// Local implements httpapi.Backend: this node's own copy of key and the
// nodes it holds hints for.
func (s *Server) Local(key []byte) (httpapi.Local, bool, error) {
	var out httpapi.Local
	c, ok, err := s.readOwnCopy(key)
	if !ok || err != nil {
		return out, false, err
	}
	if c.obj != nil {
		out.Siblings = c.obj.Siblings()
		out.Context = c.obj.Context()
	}
	for _, hint := range c.hints {
		out.Hints = append(out.Hints, hint.forNode)
	}
	return out, c.obj != nil || len(out.Hints) > 0, nil
}

// Reachable implements httpapi.Reacher from gossip's current view: the
// ring's members this node reaches are itself and those its failure
// detector does not report dead, the nodes the core's sloppy quorums draw
// on. A member gossip has not heard of yet counts as not reached, so a
// node is not ready before it has made contact.
func (s *Server) Reachable() (reached, members int) {
	rg := s.Ring()
	if rg == nil {
		return 0, 0
	}
	ids := rg.Members()
	if s.members == nil {
		return len(ids), len(ids) // no failure detector: the core treats everyone as reachable too
	}
	status := map[ring.NodeID]node.Status{}
	for _, m := range s.members.Members() {
		status[m.ID] = m.Status
	}
	for _, id := range ids {
		if st, known := status[id]; id == s.cfg.ID || (known && st != node.Dead) {
			reached++
		}
	}
	return reached, len(ids)
}
