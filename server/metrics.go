package server

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynago/dynago/buildinfo"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage/pebbledb"
	"github.com/dynago/dynago/transport"
)

// metrics are the daemon's own Prometheus series; the HTTP layer adds its
// per-route series to the same (per-node, never global) registry.
type metrics struct {
	treeBuild prometheus.Histogram
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	// The children of requests and latency, looked up once: a label
	// lookup hashes its values on every request. A slot is filled when its
	// series is first used; only the ok series exist before (newMetrics).
	reqChild    [opSlots][codeSlots]atomic.Pointer[prometheus.Counter]
	latChild    [opSlots]atomic.Pointer[prometheus.Observer]
	fsync       prometheus.Histogram
	lazyFsyncs  prometheus.Counter
	shed        prometheus.Counter
	batchWrites prometheus.Histogram
	inflight    prometheus.Gauge
	// peers are the transport's per-peer series (transport.Metrics).
	peers *transport.Metrics

	// Counted from the core's events (count), after the fsync.
	aeExchanges, aeInSync, aeKeysRepaired, aeTreeBuilds prometheus.Counter
	hintsStored, hintsDelivered                         prometheus.Counter
}

// count adds one core event to the counters it feeds.
func (m *metrics) count(e node.Event) {
	switch e.Kind {
	case node.HintStored:
		m.hintsStored.Inc()
	case node.HintDelivered:
		m.hintsDelivered.Inc()
	case node.Exchange:
		m.aeExchanges.Inc()
		if e.InSync {
			m.aeInSync.Inc()
		}
	case node.Repair:
		// Read repairs and hint spreading are not anti-entropy's: the
		// series has always counted what exchanges and handoffs send.
		if e.Cause == node.RepairAE || e.Cause == node.RepairHandoff {
			m.aeKeysRepaired.Inc()
		}
	case node.TreeBuilt:
		m.aeTreeBuilds.Inc()
	}
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
		lazyFsyncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dynago_storage_lazy_fsyncs_total", Help: "Fsyncs started only because replica copies no quorum waits for had waited --lazy-sync-delay (the rest joined fsyncs started for something waited for).",
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
		peers: transport.NewMetrics(s.ringMember),
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m.aeExchanges = counter("dynago_ae_exchanges_total", "Merkle exchanges this node completed as initiator.")
	m.aeInSync = counter("dynago_ae_in_sync_total", "Merkle exchanges that found the replicas' trees equal.")
	m.aeKeysRepaired = counter("dynago_ae_keys_repaired_total", "Objects this node sent to repair or hand off a replica.")
	m.aeTreeBuilds = counter("dynago_ae_tree_builds_total", "Merkle trees built from a scan of storage.")
	m.hintsStored = counter("dynago_hints_stored_total", "Writes stored as hints for unreachable primaries.")
	m.hintsDelivered = counter("dynago_hints_delivered_total", "Hints delivered to their primary and deleted.")
	reg.MustRegister(m.treeBuild, m.aeExchanges, m.aeInSync, m.aeKeysRepaired, m.aeTreeBuilds, m.hintsStored, m.hintsDelivered,
		// What no event reports is read from the snapshot the event loop
		// publishes (the core itself belongs to the loop goroutine).
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "dynago_tombstones_reaped_total", Help: "Tombstones this node deleted after every member agreed."},
			func() float64 { return float64(s.stats().Reaped) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dynago_hint_bytes", Help: "Bytes of the hints this node holds for other nodes (keys and values), which --max-hint-bytes bounds."},
			func() float64 { return float64(s.stats().HintBytes) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "dynago_hints_refused_total", Help: "Hints this node refused because they would have taken its hints past --max-hint-bytes (the writes failed here; anti-entropy brings them to their primaries)."},
			func() float64 { return float64(s.stats().HintsRefused) }),
	)
	reg.MustRegister(hintsCollector{
		self: s.cfg.ID, held: func() map[ring.NodeID]int { return s.stats().HintsHeld },
		members: func() []ring.NodeID { return s.Ring().Members() },
	})
	// The series of successful requests exist from the start, at 0, so
	// that rate() has a first sample and absent() means "not scraped",
	// not "no request yet". The other outcomes appear when they happen.
	for _, op := range []node.Op{node.OpGet, node.OpPut, node.OpDelete} {
		m.requests.WithLabelValues(op.String(), node.CodeOK.String())
		m.latency.WithLabelValues(op.String())
	}
	m.shed = counter("dynago_requests_shed_total", "Client requests refused at once (overloaded) because --max-inflight were in flight already; they are also counted in dynago_requests_total with code overloaded.")
	reg.MustRegister(m.requests, m.latency, m.fsync, m.lazyFsyncs, m.shed, m.batchWrites, m.inflight,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dynago_ring_version", Help: "Version of the ring this node routes by."},
			func() float64 { return float64(s.Ring().Version()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "dynago_transport_dropped_total", Help: "Messages the transport dropped (queue full, unknown peer or injected)."},
			func() float64 { return float64(s.trans.Stats().Total.Dropped) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "dynago_transport_malformed_total", Help: "Envelopes received on the RPC port and rejected as malformed (a broken peer, or not a peer)."},
			func() float64 { return float64(s.trans.Stats().Malformed) }),
	)
	reg.MustRegister(gossipCollector{s}, m.peers, repairCollector{s}, handoffCollector{s})
	if s.engine != nil {
		reg.MustRegister(pebbledb.NewCollector(s.engine))
	}
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

