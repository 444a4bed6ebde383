package httpapi

import (
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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

func (m *metrics) instrument(route string, h http.Handler) http.Handler {
	labels := prometheus.Labels{"route": route}
	return promhttp.InstrumentHandlerDuration(m.duration.MustCurryWith(labels),
		promhttp.InstrumentHandlerCounter(m.requests.MustCurryWith(labels), h))
}
