package httpapi_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"testing"

	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/httpapi/httpapitest"
	"github.com/dynago/dynago/ring"
)

func TestRing(t *testing.T) {
	srv, b := server(t, httpapi.Options{})
	b.SetStatus("n2", "dead")
	a := call(t, srv, "GET", "/ring", nil)
	if a.status != http.StatusOK {
		t.Fatalf("ring = %d %s", a.status, a.body)
	}
	if got := fields(t, a); !slices.Equal(got, []string{"hash", "n", "nodes", "owners", "partitions", "version"}) {
		t.Fatalf("fields = %v", got)
	}
	var body struct {
		Version    uint64        `json:"version"`
		Partitions int           `json:"partitions"`
		N          int           `json:"n"`
		Hash       string        `json:"hash"`
		Owners     []ring.NodeID `json:"owners"`
		Nodes      []struct {
			ID       ring.NodeID `json:"id"`
			HTTPAddr string      `json:"http_addr"`
			Status   string      `json:"status"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(a.body, &body); err != nil {
		t.Fatal(err)
	}
	rg := b.Ring()
	if body.Version != rg.Version() || body.Partitions != httpapitest.Partitions || body.N != httpapitest.N ||
		body.Hash != "xxhash64" || !slices.Equal(body.Owners, rg.Owners()) || len(body.Nodes) != 4 {
		t.Fatalf("ring = %s", a.body)
	}
	for i, n := range body.Nodes {
		want := "alive"
		if n.ID == "n2" {
			want = "dead"
		}
		if n.ID != ring.NodeID("n"+strconv.Itoa(i+1)) || n.HTTPAddr != "127.0.0.1:"+strconv.Itoa(9101+i) || n.Status != want {
			t.Errorf("node %d = %+v", i, n)
		}
	}
	// What a client rebuilds from the answer must place keys exactly as
	// the node does.
	rebuilt, err := ring.FromOwners(ring.Config{Partitions: body.Partitions, N: body.N}, body.Version, body.Owners)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "cart:alice", "x/y", ""} {
		p := rg.PartitionOf([]byte(k))
		if rebuilt.PartitionOf([]byte(k)) != p || !slices.Equal(rebuilt.PreferenceList(p), rg.PreferenceList(p)) {
			t.Errorf("key %q placed differently by the rebuilt ring", k)
		}
	}
	if len(b.Requests()) != 0 {
		t.Fatal("/ring went through Do; it must only read the ring")
	}
	if a := call(t, srv, "POST", "/ring", nil); a.status != http.StatusMethodNotAllowed {
		t.Errorf("POST /ring = %d %s", a.status, a.body)
	}
}

// noRing is a node that has not joined a cluster yet.
type noRing struct{ *httpapitest.Backend }

func (noRing) Ring() *ring.Ring { return nil }

func TestRingBeforeJoin(t *testing.T) {
	srv := serve(t, noRing{httpapitest.New()}, httpapi.Options{})
	a := call(t, srv, "GET", "/ring", nil)
	wantError(t, a, http.StatusServiceUnavailable, httpapi.CodeNoRing)
	a = call(t, srv, "GET", "/kv/k/placement", nil)
	if h := a.header.Get(httpapi.RingVersionHeader); h != "" {
		t.Errorf("%s = %q without a ring", httpapi.RingVersionHeader, h)
	}
}

func TestRingVersionHeaderOnEveryKVAnswer(t *testing.T) {
	srv, _ := server(t, httpapi.Options{})
	for _, r := range []struct{ method, path string }{
		{"PUT", "/kv/k"},
		{"GET", "/kv/k"},
		{"GET", "/kv/missing"},
		{"DELETE", "/kv/k"},
		{"GET", "/kv/k/placement"},
		{"GET", "/kv/a/b"},   // bad key
		{"PATCH", "/kv/k"},   // method not allowed
		{"GET", "/kv/k?r=x"}, // bad parameter
	} {
		var body []byte
		if r.method == "PUT" {
			body = []byte("v")
		}
		a := call(t, srv, r.method, r.path, body)
		if got := a.header.Get(httpapi.RingVersionHeader); got != "1" {
			t.Errorf("%s %s (%d): %s = %q, want 1", r.method, r.path, a.status, httpapi.RingVersionHeader, got)
		}
	}
	if a := call(t, srv, "GET", "/cluster", nil); a.header.Get(httpapi.RingVersionHeader) != "" {
		t.Errorf("/cluster carries %s; only /kv/ answers do", httpapi.RingVersionHeader)
	}
}
