package transport

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dynago/dynago/ring"
)

// Methods name what a per-peer RPC series measured (the "method" label).
const (
	// MethodStep is one unary Step call (ModeUnary): a full round trip,
	// the peer's acknowledgement of a batch included.
	MethodStep = "step"
	// MethodStreamOpen is opening a stream (ModeStream): a round trip to
	// the peer's accept, plus the connection set-up when there was none.
	MethodStreamOpen = "stream_open"
	// MethodStreamSend is writing one batch on an open stream. There is no
	// answer on a stream, so this is not a round trip: it is the time gRPC
	// took to accept the batch, which grows when the peer (or the network)
	// stops taking data and HTTP/2 flow control pushes back.
	MethodStreamSend = "stream_send"
	// MethodPing is the round trip that ModeStream measures every
	// PingInterval on a connection in use (see Config.PingInterval),
	// because its writes have none.
	MethodPing = "ping"
)

// Metrics are the transport's per-peer Prometheus series, in the style of
// etcd's etcd_network_peer_round_trip_time_seconds and
// etcd_network_peer_sent_failures_total: the latency of calls that
// succeeded, and the calls that failed with their gRPC status code. Labels
// are bounded: peers come from the transport's peer set (the cluster's
// members, never from what a client sends), methods are the four above and
// codes are gRPC's seventeen. Register it on a registry and pass it in
// Config.Metrics; one Metrics serves one Transport.
type Metrics struct {
	duration *prometheus.HistogramVec
	failures *prometheus.CounterVec
	include  func(ring.NodeID) bool
}

// NewMetrics creates the series, empty until calls are made. include, if
// not nil, is asked at every scrape which peers to export: the daemon
// exports the members of its ring (current and next), so that a node that
// left the cluster drops out of dashboards and alerts even though a reply
// or two may still go to it, and its series come back (with their
// counts) if it joins again.
func NewMetrics(include func(ring.NodeID) bool) *Metrics {
	return &Metrics{
		include: include,
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dynago_peer_rpc_duration_seconds",
			Help: "Latency of node-to-node RPCs that succeeded, by peer and method (step and ping are round trips; stream_send is the time to hand a batch to the connection).",
			// 50 µs (loopback) .. 3.3 s, past the default CallTimeout.
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 17),
		}, []string{"peer", "method"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dynago_peer_rpc_failures_total",
			Help: "Node-to-node RPCs that failed, by peer, method and gRPC status code (Unavailable: refused or down; DeadlineExceeded or Canceled: too slow).",
		}, []string{"peer", "method", "code"}),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.duration.Describe(ch)
	m.failures.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	if m.include == nil {
		m.duration.Collect(ch)
		m.failures.Collect(ch)
		return
	}
	all := make(chan prometheus.Metric, 64)
	go func() {
		m.duration.Collect(all)
		m.failures.Collect(all)
		close(all)
	}()
	keep := map[string]bool{}
	for x := range all {
		var d dto.Metric
		if err := x.Write(&d); err != nil {
			continue
		}
		peer := ""
		for _, l := range d.GetLabel() {
			if l.GetName() == "peer" {
				peer = l.GetValue()
			}
		}
		in, ok := keep[peer]
		if !ok {
			in = m.include(ring.NodeID(peer))
			keep[peer] = in
		}
		if in {
			ch <- x
		}
	}
}

// Forget deletes every series of peer: the transport calls it when the
// peer leaves its peer set. A peer that is sent to again gets new series.
func (m *Metrics) Forget(peer ring.NodeID) {
	if m == nil {
		return
	}
	m.duration.DeletePartialMatch(prometheus.Labels{"peer": string(peer)})
	m.failures.DeletePartialMatch(prometheus.Labels{"peer": string(peer)})
}

// observe records one call to peer that took d and ended with err.
func (m *Metrics) observe(peer ring.NodeID, method string, d time.Duration, err error) {
	if m == nil {
		return
	}
	if err == nil {
		m.duration.WithLabelValues(string(peer), method).Observe(d.Seconds())
		return
	}
	m.failures.WithLabelValues(string(peer), method, errorCode(err).String()).Inc()
}

// errorCode maps a call's error to a gRPC code; the stream watchdog's and
// the deadline's context errors included.
func errorCode(err error) codes.Code {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	}
	return status.Code(err)
}
