package server

import (
	"errors"

	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// Stats implements httpapi.Observer from the loop's latest snapshot of the
// core (at most observeEvery old) and gossip's current view.
func (s *Server) Stats() httpapi.Stats {
	var cs node.Stats
	if p := s.coreSnapshot.Load(); p != nil {
		cs = *p
	}
	out := httpapi.Stats{
		Node:        s.cfg.ID,
		RingVersion: s.view.Load().version,
		Keys:        cs.Keys,
		Hints:       cs.HintsHeld,
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

// History implements httpapi.Observer: this node's copy of key and the
// hints it holds for it, read straight from storage, with their dots.
func (s *Server) History(key []byte) (httpapi.History, bool, error) {
	r := s.Ring()
	if r == nil {
		return httpapi.History{}, false, nil
	}
	p := r.PartitionOf(key)
	h := httpapi.History{Key: string(key), Node: s.cfg.ID, Partition: p}
	found := false
	raw, err := s.engine.Get(storage.ObjectKey(p, key))
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return h, false, err
	default:
		o, err := object.Decode(raw)
		if err != nil {
			return h, false, err
		}
		h.Clock, h.Siblings = httpapi.ObjectHistory(o)
		found = true
	}
	lo, hi := storage.AllHintsRange()
	err = s.engine.Scan(lo, hi, func(k, v []byte) error {
		target, hp, uk, ok := storage.ParseHintKey(k)
		if !ok || hp != p || string(uk) != string(key) {
			return nil
		}
		o, err := object.Decode(v)
		if err != nil {
			return err
		}
		hh := httpapi.HistoryHint{For: ring.NodeID(target)}
		hh.Clock, hh.Siblings = httpapi.ObjectHistory(o)
		h.Hints = append(h.Hints, hh)
		return nil
	})
	if err != nil {
		return h, false, err
	}
	return h, found || len(h.Hints) > 0, nil
}
