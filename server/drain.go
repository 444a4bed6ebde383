package server

import (
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

// Drain marks the node as draining before a shutdown: /readyz answers 503
// "draining" so that load balancers stop sending it requests, while it
// keeps serving everything that still arrives. Close ends it. Drain is
// idempotent and safe from any goroutine.
func (s *Server) Drain() {
	if s.draining.Swap(true) {
		return
	}
	s.log.Info("draining: /readyz answers 503 until shutdown; requests are still served")
	s.events.publish("node", "draining before shutdown", map[string]any{"draining": true})
}

// Draining implements httpapi.Drainer.
func (s *Server) Draining() bool { return s.draining.Load() }

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
