package server

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
