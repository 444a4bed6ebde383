package dashboard

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/dynago/dynago/api"
)

//go:embed static
var staticFS embed.FS

// NodePrefix is where a node mounts NodeHandler: the page is then at
// /dashboard/ and its API at /dashboard/api/.
const NodePrefix = "/dashboard"

// Sentinel errors. Controllers return ErrUnknownNode (wrapped) for a node
// ID they do not supervise, which the control API answers with 404.
var (
	ErrUnknownNode = errors.New("dashboard: unknown node")
	ErrCrossOrigin = errors.New("dashboard: cross-origin request refused")
)

// Peer is a node the dashboard can proxy to.
type Peer struct {
	ID       string
	HTTPAddr string // host:port of the node's HTTP API
}

// Config is the JSON answer of api/config: it tells the page how it is
// hosted, so it hides controls the hosting cannot serve.
type Config struct {
	Mode    string   `json:"mode"`    // "dev" or "node"
	Control bool     `json:"control"` // kill/restart/wipe/add available
	Bench   bool     `json:"bench"`   // api/bench runs presets
	Self    string   `json:"self,omitempty"`
	Nodes   []string `json:"nodes"`
}

// contentTypes is fixed rather than taken from mime.TypeByExtension, which
// consults the machine's mime.types: a page whose module script is served
// as text/plain refuses to run, so this must not depend on the host.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// staticHandler serves the embedded page; "/" is index.html.
func staticHandler() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		// The embed pattern guarantees the directory exists.
		panic(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "only GET and HEAD")
			return
		}
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if name == "" {
			name = "index.html"
		}
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			writeError(w, http.StatusNotFound, "not_found", "no such file")
			return
		}
		b, err := fs.ReadFile(sub, name)
		if err != nil {
			writeError(w, http.StatusNotFound, "not_found", "no such file")
			return
		}
		h := w.Header()
		h.Set("Content-Type", ct)
		// The files change only with the binary; no-cache makes a browser
		// revalidate so a rebuilt binary's page is never mixed with old
		// cached modules.
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
	})
}

// newProxy returns the reverse proxy for api/node/{id}/...: it forwards
// to the node resolve names, keeping the rest of the path (still
// percent-encoded, since keys may contain '/') and the query.
func newProxy(transport http.RoundTripper, resolve func(id string) (string, bool)) http.Handler {
	rp := &httputil.ReverseProxy{
		Transport: transport,
		// -1 flushes after every write: /events is Server-Sent Events and
		// must reach the browser as each event is written.
		FlushInterval: -1,
		Rewrite: func(pr *httputil.ProxyRequest) {
			target := pr.In.Context().Value(targetKey{}).(*url.URL)
			pr.Out.URL = target
			pr.Out.Host = target.Host
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			writeError(w, http.StatusBadGateway, "node_unreachable", err.Error())
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		addr, ok := resolve(id)
		if !ok {
			writeError(w, http.StatusNotFound, "not_found", "no node "+id)
			return
		}
		// Cut "/api/node/{id}" off the escaped path so an encoded key
		// such as a%2Fb reaches the node unchanged. The ID segment is
		// compared unescaped: the page escapes it with JavaScript's
		// encodeURIComponent, which differs from Go's PathEscape (':',
		// '!', '+' ...).
		esc := strings.TrimPrefix(r.URL.EscapedPath(), "/api/node/")
		seg, rest, found := strings.Cut(esc, "/")
		if got, err := url.PathUnescape(seg); !found || err != nil || got != id {
			writeError(w, http.StatusNotFound, "not_found", "bad node path")
			return
		}
		rest = "/" + rest
		target, err := url.Parse("http://" + addr + rest)
		if err != nil {
			writeError(w, http.StatusBadRequest, api.CodeBadParameter, err.Error())
			return
		}
		target.RawQuery = r.URL.RawQuery
		rp.ServeHTTP(w, r.WithContext(contextWithTarget(r.Context(), target)))
	})
}

// newTransport is how the dashboard reaches nodes: directly (nodes are
// local or cluster peers, never behind an HTTP proxy), failing fast on a
// dead node.
func newTransport() *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 3 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 70 * time.Second, // above the API's 60 s request timeout cap
	}
}

// sameOrigin refuses state-changing requests that a browser sent on
// behalf of another site: the control API kills processes and the proxy
// writes data, and both listen on localhost where any web page the user
// visits could otherwise POST to them.
func sameOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions {
			if err := checkOrigin(r); err != nil {
				writeError(w, http.StatusForbidden, "forbidden", err.Error())
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// localOnly refuses requests whose Host is a name other than localhost.
// dynago dev's control API listens on loopback, where a web page the user
// visits can reach it by DNS rebinding: its own name re-pointed at
// 127.0.0.1 makes the browser treat the API as same-origin, so an origin
// check alone lets it kill nodes and read data. Browsers put the page's
// name in Host, so answering only to IP literals and localhost stops that.
func localOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			host = h
		}
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		if host != "localhost" && net.ParseIP(host) == nil {
			writeError(w, http.StatusForbidden, "forbidden",
				fmt.Sprintf("Host %q refused: dynago dev's dashboard answers only to IP addresses and localhost (DNS rebinding protection)", r.Host))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func checkOrigin(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return ErrCrossOrigin
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return ErrCrossOrigin
		}
	}
	return nil
}

// NodeHandler is the dashboard as a node serves it: mount it with
// mux.Handle(NodePrefix+"/", NodeHandler(...)). peers is called per
// request, so it reflects membership changes; it should list every
// member the node knows with its HTTP address, self included.
func NodeHandler(self string, peers func() []Peer) http.Handler {
	resolve := func(id string) (string, bool) { return lookup(peers, id) }
	transport := newTransport()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/config", func(w http.ResponseWriter, r *http.Request) {
		ids := []string{}
		for _, p := range peers() {
			ids = append(ids, p.ID)
		}
		writeJSON(w, http.StatusOK, Config{Mode: "node", Control: false, Self: self, Nodes: ids})
	})
	mux.HandleFunc("GET /api/events", eventsHandler(peers, &http.Client{Transport: transport}))
	mux.Handle("/api/node/{id}/", newProxy(transport, resolve))
	mux.Handle("/api/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such dashboard endpoint")
	}))
	mux.Handle("/", staticHandler())
	inner := http.StripPrefix(NodePrefix, sameOrigin(mux))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Relative api/ URLs resolve against the page's directory, so
		// the page must be at /dashboard/, not /dashboard.
		if r.URL.Path == NodePrefix {
			http.Redirect(w, r, NodePrefix+"/", http.StatusMovedPermanently)
			return
		}
		inner.ServeHTTP(w, r)
	})
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, api.Error{Error: msg, Code: code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	// The status is sent; a failed write only means the client left.
	_ = json.NewEncoder(w).Encode(v)
}

type targetKey struct{}

func contextWithTarget(ctx context.Context, u *url.URL) context.Context {
	return context.WithValue(ctx, targetKey{}, u)
}
