package transport

import (
	"context"
	"fmt"
	"google.golang.org/grpc/credentials"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/proto/dynagopb"
	"github.com/dynago/dynago/ring"
)

// Handler receives inbound messages: batches from peers and messages this
// node sent to itself. It is called concurrently from gRPC server goroutines
// and from the local delivery goroutine, and must not block for long (the
// daemon enqueues into its event loop). It owns msgs and their buffers.
type Handler func(msgs []node.Message)

type lifecycle int

const (
	stateNew lifecycle = iota
	stateStarted
	stateClosed
)

// Transport sends node.Messages to peers and receives theirs. Its methods
// are safe for concurrent use.
type Transport struct {
	cfg     Config
	handler Handler
	log     *slog.Logger
	stats   *statsTable
	malformedState
	selfStats   *counters
	local       *queue // messages to self, delivered by deliverLocal
	delays      *delayQueue
	interceptor atomic.Pointer[interceptorBox]

	// ctx is canceled by Close and is the parent of every peer's context,
	// so that closing aborts Step calls in flight instead of waiting out
	// their deadlines.
	ctx    context.Context
	cancel context.CancelFunc
	stop   chan struct{} // closed by Close: ends deliverLocal and the delay queue
	wg     sync.WaitGroup

	mu    sync.RWMutex // guards the fields below; Send holds it shared
	state lifecycle
	peers map[ring.NodeID]*peer
	srv   *grpc.Server
	addr  string
}

// New validates cfg and returns a Transport that is not yet listening. Send
// may be called before Start: messages queue until Start runs the senders.
func New(cfg Config, h Handler) (*Transport, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("%w: nil Handler", ErrConfig)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{
		cfg:     cfg,
		handler: h,
		log:     cfg.Logger.With("component", "transport"), // the caller's logger names the node (Config.Logger)
		stats:   newStatsTable(),
		local:   newQueue(cfg.QueueSize),
		delays:  newDelayQueue(),
		ctx:     ctx,
		cancel:  cancel,
		stop:    make(chan struct{}),
		peers:   make(map[ring.NodeID]*peer, len(cfg.Peers)),
	}
	t.selfStats = t.stats.of(cfg.ID)
	for id, addr := range cfg.Peers {
		t.peers[id] = t.newPeer(id, addr)
	}
	return t, nil
}

// Start listens on ListenAddr, serves the Node service and starts the
// senders. Addr is valid once it returns nil.
func (t *Transport) Start() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch t.state {
	case stateStarted:
		return ErrStarted
	case stateClosed:
		return ErrClosed
	}
	lis, err := net.Listen("tcp", t.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("transport: listen on %s: %w", t.cfg.ListenAddr, err)
	}
	opts := []grpc.ServerOption{}
	if t.cfg.ServerTLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(t.cfg.ServerTLS)))
	}
	t.srv = grpc.NewServer(append(opts,
		grpc.MaxRecvMsgSize(maxMsgSize),
		grpc.MaxSendMsgSize(maxMsgSize),
		grpc.InTapHandle(t.endOnClose),
		grpc.ForceServerCodecV2(peerCodec),
		grpc.StaticStreamWindowSize(streamWindow),
		grpc.StaticConnWindowSize(connWindow),
		grpc.WriteBufferSize(ioBuffer),
		grpc.ReadBufferSize(ioBuffer),
		// Peers ping idle connections every clientKeepalive.Time; allow
		// that, but not a misconfigured client pinging in a tight loop.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             clientKeepalive.Time / 2,
			PermitWithoutStream: true,
		}),
		// Detect a peer host that vanished without closing its connection
		// (power loss, partition), so its half-open connection is freed.
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    30 * time.Second,
			Timeout: 10 * time.Second,
		}),
	)...)
	dynagopb.RegisterNodeServer(t.srv, &nodeServer{t: t})
	t.addr = lis.Addr().String()
	t.state = stateStarted

	t.wg.Add(3)
	go func() {
		defer t.wg.Done()
		// Serve returns nil after Stop/GracefulStop; anything else means
		// the listener failed and this node can no longer be reached.
		if err := t.srv.Serve(lis); err != nil {
			t.log.Error("transport: gRPC server stopped", "err", err)
		}
	}()
	go t.deliverLocal()
	go func() {
		defer t.wg.Done()
		t.delays.run(t.stop, t.enqueue)
	}()
	for _, p := range t.peers {
		p.start()
	}
	t.log.Info("transport: listening", "addr", t.addr, "peers", len(t.peers))
	return nil
}

