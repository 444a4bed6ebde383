package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the HTTP layer's own metrics. Route labels are fixed names
// (kv_get, kv_put, kv_delete, placement, cluster, admin_local, events,
// admin_stats, admin_history, healthz, metrics, other; events measures
// whole streams), never raw paths: keys in label values would make the
// series count unbounded.
type metrics struct {
	requests        *prometheus.CounterVec   // labels: route, code
	duration        *prometheus.HistogramVec // labels: route
	siblingWarnings prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dynago_http_requests_total",
		Help: "HTTP requests answered, by route and status code.",
	}, []string{"route", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "dynago_http_request_duration_seconds",
		Help: "Time to answer an HTTP request, by route.",
		// 0.1ms (a local read) to 10s (a put waiting out a long timeout) in
		// 1-2.5-5 steps; written out because computed bounds print as
		// 10.000000000000009 and the like.
		Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
	}, []string{"route"})
	return &metrics{
		requests:        registerOrReuse(reg, requests),
		duration:        registerOrReuse(reg, duration),
		siblingWarnings: SiblingWarnings(reg),
	}
}

// SiblingWarnings returns dynago_sibling_warnings_total, registered in reg
// or the one already there: every front end (HTTP, RESP) counts the writes
// it warned about in this one series, so an operator watches one number
// whatever protocol the application speaks. A nil reg gives an
// unregistered counter.
func SiblingWarnings(reg prometheus.Registerer) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "dynago_sibling_warnings_total",
		Help: "Writes that left their key with more siblings than the soft limit (HTTP answers them with X-Dynago-Siblings; RESP logs them).",
	})
	if reg == nil {
		return c
	}
	return registerOrReuse(reg, c)
}

// registerOrReuse registers c, or returns the identical collector an
// earlier New registered in the same registry (a handler rebuilt for the
// same node keeps counting in the same series).
func registerOrReuse[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// A different collector of the same name: a programming error in
		// the daemon's wiring, caught by its first test.
		panic(err)
	}
	return c
}

// instrument counts h's requests by status code and times them, under
// route. It does what promhttp's InstrumentHandlerCounter and
// InstrumentHandlerDuration do, without their per-request cost: those
// build a label map and look the series up by hashing it on every request
// (twice), and wrap the ResponseWriter in a fresh delegator. Here the
// route's histogram is looked up once, each status code's counter once, and
// the wrapper is reused; on the get path that was a tenth of the handler's
// CPU (BenchmarkHandler).
func (m *metrics) instrument(route string, h http.Handler) http.Handler {
	ri := m.route(route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, start := ri.begin(w)
		// Deferred, as promhttp does, so that a handler that panics
		// (net/http answers with a closed connection) is still counted.
		defer ri.end(sw, start)
		h.ServeHTTP(sw, r)
	})
}

// instrumentKey is instrument for a keyHandler.
func (m *metrics) instrumentKey(route string, h keyHandler) keyHandler {
	ri := m.route(route)
	return func(w http.ResponseWriter, r *http.Request, key string) {
		sw, start := ri.begin(w)
		defer ri.end(sw, start)
		h(sw, r, key)
	}
}

func (m *metrics) route(route string) *routeInstruments {
	return &routeInstruments{
		duration: m.duration.WithLabelValues(route),
		requests: m.requests.MustCurryWith(prometheus.Labels{"route": route}),
	}
}

// begin starts timing a request; the handler writes to the returned
// statusWriter, and end counts it.
func (ri *routeInstruments) begin(w http.ResponseWriter) (*statusWriter, time.Time) {
	sw := statusWriters.Get().(*statusWriter)
	sw.ResponseWriter, sw.code = w, 0
	return sw, time.Now()
}

func (ri *routeInstruments) end(sw *statusWriter, start time.Time) {
	code := sw.code
	sw.ResponseWriter = nil
	statusWriters.Put(sw)
	ri.duration.Observe(time.Since(start).Seconds())
	ri.counter(code).Inc()
}

// routeInstruments are one route's series.
type routeInstruments struct {
	duration prometheus.Observer
	requests *prometheus.CounterVec // curried with the route
	// codes caches the counter of each status code from 100 to 599.
	codes [500]atomic.Pointer[prometheus.Counter]
}

func (ri *routeInstruments) counter(code int) prometheus.Counter {
	if code == 0 {
		code = http.StatusOK // nothing written: net/http answers 200
	}
	if code < 100 || code > 599 {
		return ri.requests.WithLabelValues(strconv.Itoa(code))
	}
	slot := &ri.codes[code-100]
	if c := slot.Load(); c != nil {
		return *c
	}
	c := ri.requests.WithLabelValues(strconv.Itoa(code))
	slot.Store(&c) // a racing twin stores the same series: harmless
	return c
}

var statusWriters = sync.Pool{New: func() any { return new(statusWriter) }}

// statusWriter records the status code a handler answers with. It passes
// Flush through (the /events streams need it) and unwraps for
// http.ResponseController (deadlines, flushing).
type statusWriter struct {
	http.ResponseWriter
	code int // 0 until the final status is known
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 { // 1xx are informational, not the answer
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
