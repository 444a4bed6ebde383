package client_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynago/dynago/client"
	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/httpapi/httpapitest"
	"github.com/dynago/dynago/internal/testutil"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

// fakeCluster is three in-process nodes n1..n3 whose HTTP APIs share one
// ring and one member list advertising the nodes' real test addresses, so
// that a routing client can reach each node directly. Each node stores
// what it is sent (an httpapitest.Backend); none forwards.
type fakeCluster struct {
	ring    atomic.Pointer[ring.Ring]
	mu      sync.Mutex
	members []httpapi.Member
	nodes   map[ring.NodeID]*fakeNode
}

type fakeNode struct {
	id      ring.NodeID
	addr    string // host:port
	srv     *httptest.Server
	backend *httpapitest.Backend

	mu   sync.Mutex
	hits map[string]int // "PUT /kv/" etc.: requests that reached this node
}

func (n *fakeNode) count(what string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hits[what]
}

// member is the httpapi.Backend of one node: the shared ring and members,
// its own ID and storage.
type member struct {
	*httpapitest.Backend
	id ring.NodeID
	cl *fakeCluster
}

func (m member) NodeID() ring.NodeID { return m.id }
func (m member) Ring() *ring.Ring    { return m.cl.ring.Load() }
func (m member) Members() []httpapi.Member {
	m.cl.mu.Lock()
	defer m.cl.mu.Unlock()
	return slices.Clone(m.cl.members)
}

var fakeIDs = []ring.NodeID{"n1", "n2", "n3"}

// fakeRingConfig gives every key a preference list of two nodes and one
// fallback.
var fakeRingConfig = ring.Config{Partitions: 8, N: 2}

func startCluster(t *testing.T) *fakeCluster {
	t.Helper()
	cl := &fakeCluster{nodes: make(map[ring.NodeID]*fakeNode)}
	rg, err := ring.New(fakeRingConfig, fakeIDs)
	if err != nil {
		t.Fatal(err)
	}
	cl.ring.Store(rg)
	for _, id := range fakeIDs {
		n := &fakeNode{id: id, backend: httpapitest.New(), hits: make(map[string]int)}
		api := httpapi.New(member{Backend: n.backend, id: id, cl: cl}, httpapi.Options{})
		n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			what := r.Method + " " + r.URL.Path
			if strings.HasPrefix(r.URL.Path, "/kv/") {
				what = r.Method + " /kv/"
			}
			n.mu.Lock()
			n.hits[what]++
			n.mu.Unlock()
			api.ServeHTTP(w, r)
		}))
		t.Cleanup(n.srv.Close)
		n.addr = n.srv.Listener.Addr().String()
		cl.nodes[id] = n
		cl.members = append(cl.members, httpapi.Member{ID: id, HTTPAddr: n.addr, Status: "alive"})
	}
	return cl
}

func (cl *fakeCluster) addrs() []string {
	var out []string
	for _, id := range fakeIDs {
		out = append(out, cl.nodes[id].addr)
	}
	return out
}

// preferenceList returns the nodes of key's preference list under the
// cluster's current ring.
func (cl *fakeCluster) preferenceList(key string) []*fakeNode {
	rg := cl.ring.Load()
	var out []*fakeNode
	for _, id := range rg.PreferenceList(rg.PartitionOf([]byte(key))) {
		out = append(out, cl.nodes[id])
	}
	return out
}

func (cl *fakeCluster) total(what string) int {
	sum := 0
	for _, n := range cl.nodes {
		sum += n.count(what)
	}
	return sum
}

// putRequests counts the puts that reached any node's backend.
func (cl *fakeCluster) putRequests() int {
	sum := 0
	for _, n := range cl.nodes {
		for _, r := range n.backend.Requests() {
			if r.Op == node.OpPut {
				sum++
			}
		}
	}
	return sum
}

