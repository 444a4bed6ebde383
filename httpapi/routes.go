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

// endpoint is one method of a resource.
type endpoint struct {
	method string
	h      http.Handler
}

// resource dispatches on the request method, answering a method it does
// not serve with a JSON 405 (through wrap, for metrics) rather than
// ServeMux's text/plain one. GET endpoints serve HEAD too.
func resource(wrap func(http.HandlerFunc) http.Handler, endpoints ...endpoint) http.Handler {
	byMethod := make(map[string]http.Handler)
	var allow []string
	for _, e := range endpoints {
		byMethod[e.method] = e.h
		allow = append(allow, e.method)
		if e.method == http.MethodGet {
			byMethod[http.MethodHead] = e.h
			allow = append(allow, http.MethodHead)
		}
	}
	notAllowed := methodNotAllowed(wrap, allow)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := byMethod[r.Method]; ok {
			h.ServeHTTP(w, r)
			return
		}
		notAllowed.ServeHTTP(w, r)
	})
}

// keyEndpoint is one method of a keyResource.
type keyEndpoint struct {
	method string
	h      keyHandler
}

// keyResource is resource for keyHandlers.
func keyResource(wrap func(http.HandlerFunc) http.Handler, endpoints ...keyEndpoint) keyHandler {
	byMethod := make(map[string]keyHandler)
	var allow []string
	for _, e := range endpoints {
		byMethod[e.method] = e.h
		allow = append(allow, e.method)
		if e.method == http.MethodGet {
			byMethod[http.MethodHead] = e.h
			allow = append(allow, http.MethodHead)
		}
	}
	notAllowed := methodNotAllowed(wrap, allow)
	return func(w http.ResponseWriter, r *http.Request, key string) {
		if h, ok := byMethod[r.Method]; ok {
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
