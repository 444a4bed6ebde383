package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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
	// Defaults returns the cluster's N, R and W.
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
}

// Local is a node's own copy of one key.
type Local struct {
	Siblings []object.Sibling // tombstones included
	Context  []byte           // encoded dvv context (dvv.EncodeContext)
	Hints    []ring.NodeID    // primaries this node holds a hint for, for this key
}

// Defaults of Options, chosen for the data model of DESIGN.md.
const (
	DefaultMaxKeySize   = 1 << 10         // 1 KiB: keys name things, they are not data
	DefaultMaxValueSize = 1 << 20         // 1 MiB: Dynamo's objects are small; bigger ones belong in a blob store
	DefaultTimeout      = 5 * time.Second // long enough for a quorum across a slow replica and a hinted fallback
	DefaultMaxTimeout   = time.Minute     // bounds how long one client can pin coordinator state
	// DefaultBodyTimeout bounds the time to receive a request's body, so
	// that a client that declares a body and stalls cannot hold a
	// connection and a goroutine for ever. 10s carries a 1 MiB value at
	// 100 KB/s; the same as the server's ReadHeaderTimeout.
	DefaultBodyTimeout = 10 * time.Second
)

// Options configures the handler. Zero or negative fields take the defaults
// above.
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
}

func (o *Options) fillDefaults() {
	if o.MaxKeySize <= 0 {
		o.MaxKeySize = DefaultMaxKeySize
	}
	if o.MaxValueSize <= 0 {
		o.MaxValueSize = DefaultMaxValueSize
	}
	if o.MaxTimeout <= 0 {
		o.MaxTimeout = DefaultMaxTimeout
	}
	if o.DefaultTimeout <= 0 {
		o.DefaultTimeout = DefaultTimeout
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

// ContextHeader carries a context from a read to the write that supersedes it.
const ContextHeader = "X-Dynago-Context"

// SiblingsHeader is set on a successful put or delete that left the key
// with more siblings than the coordinator's soft limit (node.Config's
// SiblingWarn, default 25): the number of siblings. The application should
// read the key and write back a resolved value with the context.
const SiblingsHeader = "X-Dynago-Siblings"

// Error codes of JSON error bodies ({"error","code"}).
const (
	CodeBadKey           = "bad_key"            // empty, not one path segment, or too long
	CodeBadParameter     = "bad_parameter"      // r, w, timeout, trace or the query string itself
	CodeBadContext       = "bad_context"        // X-Dynago-Context does not decode
	CodeBadRequest       = "bad_request"        // the core rejected the request
	CodeTooLarge         = "too_large"          // value over MaxValueSize
	CodeNotFound         = "not_found"          // no live value, or no such route
	CodeQuorumFailed     = "quorum_failed"      // fewer than R/W replicas answered; a put's outcome is unknown
	CodeUnavailable      = "unavailable"        // no replica of the key reachable
	CodeInternal         = "internal"           // storage or other local failure
	CodeMethodNotAllowed = "method_not_allowed" // see the Allow header
	CodeTooManySiblings  = "too_many_siblings"  // 409: the write would exceed the sibling cap; resolve first
	CodeBodyTimeout      = "body_timeout"       // 408: the body did not arrive within Options.BodyTimeout
)

// ErrBadContext reports a context header or token that does not decode.
var ErrBadContext = errors.New("httpapi: bad context")

// api serves one node's HTTP API.
type api struct {
	b    Backend
	opts Options

	siblingWarnings prometheus.Counter // writes answered with SiblingsHeader

	defaultsMu sync.Mutex // serialises PUT /admin/defaults (read, merge, store)
}

// New returns the HTTP API of the node behind b. It registers the HTTP
// metrics in opts.Registry (reusing them if an earlier New did).
func New(b Backend, opts Options) http.Handler {
	opts.fillDefaults()
	m := newMetrics(opts.Registry)
	a := &api{b: b, opts: opts, siblingWarnings: m.siblingWarnings}
	other := func(h http.HandlerFunc) http.Handler { return m.instrument("other", h) }
	badKey := other(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, errBadKey("a key is one non-empty path segment; percent-encode '/' as %2F"))
	})
	ep := func(method, route string, h http.HandlerFunc) endpoint {
		return endpoint{method, m.instrument(route, h)}
	}
	metrics := promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{ErrorLog: slogPrinter{opts.Logger}})

	mux := http.NewServeMux()
	mux.Handle("/kv/", a.withRingVersion(keyRouter("/kv/", badKey, map[string]http.Handler{
		"": resource(other,
			ep(http.MethodGet, "kv_get", a.get),
			ep(http.MethodPut, "kv_put", a.put),
			ep(http.MethodPost, "kv_put", a.put),
			ep(http.MethodDelete, "kv_delete", a.delete)),
		"placement": resource(other, ep(http.MethodGet, "placement", a.placement)),
	})))
	mux.Handle("/admin/local/", keyRouter("/admin/local/", badKey, map[string]http.Handler{
		"": resource(other, ep(http.MethodGet, "admin_local", a.local)),
	}))
	mux.Handle("/admin/history/", keyRouter("/admin/history/", badKey, map[string]http.Handler{
		"": resource(other, ep(http.MethodGet, "admin_history", a.history)),
	}))
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
	return bodyDeadline(mux, opts.BodyTimeout)
}

// slogPrinter adapts a slog.Logger to promhttp's ErrorLog.
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.l.Error("httpapi: metrics", "err", v) }