func TestRoutingSendsRequestsToTheFirstPreferenceListNode(t *testing.T) {
	cl := startCluster(t)
	c := newClient(t, cl.addrs(), client.WithRouting())
	ctx := testContext(t)
	if got := cl.total("GET /ring"); got != 0 {
		t.Fatalf("/ring fetched %d times before any request; routing must be lazy", got)
	}
	firsts := map[ring.NodeID]bool{}
	for i := range 40 {
		key := fmt.Sprintf("key-%d", i)
		first := cl.preferenceList(key)[0]
		firsts[first.id] = true
		putsBefore, getsBefore := first.count("PUT /kv/"), first.count("GET /kv/")
		if _, err := c.Put(ctx, key, []byte("v"), nil); err != nil {
			t.Fatal(err)
		}
		// The node that took the put holds the value: it was not forwarded.
		v, err := c.Get(ctx, key, nil)
		if err != nil || !slices.Equal(values(v), []string{"v"}) {
			t.Fatalf("Get(%s) = %+v, %v", key, v, err)
		}
		if first.count("PUT /kv/") != putsBefore+1 || first.count("GET /kv/") != getsBefore+1 {
			t.Fatalf("%s: the put and get did not both go to %s, the first of its preference list", key, first.id)
		}
		if got, err := c.RouteOf(key); err != nil || got != first.addr {
			t.Fatalf("RouteOf(%s) = %q, %v; want %s (%s)", key, got, err, first.addr, first.id)
		}
	}
	if len(firsts) != len(fakeIDs) {
		t.Fatalf("only %v came first in the keys' preference lists; the test needs keys over every node", firsts)
	}
	if got := cl.total("PUT /kv/") + cl.total("GET /kv/"); got != 80 {
		t.Errorf("nodes saw %d key requests, want 80: requests were repeated", got)
	}
	if got := cl.total("GET /ring"); got != 1 {
		t.Errorf("/ring fetched %d times, want once", got)
	}
}

func TestRoutingRefreshesTheRingWhenItsVersionChanges(t *testing.T) {
	cl := startCluster(t)
	c := newClient(t, cl.addrs(), client.WithRouting())
	ctx := testContext(t)
	const key = "cart:alice"
	before := cl.preferenceList(key)[0]
	if got, err := c.RouteOf(key); err != nil || got != before.addr {
		t.Fatalf("RouteOf = %q, %v; want %s", got, err, before.addr)
	}

	// Version 2 hands every partition to the next node, so every key's
	// first preference-list node changes.
	old := cl.ring.Load()
	owners := old.Owners()
	next := map[ring.NodeID]ring.NodeID{"n1": "n2", "n2": "n3", "n3": "n1"}
	for i, o := range owners {
		owners[i] = next[o]
	}
	rg, err := ring.FromOwners(fakeRingConfig, old.Version()+1, owners)
	if err != nil {
		t.Fatal(err)
	}
	cl.ring.Store(rg)
	after := cl.preferenceList(key)[0]
	if after == before {
		t.Fatal("the new ring must move the key's coordinator")
	}

	// Concurrent requests all see the new version; one refresh follows.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := c.Put(ctx, fmt.Sprintf("other-%d", i), []byte("v"), nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	testutil.EventuallyNil(t, 5*time.Second, func() error {
		got, err := c.RouteOf(key)
		if err != nil {
			t.Fatal(err)
		}
		if got != after.addr {
			return fmt.Errorf("RouteOf = %s after a ring version bump, want %s (%s)", got, after.addr, after.id)
		}
		return nil
	})
	if got := cl.total("GET /ring"); got != 2 {
		t.Errorf("/ring fetched %d times, want 2 (the first fetch and one refresh)", got)
	}
	puts := after.count("PUT /kv/")
	if _, err := c.Put(ctx, key, []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	if after.count("PUT /kv/") != puts+1 {
		t.Errorf("the put did not go to %s, the new coordinator", after.id)
	}
}

