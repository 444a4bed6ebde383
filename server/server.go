package server

import (
	"cmp"
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

	"github.com/dynago/dynago/buildinfo"
	"github.com/dynago/dynago/cluster"
	"github.com/dynago/dynago/dashboard"
	"github.com/dynago/dynago/fault"
	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/membership"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/resp"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
	"github.com/dynago/dynago/storage/pebbledb"
	"github.com/dynago/dynago/transport"
)

// ErrStopped is returned for requests made while the server shuts down.
var ErrStopped = errors.New("server: stopped")

// input is one thing for the event loop to feed the core.
type input struct {
	req    *node.Request
	reqs   []node.Request // DoBatch's requests, proposed in order
	msgs   []node.Message
	status *membership.Member
	state  *cluster.State
	// defaults changes the core's default R and W (Node.SetDefaults).
	defaults *defaultsChange
	fn       func() // runs on the loop goroutine, with the core
}

// defaultsChange is a SetDefaults on its way to the core; done gets the
// core's answer once the new defaults are published.
type defaultsChange struct {
	r, w int
	done chan error
}

// held is a Ready's outputs waiting for the fsync numbered seq.
type held struct {
	seq     uint64
	msgs    []node.Message
	replies []node.Reply
	events  []node.Event
	state   *cluster.State
}

