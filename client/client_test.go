package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
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
	"github.com/dynago/dynago/node"
)

// node starts the real HTTP API over a fake backend on 127.0.0.1.
func startNode(t *testing.T) (addr string, b *httpapitest.Backend) {
	t.Helper()
	b = httpapitest.New()
	return httpapitest.Serve(t, b, 1)[0], b
}

func newClient(t *testing.T, addrs []string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(addrs, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func values(v client.Value) []string {
	var out []string
	for _, s := range v.Siblings {
		out = append(out, string(s))
	}
	slices.Sort(out)
	return out
}

func TestPutGetDelete(t *testing.T) {
	addr, _ := startNode(t)
	c := newClient(t, []string{addr})
	ctx := testContext(t)

	if _, err := c.Get(ctx, "cart", nil); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Get of a missing key = %v, want ErrNotFound", err)
	}

	pctx, err := c.Put(ctx, "cart", []byte("milk"), nil)
	if err != nil || len(pctx) == 0 {
		t.Fatalf("Put = %x, %v", pctx, err)
	}
	v, err := c.Get(ctx, "cart", nil)
	if err != nil || !slices.Equal(values(v), []string{"milk"}) || !bytes.Equal(v.Context, pctx) {
		t.Fatalf("Get = %+v, %v; want milk with the Put's context", v, err)
	}

	// A blind write is concurrent with milk: two siblings.
	if _, err := c.Put(ctx, "cart", []byte("eggs"), nil); err != nil {
		t.Fatal(err)
	}
	v, err = c.Get(ctx, "cart", nil)
	if err != nil || !slices.Equal(values(v), []string{"eggs", "milk"}) {
		t.Fatalf("Get after a blind write = %+v, %v; want two siblings", v, err)
	}

	// Writing with the context read resolves them.
	if _, err := c.Put(ctx, "cart", []byte("eggs,milk"), &client.PutOptions{Context: v.Context}); err != nil {
		t.Fatal(err)
	}
	v, err = c.Get(ctx, "cart", nil)
	if err != nil || !slices.Equal(values(v), []string{"eggs,milk"}) {
		t.Fatalf("Get after resolving = %+v, %v", v, err)
	}

	if err := c.Delete(ctx, "cart", &client.PutOptions{Context: v.Context}); err != nil {
		t.Fatal(err)
	}
	v, err = c.Get(ctx, "cart", nil)
	if !errors.Is(err, client.ErrNotFound) || len(v.Context) == 0 || len(v.Siblings) != 0 {
		t.Fatalf("Get after Delete = %+v, %v; want ErrNotFound with the tombstone's context", v, err)
	}
	// The tombstone's context supersedes the delete.
	if _, err := c.Put(ctx, "cart", []byte("bread"), &client.PutOptions{Context: v.Context}); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "cart", nil); err != nil || !slices.Equal(values(v), []string{"bread"}) {
		t.Fatalf("Get after re-put = %+v, %v", v, err)
	}
}

func TestNilAndEmptyValues(t *testing.T) {
	addr, _ := startNode(t)
	c := newClient(t, []string{addr})
	ctx := testContext(t)
	if _, err := c.Put(ctx, "k", nil, nil); err != nil {
		t.Fatal(err)
	}
	v, err := c.Get(ctx, "k", nil)
	if err != nil || len(v.Siblings) != 1 || len(v.Siblings[0]) != 0 {
		t.Fatalf("Get of an empty value = %+v, %v", v, err)
	}
}

