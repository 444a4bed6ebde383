package httpapi

import "net/http"

// Drainer is implemented by backends that can be draining: about to shut
// down, still serving what arrives, but asking load balancers to send
// nothing new.
type Drainer interface {
	Draining() bool
}

// Reasons /readyz gives for answering 503.
const (
	NotReadyDraining  = "draining"
	NotReadyNoRing    = "no ring yet"
	NotReadyNotMember = "not a member of the ring"
)

type readyBody struct {
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
}

// readyz is the readiness probe: whether this node should receive client
// traffic now. /healthz stays the liveness probe: a node that is not ready
// (joining, draining) is still healthy and must not be restarted for it.
func (a *handler) readyz(w http.ResponseWriter, _ *http.Request) {
	if reason := a.notReady(); reason != "" {
		writeJSON(w, http.StatusServiceUnavailable, readyBody{Ready: false, Reason: reason})
		return
	}
	writeJSON(w, http.StatusOK, readyBody{Ready: true})
}

// notReady returns why the node is not ready, or "".
func (a *handler) notReady() string {
	if d, ok := a.b.(Drainer); ok && d.Draining() {
		return NotReadyDraining
	}
	rg := a.b.Ring()
	if rg == nil {
		return NotReadyNoRing
	}
	// A node started with --join has the ring from gossip but owns nothing
	// until an operator commits it in; one that left owns nothing either.
	if !rg.Contains(a.b.NodeID()) {
		return NotReadyNotMember
	}
	return ""
}
