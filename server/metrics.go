package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynago/dynago/buildinfo"
	"github.com/dynago/dynago/node"
)

// metrics are the daemon's own Prometheus series; the HTTP layer adds its
// per-route series to the same (per-node, never global) registry.
type metrics struct {
	treeBuild   prometheus.Histogram
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	fsync       prometheus.Histogram
	batchWrites prometheus.Histogram
	inflight    prometheus.Gauge
}

func newMetrics(reg *prometheus.Registry, s *Server) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dynago_requests_total", Help: "Client requests coordinated or forwarded by this node, by operation and outcome.",
		}, []string{"op", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dynago_request_duration_seconds", Help: "Client request latency at this node, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18), // 0.1 ms .. 13 s
		}, []string{"op"}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dynago_storage_fsync_duration_seconds", Help: "Duration of write-ahead-log fsyncs (one per group commit).",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
		}),
		batchWrites: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dynago_storage_batch_writes", Help: "Objects written per storage batch (group commit size).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dynago_operations_in_flight", Help: "Operations the core is coordinating or waiting on.",
		}),
		treeBuild: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dynago_ae_tree_build_seconds", Help: "Duration of event-loop steps that built a Merkle tree from a partition scan (the build dominates them).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}),
	}
	// Core counters, read from the snapshot the event loop publishes (the
	// core itself belongs to the loop goroutine).
	stat := func(name, help string, f func(coreStats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return f(s.stats()) })
	}
	reg.MustRegister(m.treeBuild,
		stat("dynago_ae_exchanges_total", "Merkle exchanges this node completed as initiator.", func(c coreStats) float64 { return float64(c.ae.Exchanges) }),
		stat("dynago_ae_in_sync_total", "Merkle exchanges that found the replicas' trees equal.", func(c coreStats) float64 { return float64(c.ae.InSync) }),
		stat("dynago_ae_keys_repaired_total", "Objects this node sent to repair or hand off a replica.", func(c coreStats) float64 { return float64(c.ae.KeysRepaired) }),
		stat("dynago_ae_tree_builds_total", "Merkle trees built from a scan of storage.", func(c coreStats) float64 { return float64(c.ae.TreeBuilds) }),
		stat("dynago_hints_stored_total", "Writes stored as hints for unreachable primaries.", func(c coreStats) float64 { return float64(c.hintsStored) }),
		stat("dynago_hints_delivered_total", "Hints delivered to their primary and deleted.", func(c coreStats) float64 { return float64(c.hintsDelivered) }),
		stat("dynago_tombstones_reaped_total", "Tombstones this node deleted after every member agreed.", func(c coreStats) float64 { return float64(c.reaped) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dynago_hints_held", Help: "Hints this node holds for other nodes."},
			func() float64 { return float64(s.stats().hintsHeld) }),
	)
	reg.MustRegister(m.requests, m.latency, m.fsync, m.batchWrites, m.inflight,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dynago_ring_version", Help: "Version of the ring this node routes by."},
			func() float64 { return float64(s.Ring().Version()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "dynago_transport_dropped_total", Help: "Messages the transport dropped (queue full, unknown peer or injected)."},
			func() float64 { return float64(s.trans.Stats().Total.Dropped) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "dynago_transport_malformed_total", Help: "Envelopes received on the RPC port and rejected as malformed (a broken peer, or not a peer)."},
			func() float64 { return float64(s.trans.Stats().Malformed) }),
	)
	reg.MustRegister(gossipCollector{s})
	// dynago_build_info is the Prometheus convention (as etcd, CockroachDB
	// and Prometheus itself export): a constant 1 whose labels say which
	// build runs, so dashboards can join on it and a rolling upgrade shows
	// nodes by version.
	bi := buildinfo.Get()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "dynago_build_info", Help: "A constant 1, labelled with the running build's version, commit and Go version.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "commit": bi.Commit, "goversion": bi.GoVersion},
	})
	build.Set(1)
	reg.MustRegister(build)
	return m
}

// gossipCollector exports what membership knows: each peer's liveness as
// this node sees it, and the healing and validation counters.
type gossipCollector struct{ s *Server }

var (
	memberStatusDesc = prometheus.NewDesc("dynago_member_status",
		"Liveness of each peer as this node's failure detector sees it: 2 alive, 1 suspect, 0 dead.", []string{"peer"}, nil)
	reconnectAttemptsDesc = prometheus.NewDesc("dynago_gossip_reconnect_attempts_total",
		"Gossip joins tried to members marked dead and to seeds, to heal partitions.", nil, nil)
	reconnectsDesc = prometheus.NewDesc("dynago_gossip_reconnects_total",
		"Reconnect attempts that reached the other member.", nil, nil)
	statesRejectedDesc = prometheus.NewDesc("dynago_gossip_states_rejected_total",
		"Cluster states received by gossip and refused (undecodable, implausible version, or not a valid ring of this cluster).", nil, nil)
)

func (c gossipCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- memberStatusDesc
	ch <- reconnectAttemptsDesc
	ch <- reconnectsDesc
	ch <- statesRejectedDesc
}

func (c gossipCollector) Collect(ch chan<- prometheus.Metric) {
	ms := c.s.members
	if ms == nil {
		return
	}
	for _, m := range ms.Members() {
		if m.ID == c.s.cfg.ID {
			continue
		}
		v := 0.0
		switch m.Status {
		case node.Alive:
			v = 2
		case node.Suspect:
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(memberStatusDesc, prometheus.GaugeValue, v, string(m.ID))
	}
	st := ms.Stats()
	ch <- prometheus.MustNewConstMetric(reconnectAttemptsDesc, prometheus.CounterValue, float64(st.ReconnectAttempts))
	ch <- prometheus.MustNewConstMetric(reconnectsDesc, prometheus.CounterValue, float64(st.ReconnectSuccesses))
	ch <- prometheus.MustNewConstMetric(statesRejectedDesc, prometheus.CounterValue, float64(st.StatesRejected))
}

func (m *metrics) observeRequest(op node.Op, code node.Code, d time.Duration) {
	m.requests.WithLabelValues(op.String(), code.String()).Inc()
	m.latency.WithLabelValues(op.String()).Observe(d.Seconds())
}
