package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestKVFirstRoutesAsServeMux checks that kvFirst's shortcut picks the
// handler ServeMux picks, with the same redirects, for paths that are
// unclean, escaped, or near the /kv/ prefix.
func TestKVFirstRoutesAsServeMux(t *testing.T) {
	mark := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Handler", name)
			w.Header().Set("X-Pattern", r.Pattern)
			w.Header().Set("X-Path", r.URL.EscapedPath())
		})
	}
	kv := mark("kv")
	mux := http.NewServeMux()
	mux.Handle("/kv/", kv)
	mux.Handle("/admin/local/", mark("local"))
	mux.Handle("/", mark("other"))
	fast := kvFirst(kv, mux)
	paths := []string{
		"/kv/a", "/kv/", "/kv", "/kv//", "/kv//a", "/kv/a/", "/kv/a//b", "/kv/./a", "/kv/a/.", "/kv/a/..",
		"/kv/../a", "/kv/..", "/kv/.", "/kv/%2E%2E", "/kv/%2E", "/kv/a%2Fb", "/kv/a%2F", "/kv/%2F",
		"/kv/a/placement", "/kv/a/placement/", "/kv/a%20b", "/kv/a+b", "/kv/%E2%82%AC", "/kv/a?w=2",
		"/kv/a/b/c", "/kvx", "/kv%2Fa", "/KV/a", "/cluster", "/", "/admin/local/a", "/kv/a%2e%2e",
		"/kv/...", "/kv/a.", "/kv/.a",
	}
	for _, p := range paths {
		for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodConnect, "BREW"} {
			want := httptest.NewRecorder()
			r := httptest.NewRequest(method, "http://example.com"+p, nil)
			mux.ServeHTTP(want, r)
			got := httptest.NewRecorder()
			r = httptest.NewRequest(method, "http://example.com"+p, nil)
			fast.ServeHTTP(got, r)
			for _, h := range []string{"X-Handler", "X-Pattern", "X-Path", "Location"} {
				if g, w := got.Header().Get(h), want.Header().Get(h); g != w {
					t.Errorf("%s %s: %s = %q, ServeMux gives %q", method, p, h, g, w)
				}
			}
			if got.Code != want.Code {
				t.Errorf("%s %s: status %d, ServeMux gives %d", method, p, got.Code, want.Code)
			}
		}
	}
	// The request-target "*" (OPTIONS *) is ServeMux's 400.
	got := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodOptions, "*", nil)
	fast.ServeHTTP(got, r)
	if got.Code != http.StatusBadRequest {
		t.Errorf("OPTIONS *: %d, want 400", got.Code)
	}
}
