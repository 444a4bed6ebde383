package httpapi_test

import (
	"encoding/json"
	"sync/atomic"
	"testing"

	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/httpapi/httpapitest"
	"github.com/dynago/dynago/ring"
)

// readyBackend is the fake backend with a ring that can be missing or
// exclude this node, and a draining switch.
type readyBackend struct {
	*httpapitest.Backend
	ring     atomic.Pointer[ring.Ring]
	draining atomic.Bool
}

func (b *readyBackend) Ring() *ring.Ring { return b.ring.Load() }
func (b *readyBackend) Draining() bool   { return b.draining.Load() }

func TestReadyz(t *testing.T) {
	b := &readyBackend{Backend: httpapitest.New()}
	srv := serve(t, b, httpapi.Options{})
	check := func(step string, wantStatus int, wantReason string) {
		t.Helper()
		a := call(t, srv, "GET", "/readyz", nil)
		var body struct {
			Ready  *bool   `json:"ready"`
			Reason *string `json:"reason"`
		}
		if err := json.Unmarshal(a.body, &body); err != nil || body.Ready == nil {
			t.Fatalf("%s: body %s: %v", step, a.body, err)
		}
		reason := ""
		if body.Reason != nil {
			reason = *body.Reason
		}
		if a.status != wantStatus || *body.Ready != (wantStatus == 200) || reason != wantReason {
			t.Fatalf("%s: %d %s; want %d reason %q", step, a.status, a.body, wantStatus, wantReason)
		}
		// Liveness is another matter: a node that is not ready is healthy.
		if h := call(t, srv, "GET", "/healthz", nil); h.status != 200 {
			t.Fatalf("%s: /healthz %d", step, h.status)
		}
	}
	check("no ring", 503, "no ring yet")

	others, err := ring.New(ring.Config{Partitions: 8, N: 3}, []ring.NodeID{"n2", "n3", "n4"})
	if err != nil {
		t.Fatal(err)
	}
	b.ring.Store(others)
	check("ring without this node", 503, "not a member of the ring")

	b.ring.Store(b.Backend.Ring())
	check("member", 200, "")

	b.draining.Store(true)
	check("draining", 503, "draining")
	// Draining marks the node unready but it still serves requests.
	if a := call(t, srv, "PUT", "/kv/k", []byte("v")); a.status != 204 {
		t.Fatalf("put while draining: %d %s", a.status, a.body)
	}
	if a := call(t, srv, "POST", "/readyz", nil); a.status != 405 {
		t.Fatalf("POST /readyz: %d", a.status)
	}
}