// hintsCollector exports the hints this node holds, per primary they are
// for: a node back from an outage is caught up when every other node's
// series for it is 0. Every other member of the ring has a series, 0 when
// nothing is held for it, so that the series exist before the first
// outage; a primary no longer in the ring keeps one while hints for it
// remain.
type hintsCollector struct {
	self    ring.NodeID
	held    func() map[ring.NodeID]int
	members func() []ring.NodeID
}

var hintsHeldDesc = prometheus.NewDesc("dynago_hints_held",
	"Hints this node holds for other nodes, by the primary they are for (peer); sum them for the total.", []string{"peer"}, nil)

func (c hintsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- hintsHeldDesc }

func (c hintsCollector) Collect(ch chan<- prometheus.Metric) {
	held := c.held()
	for _, id := range c.members() {
		if id != c.self {
			if _, ok := held[id]; !ok {
				ch <- prometheus.MustNewConstMetric(hintsHeldDesc, prometheus.GaugeValue, 0, string(id))
			}
		}
	}
	for id, n := range held {
		ch <- prometheus.MustNewConstMetric(hintsHeldDesc, prometheus.GaugeValue, float64(n), string(id))
	}
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
	rg := c.s.Ring()
	var next *ring.Ring
	if v := c.s.view.Load(); v != nil {
		next = v.next
	}
	for _, m := range ms.Members() {
		if m.ID == c.s.cfg.ID {
			continue
		}
		// A dead member outside the ring (a node that left, or joined
		// gossip and never the ring) is forgotten: memberlist lists it as
		// dead for ever, and a series stuck at 0 would fire any alert on
		// it for ever. A dead member of the ring stays: it is a fault.
		if m.Status == node.Dead && !(rg != nil && rg.Contains(m.ID)) && !(next != nil && next.Contains(m.ID)) {
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

// Sizes of the child caches: node.Op and node.Code are small enums; any
// value beyond them takes the label lookup.
const (
	opSlots   = 4
	codeSlots = 16
)

func (m *metrics) observeRequest(op node.Op, code node.Code, d time.Duration) {
	if int(op) >= opSlots || int(code) >= codeSlots {
		m.requests.WithLabelValues(op.String(), code.String()).Inc()
		m.latency.WithLabelValues(op.String()).Observe(d.Seconds())
		return
	}
	c := m.reqChild[op][code].Load()
	if c == nil {
		cc := m.requests.WithLabelValues(op.String(), code.String())
		c = &cc
		m.reqChild[op][code].Store(c)
	}
	(*c).Inc()
	if code == node.CodeOverloaded {
		// Shed before any work: its microseconds would only pull the
		// latency of the requests served down, just when they slow.
		return
	}
	o := m.latChild[op].Load()
	if o == nil {
		oo := m.latency.WithLabelValues(op.String())
		o = &oo
		m.latChild[op].Store(o)
	}
	(*o).Observe(d.Seconds())
}

// repairCollector exports the coordinator's read repairs from the core's
// latest snapshot (at most statsEvery old).
type repairCollector struct{ s *Server }

var readRepairsDesc = prometheus.NewDesc("dynago_read_repairs_total",
	"Replicas this node sent a read repair to as a get's coordinator, by what the replica answered: missing (no copy) or stale (an out-of-date or concurrent copy).",
	[]string{"reason"}, nil)

func (c repairCollector) Describe(ch chan<- *prometheus.Desc) { ch <- readRepairsDesc }

func (c repairCollector) Collect(ch chan<- prometheus.Metric) {
	var st node.Stats
	if p := c.s.coreSnapshot.Load(); p != nil {
		st = *p
	}
	// Both series always exist, so that rate() and absent() work from the
	// first scrape.
	ch <- prometheus.MustNewConstMetric(readRepairsDesc, prometheus.CounterValue, float64(st.ReadRepairsMissing), "missing")
	ch <- prometheus.MustNewConstMetric(readRepairsDesc, prometheus.CounterValue, float64(st.ReadRepairs-st.ReadRepairsMissing), "stale")
}

// handoffCollector exports ownership handoff (join and leave) as /cluster's
// handoff section shows it, plus what this node pushed.
type handoffCollector struct{ s *Server }

var (
	handoffInProgressDesc = prometheus.NewDesc("dynago_handoff_in_progress",
		"1 while a membership change (join or leave) is moving partitions, as this node's cluster state says; else 0.", nil, nil)
	handoffTransfersDesc = prometheus.NewDesc("dynago_handoff_transfers",
		"Partition transfers of the running membership change, by state (done, pending); 0 when none runs. /cluster's handoff.done and handoff.total.", []string{"state"}, nil)
	handoffPendingDesc = prometheus.NewDesc("dynago_handoff_pending_transfers",
		"Pending transfers of the running membership change that involve this node: out (it is the donor) or in (it is the recipient).", []string{"direction"}, nil)
	handoffStalledDesc = prometheus.NewDesc("dynago_handoff_no_progress_seconds",
		"Seconds since this node saw the running membership change begin or complete a transfer; 0 when none runs. /cluster's handoff.no_progress_ms.", nil, nil)
	handoffKeysDesc = prometheus.NewDesc("dynago_handoff_keys_sent_total",
		"Objects this node pushed to hand partitions off (a membership change's transfers, or data it no longer replicates).", nil, nil)
	handoffBytesDesc = prometheus.NewDesc("dynago_handoff_bytes_sent_total",
		"Encoded bytes of the objects counted by dynago_handoff_keys_sent_total.", nil, nil)
	handoffsDoneDesc = prometheus.NewDesc("dynago_handoff_partitions_sent_total",
		"Partition handoffs this node completed as the donor (every object pushed and acknowledged).", nil, nil)
)

func (c handoffCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{handoffInProgressDesc, handoffTransfersDesc, handoffPendingDesc, handoffStalledDesc, handoffKeysDesc, handoffBytesDesc, handoffsDoneDesc} {
		ch <- d
	}
}

func (c handoffCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	var hp node.HandoffProgress
	stalled := 0.0
	if v := c.s.view.Load(); v != nil {
		hp = v.progress
		if hp.InTransition {
			// The same clock and origin as /cluster's no_progress_ms.
			stalled = max(time.Since(v.progressAt).Seconds(), 0)
		}
	}
	in, out := 0, 0
	for _, t := range hp.Pending {
		if t.From == c.s.cfg.ID {
			out++
		}
		if t.To == c.s.cfg.ID {
			in++
		}
	}
	inProgress := 0.0
	if hp.InTransition {
		inProgress = 1
	}
	gauge(handoffInProgressDesc, inProgress)
	gauge(handoffTransfersDesc, float64(hp.Done), "done")
	gauge(handoffTransfersDesc, float64(hp.Total-hp.Done), "pending")
	gauge(handoffPendingDesc, float64(out), "out")
	gauge(handoffPendingDesc, float64(in), "in")
	gauge(handoffStalledDesc, stalled)
	var st node.Stats
	if p := c.s.coreSnapshot.Load(); p != nil {
		st = *p
	}
	counter(handoffKeysDesc, st.HandoffKeysSent)
	counter(handoffBytesDesc, st.HandoffBytesSent)
	counter(handoffsDoneDesc, st.HandoffsDone)
}

// ringMember reports whether id is in the ring this node routes by or the
// one a running change moves to: the peers whose series /metrics exports.
// A node that left the cluster drops out of them.
func (s *Server) ringMember(id ring.NodeID) bool {
	if r := s.Ring(); r != nil && r.Contains(id) {
		return true
	}
	if v := s.view.Load(); v != nil && v.next != nil && v.next.Contains(id) {
		return true
	}
	return false
}
