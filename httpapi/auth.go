package httpapi

import (
	"net/http"
	"strings"
)

// Roles, in increasing power: each includes the ones before it.
var roleRank = map[string]int{"read": 1, "write": 2, "admin": 3}

// RequiredRole is the role a request needs: admin for /admin/* (which
// includes fault injection, process control and membership changes),
// write for any other method that changes data, read otherwise.
func RequiredRole(r *http.Request) string {
	if r.URL.Path == "/admin" || strings.HasPrefix(r.URL.Path, "/admin/") || strings.HasPrefix(r.URL.Path, "/debug/") {
		return "admin"
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return "read"
	}
	return "write"
}

// openPaths answer without credentials: orchestrators' probes carry none.
var openPaths = map[string]bool{"/healthz": true, "/readyz": true}

// WithAuth lets a request through only if identify finds its caller's
// role (from a bearer token or a client certificate) and the role is at
// least the one the request needs; otherwise 401 (no or unknown
// credentials) or 403 (role too weak), as JSON errors.
func WithAuth(h http.Handler, identify func(*http.Request) (role string, ok bool)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if openPaths[r.URL.Path] {
			h.ServeHTTP(w, r)
			return
		}
		role, ok := identify(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="dynago"`)
			writeAuthError(w, http.StatusUnauthorized, "unauthenticated", "a bearer token or client certificate is required")
			return
		}
		need := RequiredRole(r)
		if !RoleAllows(role, need) {
			writeAuthError(w, http.StatusForbidden, "forbidden", "role "+role+" may not do this; it needs "+need)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func writeAuthError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"error":"` + msg + `","code":"` + code + `"}` + "\n"))
}
