package server

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dynago/dynago/cluster"
	"github.com/dynago/dynago/dashboard"
	"github.com/dynago/dynago/fault"
	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/membership"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
	"github.com/dynago/dynago/transport"
)

// ErrStopped is returned for requests made while the server shuts down.
var ErrStopped = errors.New("server: stopped")

// input is one thing for the event loop to feed the core.
type input struct {
	req    *node.Request
	msgs   []node.Message
	status *membership.Member
	state  *cluster.State
	fn     func() // runs on the loop goroutine, with the core
}

// held is a Ready's outputs waiting for the fsync numbered seq.
type held struct {
	seq     uint64
	msgs    []node.Message
	replies []node.Reply
	state   *cluster.State
}

// Server is a running dynago node.
type Server struct {
	cfg     Config
	log     *slog.Logger
	engine  *storage.Pebble
	epoch   uint64
	core    *node.Node
	ring    atomic.Pointer[ring.Ring]
	view    atomic.Pointer[stateView] // for the HTTP goroutines
	trans   *transport.Transport
	members *membership.Membership
	inj     *fault.Injector
	reg     *prometheus.Registry
	metrics *metrics

	httpLn  net.Listener
	httpSrv *http.Server
	sec     *secState

	// What this node publishes as its HTTP and RPC addresses (advertise.go).
	advHTTP, advRPC string

	inputs   chan input
	syncReq  chan uint64
	syncDone chan syncResult
	stop     chan struct{}
	loopDone chan struct{}
	syncDead chan struct{}

	coreStats atomic.Pointer[coreStats]
	events    *eventBus // the node's event log, for /events
	// coreSnapshot is the core's latest Stats, for /admin/stats.
	coreSnapshot atomic.Pointer[node.Stats]

	// Owned by the event loop.
	obs       observer
	statsAt   time.Time
	writeSeq  uint64
	syncedSeq uint64
	syncing   bool
	hold      []held

	nextID  atomic.Uint64
	quorum  atomic.Uint64 // default R<<32 | W; see SetDefaults
	mu      sync.Mutex
	waiters map[uint64]chan node.Reply

	// Liveness and addresses as gossip reports them, for /cluster and the
	// transport. Guarded by peerMu.
	peerMu sync.Mutex
	seen   map[ring.NodeID]membership.Member
	rpc    map[ring.NodeID]string

	closeOnce sync.Once
	stopOnce  sync.Once
	failed    atomic.Bool // storage failed: the shutdown is not clean
	draining  atomic.Bool // see Drain
}

type syncResult struct {
	seq uint64
	err error
}

