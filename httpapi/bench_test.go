package httpapi_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/httpapi/httpapitest"
	"github.com/dynago/dynago/node"
)

// BenchmarkHandler measures the HTTP layer alone: a GET and a PUT of a
// 100-byte value through httpapi.New in front of the in-memory backend,
// without a network or a cluster, so that the handler's own CPU and
// allocations per request (routing, metrics, headers, the body) show
// apart from the rest of the request path (issue #11). The request and
// recorder it builds per iteration are part of the figure and the same
// on both sides of a comparison.
func BenchmarkHandler(b *testing.B) {
	be := &cannedBackend{Backend: httpapitest.New()}
	h := httpapi.New(be, httpapi.Options{})
	value := bytes.Repeat([]byte("v"), 100)
	put := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPut, "/kv/bench-key", bytes.NewReader(value))
		h.ServeHTTP(w, r)
		return w
	}
	// From here on every request gets the answer the in-memory backend
	// gave to the first of its kind: the backend's own bookkeeping (it
	// keeps every request and every sibling) would otherwise dominate.
	be.put = be.Do(b.Context(), node.Request{Op: node.OpPut, Key: []byte("bench-key"), Value: value})
	be.get = be.Do(b.Context(), node.Request{Op: node.OpGet, Key: []byte("bench-key")})
	be.canned = true
	b.Run("get", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/kv/bench-key", nil))
			if w.Code != http.StatusOK {
				b.Fatalf("get: %d %s", w.Code, w.Body)
			}
		}
	})
	// get_json is the Go client's read (dynago bench's): Accept:
	// application/json, answered with the {"key","context","siblings"} body.
	b.Run("get_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodGet, "/kv/bench-key", nil)
			r.Header.Set("Accept", "application/json")
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("get: %d %s", w.Code, w.Body)
			}
		}
	})
	b.Run("put", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if w := put(); w.Code != http.StatusNoContent {
				b.Fatalf("put: %d %s", w.Code, w.Body)
			}
		}
	})
}

// cannedBackend answers every get and put with the reply it holds once
// canned is set.
type cannedBackend struct {
	*httpapitest.Backend
	canned   bool
	get, put node.Reply
}

func (c *cannedBackend) Do(ctx context.Context, req node.Request) node.Reply {
	if !c.canned {
		return c.Backend.Do(ctx, req)
	}
	if req.Op == node.OpGet {
		return c.get
	}
	return c.put
}
