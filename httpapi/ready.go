package httpapi

import (
	"fmt"
	"net/http"
)

// Drainer is implemented by backends that can be draining: about to shut
// down, still serving what arrives, but asking load balancers to send
// nothing new.
type Drainer interface {
	Draining() bool
}

// Reacher is implemented by backends that know which members of the ring
// they reach now.
type Reacher interface {
	// Reachable returns how many of the ring's members this node reaches
	// (itself included: those its failure detector does not report dead)
	// and how many the ring has.
	Reachable() (reached, members int)
}

// Reasons /readyz gives for answering 503.
const (
	NotReadyDraining  = "draining"
	NotReadyNoRing    = "no ring yet"
	NotReadyNotMember = "not a member of the ring"
	// NotReadyCutOff: the node reaches fewer members than the default
	// quorums need, so every request with them would fail here; a load
	// balancer should send them to a node on the other side.
	NotReadyCutOff = "cut off"
)

type readyBody struct {
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// readyz is the readiness probe: whether this node should receive client
// traffic now. /healthz stays the liveness probe: a node that is not ready
// (joining, draining) is still healthy and must not be restarted for it.
func (a *handler) readyz(w http.ResponseWriter, _ *http.Request) {
	if reason, detail := a.notReady(); reason != "" {
		writeJSON(w, http.StatusServiceUnavailable, readyBody{Ready: false, Reason: reason, Detail: detail})
		return
	}
	writeJSON(w, http.StatusOK, readyBody{Ready: true})
}

// notReady returns why the node is not ready (a Reason constant, and
// details), or "".
func (a *handler) notReady() (reason, detail string) {
	if d, ok := a.b.(Drainer); ok && d.Draining() {
		return NotReadyDraining, ""
	}
	rg := a.b.Ring()
	if rg == nil {
		return NotReadyNoRing, ""
	}
	// A node started with --join has the ring from gossip but owns nothing
	// until an operator commits it in; one that left owns nothing either.
	if !rg.Contains(a.b.NodeID()) {
		return NotReadyNotMember, ""
	}
	// A node cut off from the rest answers every request with the default
	// quorums 503 (sloppy quorums draw on any node it reaches, so the
	// count of reachable members is what decides), while /healthz stays
	// 200: the process is fine and must not be restarted for it.
	if rc, ok := a.b.(Reacher); ok {
		reached, members := rc.Reachable()
		_, r, w := a.b.Defaults()
		if need := min(max(r, w), members); reached < need {
			return NotReadyCutOff, fmt.Sprintf("reaches %d of the ring's %d members; the default quorums (R=%d, W=%d) need %d", reached, members, r, w, need)
		}
	}
	return "", ""
}