// Addr returns the address the server listens on ("" before Start).
func (t *Transport) Addr() string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.addr
}

// Send hands m to the peer m.To and returns without blocking: it enqueues m
// on that peer's queue, or drops and counts it when the queue is full, the
// peer is unknown or the transport is closed. Messages to this node go to
// the Handler from another goroutine.
//
// Send takes ownership of m's byte slices: the caller must not modify them
// afterwards, because they are read while the message is encoded.
func (t *Transport) Send(m node.Message) {
	if m.To != t.cfg.ID {
		if b := t.interceptor.Load(); b != nil {
			var held bool
			if m, held = t.intercept(b.i, m); held {
				return
			}
		}
	}
	t.enqueue(m)
}

// intercept lets a fault interceptor drop, delay or alter m, and reports
// whether it took m off the normal path. It is a function of its own, on a
// copy, because the interceptor takes the message by pointer: taken in
// Send, that address would move every message to the heap, faults or not.
func (t *Transport) intercept(i Interceptor, m node.Message) (node.Message, bool) {
	delay, drop := i.Outbound(&m)
	if drop {
		t.stats.of(m.To).faultDropped.Add(1)
		return m, true
	}
	if delay > 0 {
		c := t.stats.of(m.To)
		c.faultDelayed.Add(1)
		if !t.delays.add(m, delay) {
			c.dropped.Add(1)
		}
		return m, true
	}
	return m, false
}

// enqueue puts m on its queue without blocking, or counts it as dropped.
func (t *Transport) enqueue(m node.Message) {
	var c *counters
	t.mu.RLock()
	// Pushing under the read lock is what lets SetPeers and Close drain a
	// queue knowing that nothing can be added to it afterwards.
	if t.state != stateClosed {
		var q *queue
		if m.To == t.cfg.ID {
			q, c = t.local, t.selfStats
		} else if p := t.peers[m.To]; p != nil {
			q, c = p.q, p.stats
		}
		if q != nil && q.push(m) {
			t.mu.RUnlock()
			return
		}
	}
	t.mu.RUnlock()
	if c == nil {
		c = t.stats.of(m.To)
	}
	c.dropped.Add(1)
}

// SetPeers replaces the peer set: new peers get a sender, removed peers are
// stopped (their queued messages dropped and counted), and a peer whose
// address changed is replaced, so nothing more goes to the old address. An
// entry for this node is ignored; an invalid entry is logged and treated as
// absent. It returns once removed peers have stopped.
func (t *Transport) SetPeers(peers map[ring.NodeID]string) {
	want := make(map[ring.NodeID]string, len(peers))
	for id, addr := range peers {
		if id == t.cfg.ID {
			continue
		}
		if err := checkPeer(id, addr); err != nil {
			t.log.Error("transport: ignoring peer", "err", err)
			continue
		}
		want[id] = addr
	}
	var stale []*peer
	var gone []ring.NodeID
	t.mu.Lock()
	if t.state == stateClosed {
		t.mu.Unlock()
		return
	}
	for id, p := range t.peers {
		if addr, ok := want[id]; !ok || addr != p.addr {
			stale = append(stale, p)
			delete(t.peers, id)
			if !ok {
				gone = append(gone, id)
			}
		}
	}
	for id, addr := range want {
		if _, ok := t.peers[id]; ok {
			continue
		}
		p := t.newPeer(id, addr)
		t.peers[id] = p
		if t.state == stateStarted {
			p.start()
		}
	}
	t.mu.Unlock()
	// Stopped outside the lock: stopping waits for the peer's calls to
	// abort, and Send must not wait for that.
	for _, p := range stale {
		p.stop()
	}
	// After stop: a call that was still running cannot bring the series back.
	for _, id := range gone {
		t.cfg.Metrics.Forget(id)
	}
}