// Start opens the node's data, starts its transport, event loop and HTTP
// API, and returns once it is serving.
func Start(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	// Before anything opens: a refused configuration leaves nothing to undo.
	sec, secErr := loadSecurity(cfg)
	if secErr != nil {
		return nil, secErr
	}
	s := &Server{
		sec:      sec,
		cfg:      cfg,
		log:      cfg.Logger.With("node", string(cfg.ID)),
		inputs:   make(chan input, 4096),
		syncReq:  make(chan uint64, 1),
		syncDone: make(chan syncResult, 1),
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
		syncDead: make(chan struct{}),
		waiters:  map[uint64]chan node.Reply{},
		seen:     map[ring.NodeID]membership.Member{},
		rpc:      map[ring.NodeID]string{},
		events:   newEventBus(cfg.ID),
	}
	s.quorum.Store(uint64(cfg.R)<<32 | uint64(cfg.W))
	ok := false
	defer func() {
		if !ok {
			s.closeResources()
		}
	}()

	var err error
	s.engine, err = storage.OpenPebble(filepath.Join(cfg.DataDir, "db"), storage.PebbleOptions{CacheSize: cfg.CacheSize, Logger: s.log})
	if err != nil {
		return nil, fmt.Errorf("server: opening storage: %w", err)
	}
	if err := storage.CheckFormat(s.engine); err != nil {
		return nil, fmt.Errorf("server: %s: %w", cfg.DataDir, err)
	}
	var why string
	s.epoch, why, err = storage.StartEpoch(s.engine, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("server: loading epoch: %w", err)
	}
	actor := node.ActorFor(cfg.ID, s.epoch)
	s.log.Info("storage open", "dir", cfg.DataDir, "actor", actor, "epoch", why)

	st, err := s.loadState()
	if err != nil {
		return nil, err
	}
	s.core, err = node.New(node.Config{
		ID: cfg.ID, Actor: actor, OpIDBase: randomUint64(), State: st, N: cfg.N, R: cfg.R, W: cfg.W,
		RequestTimeout: cfg.RequestTimeout, MaxKeySize: cfg.MaxKeySize, MaxValueSize: cfg.MaxValueSize,
		ReplicaTimeout: cfg.ReplicaTimeout, HintRetry: 5 * cfg.ReplicaTimeout,
		AEInterval: cfg.AEInterval, AETimeout: 10 * cfg.AEInterval, AEMaxKeys: cfg.AEMaxKeys,
		LWW: cfg.LWW,
	}, s.engine)
	if err != nil {
		return nil, err
	}
	s.publishView()

	s.reg = prometheus.NewRegistry()
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.metrics = newMetrics(s.reg, s)

	for _, p := range cfg.Cluster {
		if p.ID != cfg.ID {
			s.rpc[p.ID] = p.RPCAddr
		}
	}
	tc := transport.Config{ID: cfg.ID, ListenAddr: cfg.RPCAddr, Peers: maps.Clone(s.rpc), Mode: transport.ModeStream, Logger: s.log}
	s.sec.applyTransport(&tc)
	s.trans, err = transport.New(tc, s.onMessages)
	if err != nil {
		return nil, err
	}
	// Fault injection applies to node-to-node RPC here and to gossip below.
	s.inj = fault.NewInjector(uint64(time.Now().UnixNano()))
	if err := s.inj.Set(cfg.Faults); err != nil {
		return nil, err
	}
	s.trans.SetInterceptor(s.inj)
	if err := s.trans.Start(); err != nil {
		return nil, fmt.Errorf("server: starting transport: %w", err)
	}

	go s.syncer()
	go s.loop()

	s.httpLn, err = net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("server: listening for HTTP: %w", err)
	}
	s.httpLn = s.sec.wrapListener(s.httpLn)
	var handler http.Handler = httpapi.New(s, httpapi.Options{
		MaxKeySize: cfg.MaxKeySize, MaxValueSize: cfg.MaxValueSize, DefaultTimeout: cfg.RequestTimeout,
		Registry: s.reg, Logger: s.log,
	})
	if cfg.Pprof || cfg.Dashboard {
		mux := http.NewServeMux()
		if cfg.Pprof {
			// Go's profiler, for "a profile, not a guess": off by default,
			// as it exposes internals to anyone who reaches the HTTP port.
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		}
		if cfg.Dashboard {
			d := dashboard.NodeHandler(string(cfg.ID), s.dashboardPeers)
			mux.Handle(dashboard.NodePrefix, d)
			mux.Handle(dashboard.NodePrefix+"/", d)
		}
		mux.Handle("/", handler)
		// The API bounds its own bodies; this bounds the dashboard's.
		handler = httpapi.WithBodyDeadline(mux, httpapi.DefaultBodyTimeout)
	}
	handler = s.sec.wrapHandler(handler)
	s.httpSrv = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// Headers are small: a context is at most 8 KiB
		// (httpapi.MaxContextHeaderSize). Go's default is 1 MiB.
		MaxHeaderBytes: 64 << 10,
		// No ReadTimeout: it would cancel the /events stream's context
		// (see httpapi.WithBodyDeadline, which bounds bodies instead).
		// No WriteTimeout: /events streams for as long as the client
		// listens.
	}
	// Shutdown waits for active connections; end the event streams so
	// that it need not wait them out.
	s.httpSrv.RegisterOnShutdown(s.events.close)
	go func() {
		if err := s.httpSrv.Serve(s.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	}()
	s.advHTTP, s.advRPC = advertisedOr(cfg.AdvertiseHTTP, s.HTTPAddr()), advertisedOr(cfg.AdvertiseRPC, s.trans.Addr())
	advGossip, err := resolveGossipAdvertise(cfg.AdvertiseGossip)
	if err != nil {
		return nil, err
	}
	gossipKeys, err := s.sec.gossipKeys()
	if err != nil {
		return nil, err
	}
	s.members, err = membership.Start(membership.Config{
		ID: cfg.ID, BindAddr: cfg.GossipAddr, AdvertiseAddr: advGossip, Preset: membershipPreset(cfg.Preset), Logger: s.log,
		ClusterName: cfg.ClusterName, ValidateState: s.checkGossipState, GossipKeys: gossipKeys,
		Meta:    membership.Meta{HTTPAddr: s.advHTTP, RPCAddr: s.advRPC},
		OnEvent: s.onMember,
		OnState: s.onState,
		WrapTransport: func(nt memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
			return fault.WrapGossip(nt, s.inj, s.gossipNode)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("server: starting gossip: %w", err)
	}
	if st := s.core.State(); st.Version > 0 {
		if err := s.members.SetState(st.Version, cluster.Encode(st)); err != nil {
			s.log.Warn("publishing cluster state", "err", err)
		}
	}
	if len(cfg.Join) > 0 {
		go s.joinLoop(cfg.Join)
	}
	ok = true
	s.log.Info("node serving", "http", s.advHTTP, "rpc", s.advRPC, "gossip", s.members.Addr(), "ring_version", s.core.State().Version, "n", cfg.N, "r", cfg.R, "w", cfg.W)
	return s, nil
}

// HTTPAddr returns the address the HTTP API listens on.
func (s *Server) HTTPAddr() string { return s.httpLn.Addr().String() }

// Advertised returns the addresses this node publishes to the others: HTTP,
// RPC and gossip.
func (s *Server) Advertised() (httpAddr, rpcAddr, gossipAddr string) {
	return s.advHTTP, s.advRPC, s.members.Addr()
}

// RPCAddr returns the address the node-to-node transport listens on.
func (s *Server) RPCAddr() string { return s.trans.Addr() }

// Epoch returns the storage epoch this process runs with.
func (s *Server) Epoch() uint64 { return s.epoch }

// Done is closed when the node stops serving, by Close or because its
// storage failed.
func (s *Server) Done() <-chan struct{} { return s.loopDone }

// Registry returns the node's metrics registry.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Close stops serving and closes the node's data. Writes already
// acknowledged are durable whether or not Close runs.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() { err = s.closeResources() })
	return err
}

func (s *Server) closeResources() error {
	var errs []error
	if s.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := s.httpSrv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
	} else if s.httpLn != nil {
		s.httpLn.Close()
	}
	if s.members != nil {
		// Leaving tells the others at once, so they hint instead of waiting
		// for the failure detector.
		// A timeout here is normal when the whole cluster stops at once:
		// nobody is left to take the broadcast.
		if err := s.members.Leave(time.Second); err != nil {
			s.log.Info("leaving gossip: not acknowledged; peers will detect the stop", "err", err)
		}
		if err := s.members.Shutdown(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.trans != nil {
		if err := s.trans.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.core != nil && s.inputs != nil {
		s.halt()
		<-s.loopDone
		<-s.syncDead
	}
	if s.engine != nil {
		// Everything the loop applied is synced by now only if the loop
		// stopped normally; a node that stopped after a storage failure
		// must not claim a clean shutdown.
		if s.core != nil && !s.failed.Load() {
			if err := s.engine.Sync(); err == nil {
				if err := storage.MarkClean(s.engine); err != nil {
					errs = append(errs, err)
				}
			}
		}
		if err := s.engine.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// onMessages is the transport's handler: it queues peer messages for the
// event loop. It blocks when the loop is saturated, which pushes back on
// the sending peer through gRPC flow control.
func (s *Server) onMessages(msgs []node.Message) {
	select {
	case s.inputs <- input{msgs: msgs}:
	case <-s.stop:
	}
}

// Do implements httpapi.Backend: it runs one client request through the
// core and waits for its reply.
func (s *Server) Do(ctx context.Context, req node.Request) node.Reply {
	start := time.Now()
	req.ID = s.nextID.Add(1)
	if req.R == 0 || req.W == 0 {
		_, r, w := s.Defaults()
		if req.R == 0 {
			req.R = r
		}
		if req.W == 0 {
			req.W = w
		}
	}
	ch := make(chan node.Reply, 1)
	s.mu.Lock()
	s.waiters[req.ID] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiters, req.ID)
		s.mu.Unlock()
	}()
	r := &req
	select {
	case s.inputs <- input{req: r}:
	case <-s.stop:
		return node.Reply{ID: req.ID, Code: node.CodeUnavailable, Err: ErrStopped.Error()}
	case <-ctx.Done():
		return node.Reply{ID: req.ID, Code: node.CodeUnavailable, Err: ctx.Err().Error()}
	}
	var rep node.Reply
	select {
	case rep = <-ch:
	case <-s.stop:
		rep = node.Reply{ID: req.ID, Code: node.CodeUnavailable, Err: ErrStopped.Error()}
	case <-ctx.Done():
		// The core still finishes the operation; its reply is discarded.
		rep = node.Reply{ID: req.ID, Code: node.CodeQuorumFailed, Err: "request canceled: " + ctx.Err().Error(), Required: max(req.R, req.W)}
	}
	took := time.Since(start)
	s.metrics.observeRequest(req.Op, rep.Code, took)
	s.requestEvent(req, rep, took)
	return rep
}

// NodeID implements httpapi.Backend.
func (s *Server) NodeID() ring.NodeID { return s.cfg.ID }

// Ring implements httpapi.Backend.
func (s *Server) Ring() *ring.Ring { return s.ring.Load() }

// Defaults implements httpapi.Backend.
func (s *Server) Defaults() (n, r, w int) {
	q := s.quorum.Load()
	return s.cfg.N, int(q >> 32), int(uint32(q))
}

// SetDefaults implements httpapi.DefaultsSetter: the R and W of requests
// that name none, from now until the node restarts (then --r and --w
// apply again). Requests carry explicit R and W into the core, so one in
// flight keeps the quorum it started with.
func (s *Server) SetDefaults(r, w int) error {
	if r < 1 || r > s.cfg.N || w < 1 || w > s.cfg.N {
		return fmt.Errorf("R=%d and W=%d must be within 1..N=%d", r, w, s.cfg.N)
	}
	s.quorum.Store(uint64(r)<<32 | uint64(w))
	s.log.Info("default quorums changed", "r", r, "w", w)
	return nil
}

// Members implements httpapi.Backend: every node of the ring and every node
// gossip knows, with liveness as the failure detector reports it. A ring
// member gossip has not heard of (yet) is reported dead.
func (s *Server) Members() []httpapi.Member {
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	ids := map[ring.NodeID]bool{}
	for _, id := range s.Ring().Members() {
		ids[id] = true
	}
	for id := range s.seen {
		ids[id] = true
	}
	httpOf := map[ring.NodeID]string{}
	for _, p := range s.cfg.Cluster {
		httpOf[p.ID] = p.HTTPAddr
	}
	out := make([]httpapi.Member, 0, len(ids))
	for id := range ids {
		m := httpapi.Member{ID: id, HTTPAddr: httpOf[id], Status: node.Dead.String()}
		if seen, ok := s.seen[id]; ok {
			m.Status = seen.Status.String()
			if seen.Meta.HTTPAddr != "" {
				m.HTTPAddr = seen.Meta.HTTPAddr
			}
		}
		if id == s.cfg.ID {
			m.Status, m.HTTPAddr = node.Alive.String(), s.advHTTP
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b httpapi.Member) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out
}

// dashboardPeers lists the members the dashboard reaches through this
// node: every member with a known HTTP address, as /cluster shows them.
func (s *Server) dashboardPeers() []dashboard.Peer {
	var out []dashboard.Peer
	for _, m := range s.Members() {
		if m.HTTPAddr != "" {
			out = append(out, dashboard.Peer{ID: string(m.ID), HTTPAddr: m.HTTPAddr})
		}
	}
	return out
}

// onMember receives gossip's liveness events: it records them for
// /cluster, keeps the transport's peer addresses current and tells the core.
func (s *Server) onMember(ev membership.Event) {
	m := ev.Member
	if m.ID == s.cfg.ID {
		return
	}
	s.peerMu.Lock()
	s.seen[m.ID] = m
	changed := m.Meta.RPCAddr != "" && s.rpc[m.ID] != m.Meta.RPCAddr
	if changed {
		s.rpc[m.ID] = m.Meta.RPCAddr
	}
	peers := maps.Clone(s.rpc)
	s.peerMu.Unlock()
	if changed {
		s.trans.SetPeers(peers)
	}
	if m.Status == node.Alive {
		// A node that was down or not yet started left the connection
		// to it in reconnect backoff; try it now, before the core sends
		// it hints and repairs.
		s.trans.Reconnect(m.ID)
	}
	s.log.Info("member status", "member", string(m.ID), "status", m.Status.String())
	s.events.publish("member", fmt.Sprintf("%s is %s", m.ID, m.Status), map[string]any{"id": m.ID, "status": m.Status.String()})
	select {
	case s.inputs <- input{status: &m}:
	case <-s.stop:
	}
}

// gossipNode maps a gossip address to the node there, for fault rules
// that name destinations by node ID.
func (s *Server) gossipNode(addr string) (string, bool) {
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	for id, m := range s.seen {
		if m.Addr == addr {
			return string(id), true
		}
	}
	return "", false
}

// FaultRules implements httpapi.Faults.
func (s *Server) FaultRules() fault.Rules { return s.inj.Rules() }

// SetFaultRules implements httpapi.Faults.
func (s *Server) SetFaultRules(r fault.Rules) error {
	if err := s.inj.Set(r); err != nil {
		return err
	}
	s.log.Info("fault rules changed", "rules", r)
	s.events.publish("fault", "fault rules changed", map[string]any{"rules": s.inj.Rules()})
	return nil
}

// FaultStats implements httpapi.Faults.
func (s *Server) FaultStats() fault.Stats { return s.inj.Stats() }

// joinLoop joins the cluster through seeds, retrying until one answers:
// seeds may start after this node.
func (s *Server) joinLoop(seeds []string) {
	for attempt := 0; ; attempt++ {
		n, err := s.members.Join(seeds)
		if err == nil && n > 0 {
			s.log.Info("joined gossip", "contacted", n)
			return
		}
		// Seeds that are still starting are the normal case when a cluster
		// starts together: DEBUG for the first 10 s (20 attempts), then a
		// WARN every 5 s while none answers.
		switch {
		case attempt < 20:
			s.log.Debug("cannot join gossip yet; retrying", "seeds", seeds, "err", err)
		case attempt%10 == 0:
			s.log.Warn("cannot join gossip; retrying", "seeds", seeds, "attempts", attempt, "err", err)
		}
		select {
		case <-s.stop:
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func membershipPreset(p string) string {
	if p == "lab" {
		return membership.PresetLab
	}
	return membership.PresetLAN
}

// Local implements httpapi.Backend: this node's own copy of key, read
// straight from storage.
func (s *Server) Local(key []byte) (httpapi.Local, bool, error) {
	var out httpapi.Local
	p := s.Ring().PartitionOf(key)
	raw, err := s.engine.Get(storage.ObjectKey(p, key))
	found := false
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return out, false, err
	default:
		o, err := object.Decode(raw)
		if err != nil {
			return out, false, err
		}
		out.Siblings = o.Siblings()
		out.Context = o.Context()
		found = true
	}
	lo, hi := storage.AllHintsRange()
	err = s.engine.Scan(lo, hi, func(k, _ []byte) error {
		target, hp, uk, ok := storage.ParseHintKey(k)
		if ok && hp == p && string(uk) == string(key) {
			out.Hints = append(out.Hints, ring.NodeID(target))
		}
		return nil
	})
	if err != nil {
		return out, false, err
	}
	return out, found || len(out.Hints) > 0, nil
}

// randomUint64 draws a node's operation-ID base (node.Config.OpIDBase). A
// failure to read randomness leaves IDs that may repeat across restarts,
// which is a smaller risk than refusing to start.
func randomUint64() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return uint64(time.Now().UnixNano())
	}
	return binary.LittleEndian.Uint64(b[:])
}
