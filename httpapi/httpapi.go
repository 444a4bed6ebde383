package httpapi

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dynago/dynago/api"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
)

// Backend is what a node offers the HTTP layer; the daemon implements it.
type Backend interface {
	// Do runs a put, get or delete through the node's core and returns its
	// Reply. The backend assigns req.ID. It honours ctx: when the client
	// goes away, Do may return early (its reply is then discarded).
	Do(ctx context.Context, req node.Request) node.Reply
	// NodeID names this node.
	NodeID() ring.NodeID
	// Ring returns the current ring snapshot, which must not change after
	// being returned.
	Ring() *ring.Ring
	// Defaults returns the cluster's N and this node's default R and W, as
	// its core runs by them (node.Node.Defaults).
	Defaults() (n, r, w int)
	// Members lists every node of the cluster with its HTTP address and
	// liveness as this node sees it.
	Members() []Member
	// Local returns this node's own stored copy of key, without
	// coordination. ok is false when the node holds nothing for the key
	// (no object and no hint).
	Local(key []byte) (l Local, ok bool, err error)
}

// Member is one node as the backend sees it.
type Member struct {
	ID       ring.NodeID
	HTTPAddr string // host:port of the node's HTTP API
	Status   string // "alive", "suspect" or "dead"
	// Version and Commit are the build the member runs, as it gossips
	// it ("" when unknown: not heard from, or older than this field).
	Version, Commit string
}

// Local is a node's own copy of one key.
type Local struct {
	Siblings []object.Sibling // tombstones included
	Context  []byte           // encoded dvv context (dvv.EncodeContext)
	Hints    []ring.NodeID    // primaries this node holds a hint for, for this key
}

// Defaults of Options that belong to the HTTP layer alone. The key and
// value limits and the request timeout are the core's, from
// node.DefaultConfig (with the reasons for them there).
const (
	DefaultMaxTimeout = time.Minute // bounds how long one client can pin coordinator state
	// DefaultBodyTimeout bounds the time to receive a request's body, so
	// that a client that declares a body and stalls cannot hold a
	// connection and a goroutine for ever. 10s carries a 1 MiB value at
	// 100 KB/s; the same as the server's ReadHeaderTimeout.
	DefaultBodyTimeout = 10 * time.Second
)

// Options configures the handler. Zero or negative fields take the defaults
// above, or node.DefaultConfig's; the daemon passes its core's.
type Options struct {
	MaxKeySize   int // bytes
	MaxValueSize int // bytes
	// DefaultTimeout is the coordination timeout of a request that does not
	// set query parameter timeout (milliseconds).
	DefaultTimeout time.Duration
	// MaxTimeout caps the timeout query parameter: larger values are
	// lowered to it, so that a client cannot hold a coordinator's request
	// state for hours.
	MaxTimeout time.Duration
	// Registry is this node's metrics registry; /metrics serves it and the
	// HTTP metrics are registered in it. Use one registry per node, never
	// prometheus.DefaultRegisterer: several nodes may share a process (tests,
	// the lab). Nil means a fresh private registry.
	Registry *prometheus.Registry
	// Logger receives internal errors. Nil discards them.
	Logger *slog.Logger
	// EventHeartbeat is how often an idle /events stream sends a comment
	// line. Zero means DefaultEventHeartbeat.
	EventHeartbeat time.Duration
	// BodyTimeout bounds the time from a request's headers to the end of
	// its body (see DefaultBodyTimeout). A request whose body is late gets
	// 408 and its connection is closed. Requests without a body, such as
	// the /events stream, are not affected.
	BodyTimeout time.Duration
	// PeerTLS, when set, is the TLS config for dialing other nodes' HTTP
	// APIs (an abort forwarded to the claimant): with certificates they
	// serve HTTPS only, and the node's own certificate carries role admin.
	// It is called for each forward, so reloaded certificates are used.
	PeerTLS func() *tls.Config
}

