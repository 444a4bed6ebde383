package httpapi_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/httpapi/httpapitest"
	"github.com/dynago/dynago/ring"
)

// readyBackend is the fake backend with a ring that can be missing or
// exclude this node, a draining switch, and a count of members reached
// (every member while cut is 0).
type readyBackend struct {
	*httpapitest.Backend
	ring     atomic.Pointer[ring.Ring]
	draining atomic.Bool
	cut      atomic.Bool
	reached  atomic.Int64
}

func (b *readyBackend) Ring() *ring.Ring { return b.ring.Load() }
func (b *readyBackend) Draining() bool   { return b.draining.Load() }
func (b *readyBackend) Reachable() (reached, members int) {
	members = len(b.ring.Load().Members())
	if !b.cut.Load() {
		return members, members
	}
	return int(b.reached.Load()), members
}

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

	// Cut off: fewer members reached than the default quorums need.
	_, r, w := b.Defaults()
	need := min(max(r, w), len(b.Backend.Ring().Members()))
	b.cut.Store(true)
	b.reached.Store(int64(need - 1))
	check("cut off", 503, "cut off")
	if a := call(t, srv, "GET", "/readyz", nil); !strings.Contains(string(a.body), fmt.Sprintf("reaches %d of", need-1)) {
		t.Fatalf("cut off: %s, want a detail saying how many members it reaches", a.body)
	}
	b.reached.Store(int64(need))
	check("reaching a quorum", 200, "")
	b.cut.Store(false)

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