func TestOptionsReachTheNode(t *testing.T) {
	addr, b := startNode(t)
	c := newClient(t, []string{addr})
	ctx := testContext(t)
	if _, err := c.Put(ctx, "k", []byte("v"), &client.PutOptions{W: 3, Timeout: 1500 * time.Microsecond}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "k", &client.GetOptions{R: 1, Timeout: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "k", &client.PutOptions{W: 1}); err != nil {
		t.Fatal(err)
	}
	reqs := b.Requests()
	if len(reqs) != 3 {
		t.Fatalf("node saw %d requests", len(reqs))
	}
	if reqs[0].W != 3 || reqs[0].Timeout != 2*time.Millisecond {
		t.Errorf("put request W=%d Timeout=%v, want 3 and 2ms (rounded up)", reqs[0].W, reqs[0].Timeout)
	}
	if reqs[1].R != 1 || reqs[1].Timeout != 2*time.Second {
		t.Errorf("get request R=%d Timeout=%v", reqs[1].R, reqs[1].Timeout)
	}
	if reqs[2].Op != node.OpDelete || reqs[2].W != 1 || reqs[2].Timeout != node.DefaultConfig().RequestTimeout {
		t.Errorf("delete request = %+v", reqs[2])
	}
}

func TestKeysAreEscaped(t *testing.T) {
	addr, b := startNode(t)
	c := newClient(t, []string{addr})
	ctx := testContext(t)
	for _, key := range []string{"a/b", ".", "..", "with space", "ü", "%zz", "?x#y", "a+b", "/"} {
		if _, err := c.Put(ctx, key, []byte(key), nil); err != nil {
			t.Fatalf("Put(%q): %v", key, err)
		}
		reqs := b.Requests()
		if got := string(reqs[len(reqs)-1].Key); got != key {
			t.Errorf("Put(%q) reached the node as key %q", key, got)
		}
		v, err := c.Get(ctx, key, nil)
		if err != nil || !slices.Equal(values(v), []string{key}) {
			t.Errorf("Get(%q) = %+v, %v", key, v, err)
		}
		p, err := c.Placement(ctx, key)
		if err != nil || p.Key != key {
			t.Errorf("Placement(%q) = %+v, %v", key, p, err)
		}
	}
}

func TestQuorumError(t *testing.T) {
	addr, b := startNode(t)
	c := newClient(t, []string{addr})
	ctx := testContext(t)
	fail := node.Reply{Code: node.CodeQuorumFailed, Acks: 1, Required: 2, Err: "timeout"}

	b.Fail(fail)
	_, err := c.Put(ctx, "k", []byte("v"), nil)
	var qe *client.QuorumError
	if !errors.As(err, &qe) || *qe != (client.QuorumError{Acks: 1, Required: 2, Op: "put"}) {
		t.Fatalf("Put = %v, want QuorumError 1/2 put", err)
	}
	if !strings.Contains(err.Error(), "may still be applied") {
		t.Errorf("put quorum error %q does not say the outcome is unknown", err)
	}

	b.Fail(fail)
	_, err = c.Get(ctx, "k", nil)
	if !errors.As(err, &qe) || *qe != (client.QuorumError{Acks: 1, Required: 2, Op: "get"}) {
		t.Fatalf("Get = %v, want QuorumError 1/2 get", err)
	}

	b.Fail(fail)
	err = c.Delete(ctx, "k", nil)
	if !errors.As(err, &qe) || qe.Op != "delete" {
		t.Fatalf("Delete = %v, want QuorumError delete", err)
	}
}

func TestAPIErrors(t *testing.T) {
	addr, b := startNode(t)
	c := newClient(t, []string{addr})
	ctx := testContext(t)
	var ae *client.APIError

	_, err := c.Put(ctx, "k", []byte("v"), &client.PutOptions{W: 4})
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != "bad_parameter" || ae.Message == "" {
		t.Fatalf("Put W=4 = %v, want APIError 400 bad_parameter", err)
	}
	_, err = c.Put(ctx, "k", []byte("v"), &client.PutOptions{Context: client.Context("forged")})
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != "bad_context" {
		t.Fatalf("Put with a forged context = %v, want APIError 400 bad_context", err)
	}
	_, err = c.Get(ctx, "", nil)
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != "bad_key" {
		t.Fatalf("Get of the empty key = %v, want APIError 400 bad_key", err)
	}
	b.Fail(node.Reply{Code: node.CodeUnavailable, Err: "no replica reachable"})
	_, err = c.Get(ctx, "k", nil)
	if !errors.As(err, &ae) || ae.Status != 503 || ae.Code != "unavailable" || errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Get when unavailable = %v, want APIError 503 unavailable", err)
	}
	// The W=4 put reaches the node, which checks quorums against N; the
	// others are refused by the HTTP layer.
	if reqs := b.Requests(); len(reqs) != 2 || reqs[0].W != 4 {
		t.Fatalf("node saw %+v, want the W=4 put and the last get", reqs)
	}
}

func TestNonAPIErrorAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "upstream exploded", http.StatusBadGateway)
	}))
	defer srv.Close()
	c := newClient(t, []string{srv.URL})
	_, err := c.Get(testContext(t), "k", nil)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 502 || ae.Code != "" || ae.Message != "upstream exploded" {
		t.Fatalf("Get via a broken proxy = %#v", err)
	}
	// A 404 that is not the API's is not ErrNotFound.
	srv404 := httptest.NewServer(http.NotFoundHandler())
	defer srv404.Close()
	_, err = newClient(t, []string{srv404.URL}).Get(testContext(t), "k", nil)
	if errors.Is(err, client.ErrNotFound) || !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("Get from a non-dynago 404 = %v", err)
	}
}

func TestPlacementAndCluster(t *testing.T) {
	addr, b := startNode(t)
	c := newClient(t, []string{addr})
	ctx := testContext(t)
	p, err := c.Placement(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	rg := b.Ring()
	part := rg.PartitionOf([]byte("k"))
	pref, fall := rg.PreferenceList(part), rg.Fallbacks(part)
	if p.Key != "k" || p.Partition != part || !slices.Equal(p.PreferenceList, pref) || !slices.Equal(p.Fallbacks, fall) {
		t.Fatalf("Placement = %+v", p)
	}

	b.SetStatus("n2", "dead")
	cl, err := c.Cluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Node != "n1" || cl.N != 3 || cl.R != 2 || cl.W != 2 || cl.Partitions != 8 || cl.RingVersion != 1 || len(cl.Nodes) != 4 {
		t.Fatalf("Cluster = %+v", cl)
	}
	if n := cl.Nodes[1]; n.ID != "n2" || n.Status != "dead" || n.HTTPAddr != "127.0.0.1:9102" || n.Partitions != rg.PartitionCounts()["n2"] {
		t.Fatalf("Cluster node n2 = %+v", n)
	}
}

// deadAddr returns a 127.0.0.1 address nobody listens on.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestRotationAndFailover(t *testing.T) {
	a1, b1 := startNode(t)
	a2, b2 := startNode(t)
	c := newClient(t, []string{a1, a2})
	ctx := testContext(t)
	for range 4 {
		if _, err := c.Get(ctx, "k", nil); !errors.Is(err, client.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if n1, n2 := len(b1.Requests()), len(b2.Requests()); n1 != 2 || n2 != 2 {
		t.Fatalf("4 gets reached the nodes %d and %d times, want 2 and 2", n1, n2)
	}

	// A node that cannot be reached is skipped by reads and writes alike:
	// the request never left, so sending it elsewhere is safe.
	c = newClient(t, []string{deadAddr(t), a1})
	for i := range 4 {
		if _, err := c.Put(ctx, "k", []byte("v"), nil); err != nil {
			t.Fatalf("put %d with one node down: %v", i, err)
		}
		if _, err := c.Get(ctx, "k", nil); err != nil {
			t.Fatalf("get %d with one node down: %v", i, err)
		}
	}

	c = newClient(t, []string{deadAddr(t)})
	if _, err := c.Get(ctx, "k", nil); err == nil {
		t.Fatal("Get with every node down succeeded")
	}
}

// hangUp accepts connections and closes them as soon as a request arrives:
// the request left, and its fate is unknown.
func hangUp(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				conn.Read(make([]byte, 1))
				conn.Close()
			}()
		}
	}()
	return l.Addr().String()
}

func TestWritesAreNotRepeatedAfterTheyLeft(t *testing.T) {
	bad := hangUp(t)
	good, b := startNode(t)
	// One client per attempt so that the hanging node is always tried first.
	put := func() error {
		_, err := newClient(t, []string{bad, good}).Put(testContext(t), "k", []byte("v"), nil)
		return err
	}
	if err := put(); err == nil {
		t.Fatal("Put whose connection dropped after sending succeeded")
	}
	if len(b.Requests()) != 0 {
		t.Fatal("a put that may have been applied was repeated at another node")
	}
	// Reads are repeated there.
	if _, err := newClient(t, []string{bad, good}).Get(testContext(t), "k", nil); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Get after a dropped connection = %v, want the second node's not found", err)
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c := newClient(t, []string{srv.URL}, client.WithTimeout(100*time.Millisecond))
	start := time.Now()
	_, err := c.Get(testContext(t), "k", nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get from a hanging node = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Get took %v with a 100ms timeout", d)
	}
}

