package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/httpapi/httpapitest"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/security"
)

// adminFake is the fake backend as node id, in a membership change
// committed by claimant, with the members it is given.
type adminFake struct {
	*httpapitest.Backend
	id       ring.NodeID
	mu       sync.Mutex
	hp       node.HandoffProgress
	members  []httpapi.Member
	aborts   int
	progress time.Time
}

func newAdminFake(id, claimant ring.NodeID) *adminFake {
	return &adminFake{Backend: httpapitest.New(), id: id, progress: time.Now(),
		hp: node.HandoffProgress{InTransition: true, Claimant: claimant, Total: 4, Done: 1}}
}

func (b *adminFake) NodeID() ring.NodeID { return b.id }
func (b *adminFake) Members() []httpapi.Member {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.members
}
func (b *adminFake) Plan(context.Context) (node.Plan, error) { return node.Plan{}, node.ErrTransition }
func (b *adminFake) Commit(context.Context) (node.Plan, error) {
	return node.Plan{}, node.ErrTransition
}
func (b *adminFake) StageLeave(context.Context, ring.NodeID) error { return node.ErrTransition }
func (b *adminFake) LastProgress() time.Time                       { return b.progress }
func (b *adminFake) Progress() (node.HandoffProgress, *ring.Ring) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.hp, nil
}
func (b *adminFake) Abort(context.Context) (node.HandoffProgress, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.hp.InTransition {
		return b.hp, node.ErrNoTransition
	}
	b.aborts++
	hp := b.hp
	b.hp = node.HandoffProgress{}
	return hp, nil
}

// An abort sent to any node runs on the claimant while gossip reports it
// alive, and on the node asked when the claimant is dead or silent.
func TestAbortGoesToTheClaimant(t *testing.T) {
	claimant := newAdminFake("n2", "n2")
	claimantSrv := serve(t, claimant, httpapi.Options{})
	entry := newAdminFake("n1", "n2")
	entry.members = []httpapi.Member{{ID: "n1", HTTPAddr: "unused", Status: "alive"}, {ID: "n2", HTTPAddr: claimantSrv.Listener.Addr().String(), Status: "alive"}}
	entrySrv := serve(t, entry, httpapi.Options{})

	var body struct {
		Aborted  bool        `json:"aborted"`
		Node     ring.NodeID `json:"node"`
		Claimant ring.NodeID `json:"claimant"`
		Total    int         `json:"total"`
		Done     int         `json:"done"`
	}
	a := call(t, entrySrv, "POST", "/admin/abort", nil)
	if err := json.Unmarshal(a.body, &body); err != nil || a.status != 200 {
		t.Fatalf("abort via n1: %d %s", a.status, a.body)
	}
	if !body.Aborted || body.Node != "n2" || body.Claimant != "n2" || body.Total != 4 || body.Done != 1 || claimant.aborts != 1 || entry.aborts != 0 {
		t.Fatalf("abort via n1 answered %+v; claimant aborts %d, n1 aborts %d: want it run on the claimant n2", body, claimant.aborts, entry.aborts)
	}
	// The claimant has nothing left to abort: its answer comes back as is.
	a = call(t, entrySrv, "POST", "/admin/abort", nil)
	if a.status != 409 || code(t, a) != httpapi.CodeNoTransition {
		t.Fatalf("second abort via n1: %d %s", a.status, a.body)
	}

	// The claimant is dead to gossip: n1 aborts itself.
	entry.mu.Lock()
	entry.members[1].Status = "dead"
	entry.mu.Unlock()
	a = call(t, entrySrv, "POST", "/admin/abort", nil)
	if err := json.Unmarshal(a.body, &body); err != nil || a.status != 200 || body.Node != "n1" || entry.aborts != 1 {
		t.Fatalf("abort with the claimant dead: %d %s", a.status, a.body)
	}
	// Nothing running: 409 no_transition.
	a = call(t, entrySrv, "POST", "/admin/abort", nil)
	if a.status != 409 || code(t, a) != httpapi.CodeNoTransition {
		t.Fatalf("abort with nothing running: %d %s", a.status, a.body)
	}

	// Alive to gossip but not answering: n1 aborts itself.
	silent := newAdminFake("n1", "n2")
	silent.members = []httpapi.Member{{ID: "n2", HTTPAddr: claimantSrv.Listener.Addr().String(), Status: "alive"}}
	claimantSrv.Close()
	a = call(t, serve(t, silent, httpapi.Options{}), "POST", "/admin/abort", nil)
	if err := json.Unmarshal(a.body, &body); err != nil || a.status != 200 || body.Node != "n1" || silent.aborts != 1 {
		t.Fatalf("abort with the claimant silent: %d %s", a.status, a.body)
	}
}

func code(t *testing.T, a answer) string {
	t.Helper()
	var e struct{ Code string }
	if err := json.Unmarshal(a.body, &e); err != nil {
		t.Fatalf("error body %s: %v", a.body, err)
	}
	return e.Code
}

// With certificates the claimant serves HTTPS and requires role admin: a
// node forwards the abort with its own certificate (Options.PeerTLS).
func TestAbortForwardsOverTLS(t *testing.T) {
	dir := t.TempDir()
	if err := security.CreateCA(dir, time.Hour, false); err != nil {
		t.Fatal(err)
	}
	if err := security.CreateNode(dir, []string{"127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	certs, err := security.LoadNodeCerts(dir)
	if err != nil {
		t.Fatal(err)
	}
	claimant := newAdminFake("n2", "n2")
	h := httpapi.WithAuth(httpapi.New(claimant, httpapi.Options{}), func(r *http.Request) (string, bool) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			return "", false
		}
		role := security.RoleOf(r.TLS.VerifiedChains[0][0])
		return role, role != ""
	})
	claimantSrv := httptest.NewUnstartedServer(h)
	claimantSrv.TLS = certs.HTTPServerConfig()
	claimantSrv.StartTLS()
	t.Cleanup(claimantSrv.Close)
	members := []httpapi.Member{{ID: "n2", HTTPAddr: claimantSrv.Listener.Addr().String(), Status: "alive"}}

	var body struct {
		Node ring.NodeID `json:"node"`
	}
	// The control: plain HTTP does not reach the claimant's handler (Go's
	// TLS server answers it 400 itself).
	plain := newAdminFake("n1", "n2")
	plain.members = members
	if a := call(t, serve(t, plain, httpapi.Options{}), "POST", "/admin/abort", nil); claimant.aborts != 0 || a.status == 200 {
		t.Fatalf("abort forwarded over plain HTTP: %d %s, claimant aborts %d", a.status, a.body, claimant.aborts)
	}
	withTLS := newAdminFake("n1", "n2")
	withTLS.members = members
	a := call(t, serve(t, withTLS, httpapi.Options{PeerTLS: certs.PeerClientConfig}), "POST", "/admin/abort", nil)
	if err := json.Unmarshal(a.body, &body); err != nil || a.status != 200 || body.Node != "n2" || claimant.aborts != 1 || withTLS.aborts != 0 {
		t.Fatalf("abort forwarded with the node certificate: %d %s, claimant aborts %d; want it run on n2", a.status, a.body, claimant.aborts)
	}
}
