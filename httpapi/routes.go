package httpapi

import (
	"net/http"
	"net/url"
	"path"
	"strings"
)

// keyHandler serves a request about one key, taken from the path by
// keyRouter and percent-decoded.
type keyHandler func(w http.ResponseWriter, r *http.Request, key string)

// keyRouter serves the paths prefix{key} and prefix{key}/{sub}: it takes
// the key from the escaped path and hands it to root (prefix{key}) or, set
// as path value "key", to subs[sub]. Anything else under prefix (an
// unescaped '/' in a key, a trailing slash) goes to bad.
//
// ServeMux's own {key} wildcard is not used because it cannot match the
// key "/": it takes a segment that unescapes to "/" (%2F) for a trailing
// slash. root gets the key as an argument rather than as a path value:
// SetPathValue allocates a map per request, on the /kv/ path a tenth of
// the handler's allocations (BenchmarkHandler).
func keyRouter(prefix string, bad http.Handler, root keyHandler, subs map[string]http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seg, sub, found := strings.Cut(strings.TrimPrefix(r.URL.EscapedPath(), prefix), "/")
		key, err := url.PathUnescape(seg)
		if err != nil || (found && sub == "") {
			bad.ServeHTTP(w, r)
			return
		}
		if !found {
			root(w, r, key)
			return
		}
		h, ok := subs[sub]
		if !ok {
			bad.ServeHTTP(w, r)
			return
		}
		r.SetPathValue("key", key)
		h.ServeHTTP(w, r)
	})
}

// pathValueKey adapts a handler that reads the key as path value "key"
// (a.key) to keyRouter's root.
func pathValueKey(h http.Handler) keyHandler {
	return func(w http.ResponseWriter, r *http.Request, key string) {
		r.SetPathValue("key", key)
		h.ServeHTTP(w, r)
	}
}

// kvFirst sends requests for /kv/... straight to kv, and everything else
// to mux, which also routes /kv/ to kv. ServeMux's matching (a tree walk,
// its path cleaning and matches slice) was a twentieth of a get's CPU and
// three of its allocations. The shortcut is taken only where ServeMux
// would have chosen kv with the request unchanged: a clean escaped path
// (ServeMux redirects others to their cleaned form), not CONNECT (which
// ServeMux matches uncleaned, with the host's port), and never the
// request-target "*" (whose path does not start with /kv/).
func kvFirst(kv http.Handler, mux *http.ServeMux) http.Handler {
	const prefix = "/kv/"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.EscapedPath(); strings.HasPrefix(p, prefix) && r.Method != http.MethodConnect && cleanPath(p) == p {
			r.Pattern = prefix // as ServeMux sets it
			kv.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// cleanPath is net/http's (unexported) cleanPath: path.Clean keeping a
// trailing slash. path.Clean does not allocate when p is already clean.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		if len(p) == len(np)+1 && strings.HasPrefix(p, np) {
			np = p
		} else {
			np += "/"
		}
	}
	return np
}

// methodEndpoint is one method of a resource, served by an H.
type methodEndpoint[H any] struct {
	method string
	h      H
}

// endpoint is one method of a resource.
type endpoint = methodEndpoint[http.Handler]

// keyEndpoint is one method of a keyResource.
type keyEndpoint = methodEndpoint[keyHandler]

// byMethod indexes endpoints by method, GET serving HEAD too, and lists
// the methods allowed (for a 405's Allow header).
func byMethod[H any](endpoints []methodEndpoint[H]) (map[string]H, []string) {
	m := make(map[string]H)
	var allow []string
	for _, e := range endpoints {
		m[e.method] = e.h
		allow = append(allow, e.method)
		if e.method == http.MethodGet {
			m[http.MethodHead] = e.h
			allow = append(allow, http.MethodHead)
		}
	}
	return m, allow
}

// resource dispatches on the request method, answering a method it does
// not serve with a JSON 405 (through wrap, for metrics) rather than
// ServeMux's text/plain one. GET endpoints serve HEAD too.
func resource(wrap func(http.HandlerFunc) http.Handler, endpoints ...endpoint) http.Handler {
	handlers, allow := byMethod(endpoints)
	notAllowed := methodNotAllowed(wrap, allow)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := handlers[r.Method]; ok {
			h.ServeHTTP(w, r)
			return
		}
		notAllowed.ServeHTTP(w, r)
	})
}

// keyResource is resource for keyHandlers.
func keyResource(wrap func(http.HandlerFunc) http.Handler, endpoints ...keyEndpoint) keyHandler {
	handlers, allow := byMethod(endpoints)
	notAllowed := methodNotAllowed(wrap, allow)
	return func(w http.ResponseWriter, r *http.Request, key string) {
		if h, ok := handlers[r.Method]; ok {
			h(w, r, key)
			return
		}
		notAllowed.ServeHTTP(w, r)
	}
}

func methodNotAllowed(wrap func(http.HandlerFunc) http.Handler, allow []string) http.Handler {
	return wrap(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, &apiError{http.StatusMethodNotAllowed, CodeMethodNotAllowed, r.Method + " is not allowed here"})
	})
}