func TestRoutingFailsOverWithoutRepeatingWrites(t *testing.T) {
	cl := startCluster(t)
	c := newClient(t, cl.addrs(), client.WithRouting())
	ctx := testContext(t)
	const key = "cart:bob"
	pl := cl.preferenceList(key)
	first, second := pl[0], pl[1]
	if _, err := c.RouteOf(key); err != nil { // fetch the ring while every node is up
		t.Fatal(err)
	}
	first.srv.Close()

	if _, err := c.Put(ctx, key, []byte("milk"), nil); err != nil {
		t.Fatalf("Put with the coordinator down = %v", err)
	}
	if got := second.count("PUT /kv/"); got != 1 {
		t.Errorf("%s, second in the preference list, took %d puts, want 1", second.id, got)
	}
	if got := cl.putRequests(); got != 1 {
		t.Errorf("the put reached backends %d times, want exactly once", got)
	}
	// The dead node is passed over from now on: no failed attempt first.
	if got, err := c.RouteOf(key); err != nil || got != second.addr {
		t.Errorf("RouteOf after the failure = %q, %v; want %s", got, err, second.addr)
	}
	v, err := c.Get(ctx, key, nil)
	if err != nil || !slices.Equal(values(v), []string{"milk"}) {
		t.Fatalf("Get = %+v, %v", v, err)
	}
	if got := second.count("GET /kv/"); got != 1 {
		t.Errorf("%s took %d gets, want 1", second.id, got)
	}
}

func TestRoutingPassesOverNodesTheRingReportsDead(t *testing.T) {
	cl := startCluster(t)
	const key = "cart:carol"
	pl := cl.preferenceList(key)
	cl.mu.Lock()
	for i := range cl.members {
		if cl.members[i].ID == pl[0].id {
			cl.members[i].Status = "dead"
		}
	}
	cl.mu.Unlock()
	c := newClient(t, cl.addrs(), client.WithRouting())
	if got, err := c.RouteOf(key); err != nil || got != pl[1].addr {
		t.Fatalf("RouteOf = %q, %v; want %s: %s is dead", got, err, pl[1].addr, pl[0].id)
	}
}

// noRingMember is a node older than /ring, or not joined: /ring answers
// 503, keys are served as usual.
type noRingMember struct{ *httpapitest.Backend }

func (noRingMember) Ring() *ring.Ring { return nil }

func TestRoutingWithoutARingRotatesOverTheAddresses(t *testing.T) {
	var addrs []string
	var backends []*httpapitest.Backend
	for range 2 {
		b := httpapitest.New()
		srv := httptest.NewServer(httpapi.New(noRingMember{b}, httpapi.Options{}))
		t.Cleanup(srv.Close)
		addrs, backends = append(addrs, srv.Listener.Addr().String()), append(backends, b)
	}
	c := newClient(t, addrs, client.WithRouting())
	ctx := testContext(t)
	for i := range 4 {
		if _, err := c.Put(ctx, fmt.Sprintf("k%d", i), []byte("v"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if len(backends[0].Requests()) != 2 || len(backends[1].Requests()) != 2 {
		t.Errorf("requests per node = %d, %d; want 2, 2 (rotation)", len(backends[0].Requests()), len(backends[1].Requests()))
	}
	if _, err := c.RouteOf("k"); !errors.Is(err, client.ErrNoRoute) {
		t.Errorf("RouteOf without a ring = %v, want ErrNoRoute", err)
	}
}

func TestWithoutRoutingRequestsRotate(t *testing.T) {
	cl := startCluster(t)
	c := newClient(t, cl.addrs())
	ctx := testContext(t)
	for i, id := range append(slices.Clone(fakeIDs), fakeIDs...) {
		if got, err := c.RouteOf("k"); err != nil || got != cl.nodes[id].addr {
			t.Fatalf("request %d: RouteOf = %q, %v; want %s", i, got, err, cl.nodes[id].addr)
		}
		before := cl.nodes[id].count("PUT /kv/")
		if _, err := c.Put(ctx, "k", []byte("v"), nil); err != nil {
			t.Fatal(err)
		}
		if cl.nodes[id].count("PUT /kv/") != before+1 {
			t.Fatalf("request %d did not go to %s, next in rotation", i, id)
		}
	}
	if got := cl.total("GET /ring"); got != 0 {
		t.Errorf("/ring fetched %d times without WithRouting", got)
	}
}