// Server is a running dynago node.
type Server struct {
	cfg     Config
	log     *slog.Logger
	engine  *pebbledb.DB
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
	respLn  net.Listener // nil without Config.RESPAddr
	respSrv *resp.Server
	sec     *secState

	// What this node publishes as its HTTP and RPC addresses (advertise.go).
	advHTTP, advRPC string

	inputs   chan input
	syncReq  chan uint64
	syncDone chan syncResult
	stop     chan struct{}
	loopDone chan struct{}
	// looping is set once Start has started the loop and the syncer: a
	// Start that fails before (the RPC port taken, say) must not wait for
	// them to stop.
	looping  bool
	syncDead chan struct{}

	events *eventBus // the node's event log, for /events
	// coreSnapshot is the core's latest Stats (at most statsEvery old),
	// for /admin/stats and the gauges; events come from Ready.Events.
	coreSnapshot atomic.Pointer[node.Stats]

	// Owned by the event loop.
	statsAt   time.Time
	stepAt    time.Time // when the loop began feeding the core its last inputs
	writeSeq  uint64
	syncedSeq uint64
	syncing   bool
	// urgentSeq is the last batch someone waits for soon: anything but
	// acknowledgements no quorum waits for (node.Message.LazySync).
	// lazySince is when the oldest batch after the last fsync's start that
	// only such acknowledgements wait for was applied; zero when none.
	urgentSeq uint64
	lazySince time.Time
	hold      []held
	batch     storage.Batch // collect's, reused every loop pass (the engine keeps none)

	nextID atomic.Uint64
	// clientInflight counts the client requests in Do and DoBatch, against
	// Config.MaxInflight.
	clientInflight atomic.Int64
	mu             sync.Mutex
	waiters        map[uint64]chan node.Reply

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
	ok := false
	defer func() {
		if !ok {
			s.closeResources()
		}
	}()

	var err error
	s.engine, err = pebbledb.Open(filepath.Join(cfg.DataDir, "db"), pebbledb.Options{CacheSize: cfg.CacheSize, MemTableSize: uint64(max(cfg.MemTableSize, 0)), Logger: s.log})
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
	var coreStore node.Store = s.engine
	if cfg.coreStore != nil {
		coreStore = cfg.coreStore(s.engine)
	}
	ncfg := cfg.Node
	ncfg.ID, ncfg.Actor, ncfg.OpIDBase, ncfg.State, ncfg.Ring = cfg.ID, actor, randomUint64(), st, nil
	s.core, err = node.New(ncfg, coreStore)
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
	tc := transport.Config{ID: cfg.ID, ListenAddr: cfg.RPCAddr, Peers: maps.Clone(s.rpc), Mode: transport.ModeStream, Logger: s.log, Metrics: s.metrics.peers}
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
	s.interceptWhenFaulty(cfg.Faults)
	if err := s.trans.Start(); err != nil {
		return nil, fmt.Errorf("server: starting transport: %w", err)
	}

	go s.syncer()
	go s.loop()
	s.looping = true

	s.httpLn, err = net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("server: listening for HTTP: %w", err)
	}
	s.httpLn = s.sec.wrapListener(s.httpLn)
	var handler http.Handler = httpapi.New(s, httpapi.Options{
		MaxKeySize: cfg.Node.MaxKeySize, MaxValueSize: cfg.Node.MaxValueSize, DefaultTimeout: cfg.Node.RequestTimeout,
		Registry: s.reg, Logger: s.log, PeerTLS: s.sec.peerTLS(),
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
	if cfg.RESPAddr != "" {
		if err := s.startRESP(); err != nil {
			return nil, err
		}
	}
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
		Meta:    membership.Meta{HTTPAddr: s.advHTTP, RPCAddr: s.advRPC, Version: buildinfo.Get().Version, Commit: buildinfo.Get().Commit},
		OnEvent: s.onMember,
		OnState: s.onState,
		WrapTransport: func(nt memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
			return wrapGossip(nt, s.inj, s.gossipNode)
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
	attrs := []any{"http", s.advHTTP, "rpc", s.advRPC, "gossip", s.members.Addr()}
	if a := s.RESPAddr(); a != "" {
		attrs = append(attrs, "resp", a)
	}
	n, r, w := s.Defaults()
	s.log.Info("node serving", append(attrs, "ring_version", s.core.State().Version, "n", n, "r", r, "w", w)...)
	return s, nil
}

// startRESP serves the RESP front end on Config.RESPAddr, with HTTP's
// limits, TLS certificate and credentials.
func (s *Server) startRESP() error {
	ln, err := net.Listen("tcp", s.cfg.RESPAddr)
	if err != nil {
		return fmt.Errorf("server: listening for RESP: %w", err)
	}
	s.respLn = ln
	rc := resp.Config{
		MaxKeySize: s.cfg.Node.MaxKeySize, MaxValueSize: s.cfg.Node.MaxValueSize, DefaultTimeout: s.cfg.Node.RequestTimeout,
		Registry: s.reg, Logger: s.log,
	}
	s.sec.respConfig(&rc)
	s.respSrv = resp.New(s, rc)
	go func() {
		if err := s.respSrv.Serve(s.sec.wrapListener(ln)); err != nil && !errors.Is(err, resp.ErrClosed) {
			s.log.Error("resp server stopped", "err", err)
		}
	}()
	return nil
}

// RESPAddr returns the address the RESP front end listens on, "" when it
// is off.
func (s *Server) RESPAddr() string {
	if s.respLn == nil {
		return ""
	}
	return s.respLn.Addr().String()
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
	if s.respSrv != nil {
		if err := s.respSrv.Close(); err != nil {
			errs = append(errs, err)
		}
	} else if s.respLn != nil {
		s.respLn.Close()
	}
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
	if s.looping {
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
// core and waits for its reply. An R or W of 0 is passed on as is: the
// core fills in its current default and checks the quorums against N.
func (s *Server) Do(ctx context.Context, req node.Request) node.Reply {
	start := time.Now()
	if !s.admit(1) {
		rep := s.overloaded()
		s.finish(start, req, rep, false)
		return rep
	}
	defer s.clientInflight.Add(-1)
	c := callPool.Get().(*call)
	c.req = req
	c.req.ID = s.nextID.Add(1)
	// The event log's sample of requests is chosen up front, so that the
	// core traces those (and the ones a client asked to trace) only.
	logged := s.events.admitRequest(start)
	c.req.Trace = c.req.Trace || logged
	id := c.req.ID
	s.mu.Lock()
	s.waiters[id] = c.ch
	s.mu.Unlock()
	select {
	case s.inputs <- input{req: &c.req}:
	case <-s.stop:
		s.forget(id)
		return node.Reply{ID: id, Code: node.CodeUnavailable, Err: ErrStopped.Error()}
	case <-ctx.Done():
		s.forget(id)
		return node.Reply{ID: id, Code: node.CodeUnavailable, Err: ctx.Err().Error()}
	}
	var (
		rep      node.Reply
		consumed bool // the loop has taken c.req: the reply came
	)
	select {
	case rep = <-c.ch:
		consumed = true
	case <-s.stop:
		rep = node.Reply{ID: id, Code: node.CodeUnavailable, Err: ErrStopped.Error()}
	case <-ctx.Done():
		rep = s.canceled(ctx, c.req)
	}
	s.forget(id)
	req = c.req
	if consumed {
		// Only a call whose request the loop has proposed can be reused:
		// otherwise the loop may still read c.req from its queue. forget
		// ran under the lock the loop delivers replies under, so nothing
		// is sent to c.ch any more; drain it in case of a second reply.
		select {
		case <-c.ch:
		default:
		}
		c.req = node.Request{}
		callPool.Put(c)
	}
	s.finish(start, req, rep, logged)
	return rep
}

// call is one Do in flight: the request the loop reads and the channel
// its reply comes back on, pooled because every request needs both.
type call struct {
	req node.Request
	ch  chan node.Reply
}

var callPool = sync.Pool{New: func() any { return &call{ch: make(chan node.Reply, 1)} }}

// forget removes a request's waiter: once it returns, the loop delivers
// no reply for id.
func (s *Server) forget(id uint64) {
	s.mu.Lock()
	delete(s.waiters, id)
	s.mu.Unlock()
}

// canceled is the reply to a request whose caller gave up: the core still
// finishes the operation and its reply is discarded. Required is the
// quorum the request named, else the default as last published (it may
// have changed since the core took it).
func (s *Server) canceled(ctx context.Context, req node.Request) node.Reply {
	_, r, w := s.Defaults()
	required := cmp.Or(req.W, w)
	if req.Op == node.OpGet {
		required = cmp.Or(req.R, r)
	}
	return node.Reply{ID: req.ID, Code: node.CodeQuorumFailed, Err: "request canceled: " + ctx.Err().Error(), Required: required}
}

// admit counts n client requests in, unless that would take the node past
// Config.MaxInflight: then it counts them as shed and reports false. A
// batch larger than the bound is admitted when nothing else is in flight,
// so that it cannot be refused for ever.
func (s *Server) admit(n int) bool {
	if s.cfg.MaxInflight < 0 {
		s.clientInflight.Add(int64(n)) // the caller subtracts it again
		return true
	}
	if got := s.clientInflight.Add(int64(n)); got <= int64(s.cfg.MaxInflight) || got == int64(n) {
		return true
	}
	s.clientInflight.Add(-int64(n))
	s.metrics.shed.Add(float64(n))
	return false
}

// overloaded is the reply to a request admit refused.
func (s *Server) overloaded() node.Reply {
	return node.Reply{Code: node.CodeOverloaded, Err: fmt.Sprintf(
		"overloaded: this node is already answering %d client requests, the most --max-inflight allows; nothing was done: retry after a pause, or through another node", s.cfg.MaxInflight)}
}

// finish records a finished request in the metrics and, when it was
// sampled, the event log.
func (s *Server) finish(start time.Time, req node.Request, rep node.Reply, logged bool) {
	took := time.Since(start)
	s.metrics.observeRequest(req.Op, rep.Code, took)
	if logged {
		s.requestEvent(req, rep, took)
	}
}

// DoBatch runs several independent client requests through the core in
// one hand-off to the event loop, and waits for all their replies: reps[i]
// answers reqs[i]. A RESP pipeline's wave is such a batch; one hand-off
// instead of one per request (and no goroutine per request) is most of
// what pipelining saves on this side. Each request is still its own
// operation: its own quorum, reply, metrics and event.
func (s *Server) DoBatch(ctx context.Context, reqs []node.Request, reps []node.Reply) {
	n := len(reqs)
	if n == 0 {
		return
	}
	start := time.Now()
	if !s.admit(n) {
		for i := range reqs {
			reps[i] = s.overloaded()
			s.finish(start, reqs[i], reps[i], false)
		}
		return
	}
	defer s.clientInflight.Add(-int64(n))
	// The loop reads the requests after this returns if ctx ends first, so
	// they are copied into a slice only the loop keeps.
	own := make([]node.Request, n)
	copy(own, reqs)
	logged := make([]bool, n)
	first := s.nextID.Add(uint64(n)) - uint64(n) + 1
	ch := make(chan node.Reply, n) // buffered: the loop never blocks on it
	for i := range own {
		own[i].ID = first + uint64(i)
		logged[i] = s.events.admitRequest(start)
		own[i].Trace = own[i].Trace || logged[i]
		reps[i] = node.Reply{}
	}
	s.mu.Lock()
	for i := range own {
		s.waiters[own[i].ID] = ch
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		for i := range own {
			delete(s.waiters, own[i].ID)
		}
		s.mu.Unlock()
	}()
	// fill answers every request not answered yet with f's reply.
	fill := func(f func(req node.Request) node.Reply) {
		for i := range own {
			if reps[i].ID == 0 {
				reps[i] = f(own[i])
			}
		}
	}
	stopped := func(req node.Request) node.Reply {
		return node.Reply{ID: req.ID, Code: node.CodeUnavailable, Err: ErrStopped.Error()}
	}
	sent := false
	select {
	case s.inputs <- input{reqs: own}:
		sent = true
	case <-s.stop:
		fill(stopped)
	case <-ctx.Done():
		fill(func(req node.Request) node.Reply {
			return node.Reply{ID: req.ID, Code: node.CodeUnavailable, Err: ctx.Err().Error()}
		})
	}
	for got := 0; sent && got < n; {
		select {
		case rep := <-ch:
			if i := rep.ID - first; i < uint64(n) && reps[i].ID == 0 {
				reps[i] = rep
				got++
			}
		case <-s.stop:
			fill(stopped)
			sent = false
		case <-ctx.Done():
			fill(func(req node.Request) node.Reply { return s.canceled(ctx, req) })
			sent = false
		}
	}
	for i := range own {
		s.finish(start, own[i], reps[i], logged[i])
	}
}

// NodeID implements httpapi.Backend.
func (s *Server) NodeID() ring.NodeID { return s.cfg.ID }

// Ring implements httpapi.Backend.
func (s *Server) Ring() *ring.Ring { return s.ring.Load() }

// Defaults implements httpapi.Backend: N and the default R and W as the
// core last published them (the loop publishes them whenever they change).
func (s *Server) Defaults() (n, r, w int) {
	v := s.view.Load()
	return v.n, v.r, v.w
}

// SetDefaults implements httpapi.DefaultsSetter: it hands the change to
// the core through the event loop, like any input, and returns the core's
// answer (node.ErrBadQuorum for a quorum outside 1..N). Zero keeps a
// value. The change lasts until the node restarts (then --r and --w apply
// again); a request in flight keeps the quorum it started with.
func (s *Server) SetDefaults(r, w int) error {
	ch := &defaultsChange{r: r, w: w, done: make(chan error, 1)}
	select {
	case s.inputs <- input{defaults: ch}:
	case <-s.stop:
		return ErrStopped
	}
	select {
	case err := <-ch.done:
		return err
	case <-s.stop:
		return ErrStopped
	}
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
			m.Version, m.Commit = seen.Meta.Version, seen.Meta.Commit
		}
		if id == s.cfg.ID {
			bi := buildinfo.Get()
			m.Status, m.HTTPAddr, m.Version, m.Commit = node.Alive.String(), s.advHTTP, bi.Version, bi.Commit
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
	s.interceptWhenFaulty(r)
	s.log.Info("fault rules changed", "rules", r)
	s.events.publish("fault", "fault rules changed", map[string]any{"rules": s.inj.Rules()})
	return nil
}

// interceptWhenFaulty puts the fault injector on the transport's send path
// only while it has rules: consulting it costs every message a heap copy
// (the interceptor sees it by pointer), which a node without faults, the
// normal case, should not pay.
func (s *Server) interceptWhenFaulty(r fault.Rules) {
	if r.IsZero() {
		s.trans.SetInterceptor(nil)
		return
	}
	s.trans.SetInterceptor(s.inj)
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