func TestNew(t *testing.T) {
	if _, err := client.New(nil); !errors.Is(err, client.ErrNoAddress) {
		t.Errorf("New(nil) = %v", err)
	}
	for _, bad := range []string{"", "ftp://x:1", "http://", "http://x:1/?q=1", "::"} {
		if _, err := client.New([]string{bad}); !errors.Is(err, client.ErrBadAddress) {
			t.Errorf("New(%q) = %v, want ErrBadAddress", bad, err)
		}
	}

	// A URL with a path prefix, as for a node behind a proxy.
	b := httpapitest.New()
	mux := http.NewServeMux()
	mux.Handle("/dynago/", http.StripPrefix("/dynago", httpapi.New(b, httpapi.Options{})))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	hc := &http.Client{Timeout: 5 * time.Second}
	c := newClient(t, []string{srv.URL + "/dynago/"}, client.WithHTTPClient(hc))
	if _, err := c.Put(testContext(t), "a/b", []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	if got := string(b.Requests()[0].Key); got != "a/b" {
		t.Fatalf("key through a prefix = %q", got)
	}
}

func TestContextToken(t *testing.T) {
	addr, _ := startNode(t)
	c := newClient(t, []string{addr})
	pctx, err := c.Put(testContext(t), "k", []byte("v"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The token is the header form the API uses.
	if got, err := httpapi.DecodeContextHeader([]byte("k"), pctx.String()); err != nil || len(got) == 0 {
		t.Fatalf("API decodes the client token %q as %x, %v", pctx.String(), got, err)
	}
	back, err := client.ParseContext(pctx.String())
	if err != nil || !bytes.Equal(back, pctx) {
		t.Fatalf("ParseContext(String()) = %x, %v", back, err)
	}
	if got, err := client.ParseContext(""); got != nil || err != nil {
		t.Fatalf("ParseContext(\"\") = %x, %v", got, err)
	}
	if _, err := client.ParseContext("!!"); !errors.Is(err, client.ErrBadContext) {
		t.Fatalf("ParseContext(\"!!\") = %v", err)
	}
}

// A Client shared by many goroutines keeps its connections open: with
// net/http's default of two idle connections per host, most requests of 16
// goroutines would open (and close) a connection of their own.
func TestConcurrentClientReusesConnections(t *testing.T) {
	b := httpapitest.New()
	var opened atomic.Int64
	srv := httptest.NewUnstartedServer(httpapi.New(b, httpapi.Options{}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := newClient(t, []string{srv.Listener.Addr().String()})
	const workers, each = 16, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := c.Get(context.Background(), fmt.Sprintf("k%d-%d", w, i), nil); !errors.Is(err, client.ErrNotFound) {
					t.Errorf("Get: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := opened.Load(); n > 2*workers {
		t.Fatalf("%d requests from %d goroutines opened %d connections, want at most %d", workers*each, workers, n, 2*workers)
	}
}

// overloadedNode answers every request 503 overloaded, as a node past its
// --max-inflight does, and counts them.
func overloadedNode(t *testing.T) (string, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":"overloaded: this node already coordinates 4 client requests","code":"overloaded"}`))
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), &n
}

// TestShedRequestsGoToTheNextNode: a node that sheds a request did nothing
// with it, so writes as well as reads go on to the next node; when every
// node sheds it, the caller gets the overloaded error.
func TestShedRequestsGoToTheNextNode(t *testing.T) {
	busy, refused := overloadedNode(t)
	good, b := startNode(t)
	ctx := testContext(t)
	if _, err := newClient(t, []string{busy, good}).Put(ctx, "k", []byte("v"), nil); err != nil {
		t.Fatalf("Put with the first node overloaded: %v", err)
	}
	if _, err := newClient(t, []string{busy, good}).Get(ctx, "k", nil); err != nil {
		t.Fatalf("Get with the first node overloaded: %v", err)
	}
	if refused.Load() != 2 || len(b.Requests()) != 2 {
		t.Fatalf("the overloaded node saw %d requests and the other %d; want 2 and 2", refused.Load(), len(b.Requests()))
	}
	busy2, _ := overloadedNode(t)
	_, err := newClient(t, []string{busy, busy2}).Put(ctx, "k", []byte("v"), nil)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Code != "overloaded" || ae.Status != http.StatusServiceUnavailable {
		t.Fatalf("Put with every node overloaded: %v, want the overloaded APIError", err)
	}
}