func (o *Options) fillDefaults() {
	preset := node.DefaultConfig()
	if o.MaxKeySize <= 0 {
		o.MaxKeySize = preset.MaxKeySize
	}
	if o.MaxValueSize <= 0 {
		o.MaxValueSize = preset.MaxValueSize
	}
	if o.MaxTimeout <= 0 {
		o.MaxTimeout = DefaultMaxTimeout
	}
	if o.DefaultTimeout <= 0 {
		o.DefaultTimeout = preset.RequestTimeout
	}
	o.DefaultTimeout = min(o.DefaultTimeout, o.MaxTimeout)
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = DefaultBodyTimeout
	}
	if o.EventHeartbeat <= 0 {
		o.EventHeartbeat = DefaultEventHeartbeat
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// The headers and error codes of the API, declared in package api (the
// contract's one executable copy) and repeated here for the callers that
// name them through httpapi.
const (
	ContextHeader  = api.ContextHeader
	SiblingsHeader = api.SiblingsHeader

	CodeBadKey           = api.CodeBadKey
	CodeBadParameter     = api.CodeBadParameter
	CodeBadContext       = api.CodeBadContext
	CodeBadRequest       = api.CodeBadRequest
	CodeTooLarge         = api.CodeTooLarge // value over MaxValueSize
	CodeNotFound         = api.CodeNotFound
	CodeQuorumFailed     = api.CodeQuorumFailed
	CodeUnavailable      = api.CodeUnavailable
	CodeInternal         = api.CodeInternal
	CodeMethodNotAllowed = api.CodeMethodNotAllowed
	CodeTooManySiblings  = api.CodeTooManySiblings
	CodeBodyTimeout      = api.CodeBodyTimeout // within Options.BodyTimeout
	CodeOverloaded       = api.CodeOverloaded
)

// ErrBadContext reports a context header or token that does not decode.
var ErrBadContext = errors.New("httpapi: bad context")

// handler serves one node's HTTP API.
type handler struct {
	b    Backend
	opts Options

	siblingWarnings prometheus.Counter // writes answered with SiblingsHeader
}

// New returns the HTTP API of the node behind b. It registers the HTTP
// metrics in opts.Registry (reusing them if an earlier New did).
func New(b Backend, opts Options) http.Handler {
	opts.fillDefaults()
	m := newMetrics(opts.Registry)
	a := &handler{b: b, opts: opts, siblingWarnings: m.siblingWarnings}
	other := func(h http.HandlerFunc) http.Handler { return m.instrument("other", h) }
	badKey := other(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, errBadKey("a key is one non-empty path segment; percent-encode '/' as %2F"))
	})
	ep := func(method, route string, h http.HandlerFunc) endpoint {
		return endpoint{method, m.instrument(route, h)}
	}
	metrics := promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{ErrorLog: slogPrinter{opts.Logger}})

	kep := func(method, route string, h keyHandler) keyEndpoint {
		return keyEndpoint{method, m.instrumentKey(route, h)}
	}

	mux := http.NewServeMux()
	kv := a.withRingVersion(keyRouter("/kv/", badKey,
		keyResource(other,
			kep(http.MethodGet, "kv_get", a.get),
			kep(http.MethodPut, "kv_put", a.put),
			kep(http.MethodPost, "kv_put", a.put),
			kep(http.MethodDelete, "kv_delete", a.delete)),
		map[string]http.Handler{
			"placement": resource(other, ep(http.MethodGet, "placement", a.placement)),
		}))
	mux.Handle("/kv/", kv)
	mux.Handle("/admin/local/", keyRouter("/admin/local/", badKey,
		pathValueKey(resource(other, ep(http.MethodGet, "admin_local", a.local))), nil))
	mux.Handle("/admin/history/", keyRouter("/admin/history/", badKey,
		pathValueKey(resource(other, ep(http.MethodGet, "admin_history", a.history))), nil))
	mux.Handle("/admin/stats", resource(other, ep(http.MethodGet, "admin_stats", a.stats)))
	mux.Handle("/events", resource(other, ep(http.MethodGet, "events", a.events)))
	mux.Handle("/cluster", resource(other, ep(http.MethodGet, "cluster", a.cluster)))
	mux.Handle("/ring", resource(other, ep(http.MethodGet, "ring", a.ring)))
	mux.Handle("/admin/plan", resource(other, ep(http.MethodGet, "admin_plan", a.plan)))
	mux.Handle("/admin/commit", resource(other, ep(http.MethodPost, "admin_commit", a.commit)))
	mux.Handle("/admin/leave/", resource(other, ep(http.MethodPost, "admin_leave", a.leave)))
	mux.Handle("/admin/abort", resource(other, ep(http.MethodPost, "admin_abort", a.abort)))
	mux.Handle("/admin/backup", resource(other, ep(http.MethodPost, "admin_backup", a.backup)))
	mux.Handle("/admin/faults", resource(other,
		ep(http.MethodGet, "admin_faults", a.faults),
		ep(http.MethodPut, "admin_faults", a.faults),
		ep(http.MethodDelete, "admin_faults", a.faults)))
	mux.Handle("/admin/defaults", resource(other,
		ep(http.MethodGet, "admin_defaults", a.defaults),
		ep(http.MethodPut, "admin_defaults", a.defaults)))
	mux.Handle("/healthz", resource(other, ep(http.MethodGet, "healthz", a.healthz)))
	mux.Handle("/readyz", resource(other, ep(http.MethodGet, "readyz", a.readyz)))
	mux.Handle("/metrics", resource(other, ep(http.MethodGet, "metrics", metrics.ServeHTTP)))
	mux.Handle("/", other(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, &apiError{http.StatusNotFound, CodeNotFound, "no such route"})
	}))
	return bodyDeadline(kvFirst(kv, mux), opts.BodyTimeout)
}

// slogPrinter adapts a slog.Logger to promhttp's ErrorLog.
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.l.Error("httpapi: metrics", "err", v) }