// Reconnect tells the transport that id has just been seen alive (the
// failure detector says so). A connection to it that failed sits out
// gRPC's reconnect backoff, up to MaxReconnectDelay, and every send in
// that time fails at once; Reconnect ends the wait, so messages to a node
// that has just started or restarted (hints for it, say) go through
// instead of being dropped until the next attempt: for a short while
// after Reconnect, calls wait for the connection rather than fail fast.
func (t *Transport) Reconnect(id ring.NodeID) {
	t.mu.Lock()
	p := t.peers[id]
	t.mu.Unlock()
	if p == nil {
		return
	}
	p.waitUntil.Store(time.Now().Add(reconnectGrace).UnixNano())
	p.redial.Store(true)
}

// SetInterceptor installs i on outbound traffic; nil removes it. Messages
// already delayed keep their delay.
func (t *Transport) SetInterceptor(i Interceptor) {
	if i == nil {
		t.interceptor.Store(nil)
		return
	}
	t.interceptor.Store(&interceptorBox{i: i})
}

// Stats returns a snapshot of the counters.
func (t *Transport) Stats() Stats {
	st := t.stats.snapshot()
	st.Malformed = t.malformed.Load()
	return st
}

// Close stops the senders (queued and delayed messages are dropped and
// counted), aborts Step calls in flight, closes the connections and stops
// the server: gracefully, letting inbound Step calls finish (inbound
// streams, which never finish by themselves, are ended at once; see
// endOnClose), then forcibly once CallTimeout has passed. It waits for a Handler call in progress up to the
// same deadline, and once it returns the Handler is not called again (but a
// call stuck past the deadline may still be running). Calling Close again
// does nothing.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.state == stateClosed {
		t.mu.Unlock()
		return nil
	}
	t.state = stateClosed
	peers := t.peers
	t.peers = make(map[ring.NodeID]*peer)
	srv := t.srv
	t.mu.Unlock()

	deadline := time.NewTimer(t.cfg.CallTimeout)
	defer deadline.Stop()
	t.cancel()
	for _, p := range peers {
		p.stop()
	}
	close(t.stop)
	if srv != nil {
		stopped := make(chan struct{})
		go func() {
			srv.GracefulStop()
			close(stopped)
		}()
		select {
		case <-stopped:
		case <-deadline.C:
			t.log.Warn("transport: inbound calls still running after CallTimeout; stopping the server forcibly")
			srv.Stop()
			<-stopped
		}
	}
	finished := make(chan struct{})
	go func() {
		t.wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-deadline.C:
		t.log.Warn("transport: a Handler call is still running after CallTimeout; not waiting for it")
	}
	for _, m := range t.delays.close() {
		t.stats.of(m.To).dropped.Add(1)
	}
	t.selfStats.dropped.Add(uint64(t.local.drain()))
	t.log.Info("transport: closed")
	return nil
}

// accepting reports whether inbound messages may still reach the Handler.
func (t *Transport) accepting() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.state != stateClosed
}

// deliverLocal hands messages this node sent to itself to the Handler, in
// batches, so that the core never re-enters itself from Send.
func (t *Transport) deliverLocal() {
	defer t.wg.Done()
	for {
		select {
		case <-t.stop:
			return
		case <-t.local.ready:
		}
		for {
			msgs := t.local.take(nil, t.cfg.MaxBatch, math.MaxInt)
			if len(msgs) == 0 {
				break
			}
			t.handler(msgs)
			t.selfStats.sent.Add(uint64(len(msgs)))
			t.selfStats.received.Add(uint64(len(msgs)))
			select {
			case <-t.stop:
				return
			default:
			}
		}
	}
}
