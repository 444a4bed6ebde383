package httpapi

import (
	"net/http"
	"net/url"
	"strings"
)

// keyRouter serves the paths prefix{key} and prefix{key}/{sub}: it takes
// the key from the escaped path, sets it as path value "key" and hands the
// request to routes[sub] (routes[""] for prefix{key}). Anything else under
// prefix (an unescaped '/' in a key, a trailing slash) goes to bad.
//
// ServeMux's own {key} wildcard is not used because it cannot match the
// key "/": it takes a segment that unescapes to "/" (%2F) for a trailing
// slash.
func keyRouter(prefix string, bad http.Handler, routes map[string]http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seg, sub, found := strings.Cut(strings.TrimPrefix(r.URL.EscapedPath(), prefix), "/")
		h, ok := routes[sub]
		key, err := url.PathUnescape(seg)
		if !ok || (found && sub == "") || err != nil {
			bad.ServeHTTP(w, r)
			return
		}
		r.SetPathValue("key", key)
		h.ServeHTTP(w, r)
	})
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
	notAllowed := wrap(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, &apiError{http.StatusMethodNotAllowed, CodeMethodNotAllowed, r.Method + " is not allowed here"})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := byMethod[r.Method]; ok {
			h.ServeHTTP(w, r)
			return
		}
		notAllowed.ServeHTTP(w, r)
	})
}
