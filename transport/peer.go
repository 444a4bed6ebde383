package transport

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/proto/dynagopb"
	"github.com/dynago/dynago/ring"
)

// clientKeepalive pings idle connections so that a peer which vanished
// without closing its socket is noticed (and reconnected to) before the next
// batch has to wait out its deadline on a dead connection.
var clientKeepalive = keepalive.ClientParameters{
	Time:                10 * time.Second,
	Timeout:             5 * time.Second,
	PermitWithoutStream: true,
}

// peer is one remote node: its queue, its sender goroutine and its
// connection.
type peer struct {
	t     *Transport
	id    ring.NodeID
	addr  string
	q     *queue
	stats *counters

	ctx     context.Context // canceled when the peer is removed or the transport closes
	cancel  context.CancelFunc
	done    chan struct{} // closed when run has returned
	started bool          // guarded by t.mu

	conn *grpc.ClientConn // owned by the run goroutine
	// node is the client of conn, made once per connection rather than
	// once per batch.
	node dynagopb.NodeClient
	// live is conn, for the pinger (see pingLoop): set when conn is
	// created, cleared before it is closed.
	live  atomic.Pointer[grpc.ClientConn]
	pings sync.WaitGroup
	// active is set by each batch written and cleared by each ping: only
	// a peer in use is pinged.
	active atomic.Bool
	// redial is set by Reconnect: before its next call the run goroutine
	// replaces a connection stuck in reconnect backoff with a new one.
	redial atomic.Bool
	// waitUntil (unix ns) is set by Reconnect: until then calls wait for
	// the connection being established instead of failing at once.
	waitUntil atomic.Int64

	// failing remembers whether the last Step call failed, so that state
	// changes are logged once rather than once per batch.
	failing atomic.Bool
	// reached is set once a call to the peer has succeeded; until then,
	// and for startupGrace after the peer was added, failures are the
	// normal race of nodes starting together and are logged at DEBUG.
	reached atomic.Bool
	created time.Time
}

// startupGrace is how long a peer never reached yet may be unreachable
// before that is worth a WARN: cluster members start in any order.
const startupGrace = 10 * time.Second

func (t *Transport) newPeer(id ring.NodeID, addr string) *peer {
	ctx, cancel := context.WithCancel(t.ctx)
	return &peer{
		created: time.Now(),
		t:       t,
		id:      id,
		addr:    addr,
		q:       newQueue(t.cfg.QueueSize),
		stats:   t.stats.of(id),
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
	}
}

// start runs the sender. The caller holds t.mu.
func (p *peer) start() {
	p.started = true
	go p.run()
}

// stop ends the sender and waits for it; queued messages are dropped and
// counted. The peer must already be unreachable from t.peers, so that no
// Send can enqueue after the queue was drained.
func (p *peer) stop() {
	p.cancel()
	if p.started {
		<-p.done
		return
	}
	p.stats.dropped.Add(uint64(p.q.drain()))
}

// run is the sender. It owns the connection, created lazily so that a peer
// that is never sent to never gets one: NewClient does not dial, gRPC
// connects on the first call and reconnects by itself after failures.
func (p *peer) run() {
	stopPings := make(chan struct{})
	if p.t.cfg.Mode == ModeStream && p.t.cfg.Metrics != nil {
		p.pings.Add(1)
		go p.pingLoop(stopPings)
	}
	defer func() {
		// The pinger uses the connection: stop it first.
		close(stopPings)
		p.pings.Wait()
		p.live.Store(nil)
		if p.conn != nil {
			if err := p.conn.Close(); err != nil {
				p.t.log.Debug("transport: closing connection", "peer", p.id, "err", err)
			}
		}
		p.stats.dropped.Add(uint64(p.q.drain()))
		close(p.done)
	}()
	if p.t.cfg.Mode == ModeStream {
		p.runStream()
	} else {
		p.runUnary()
	}
}

// takeBatch waits for messages and returns whatever is queued, up to
// MaxBatch messages and MaxBatchBytes, in enqueue order; nil once the peer
// is stopping. scratch is reused between calls: envelopes share the
// messages' byte slices, not the messages. The envelopes are new, in one
// allocation: a unary call owns its batch until it returns.
func (p *peer) takeBatch(scratch *[]node.Message) []*dynagopb.Envelope {
	msgs := p.takeMessages(scratch)
	if msgs == nil {
		return nil
	}
	envs := make([]dynagopb.Envelope, len(msgs))
	batch := make([]*dynagopb.Envelope, len(msgs))
	for i := range msgs {
		toEnvelope(&envs[i], &msgs[i])
		batch[i] = &envs[i]
	}
	clear(msgs)
	return batch
}

// takeMessages waits for messages and moves up to MaxBatch of them (and
// MaxBatchBytes) into *scratch, in enqueue order; nil once the peer is
// stopping.
func (p *peer) takeMessages(scratch *[]node.Message) []node.Message {
	cfg := &p.t.cfg
	for {
		msgs := p.q.take((*scratch)[:0], cfg.MaxBatch, cfg.MaxBatchBytes)
		if len(msgs) > 0 {
			*scratch = msgs
			return msgs
		}
		select {
		case <-p.q.ready:
		case <-p.ctx.Done():
			return nil
		}
	}
}

// client returns the peer's client, creating the connection on first use.
func (p *peer) client() (dynagopb.NodeClient, error) {
	if p.conn != nil && p.redial.Swap(false) && p.conn.GetState() == connectivity.TransientFailure {
		// The peer is back (Reconnect) but this connection waits out its
		// backoff: a new connection starts without one. (ClientConn's own
		// ResetConnectBackoff races with gRPC's balancer in v1.85.0 and
		// can crash the process.)
		p.live.Store(nil)
		if err := p.conn.Close(); err != nil {
			p.t.log.Debug("transport: closing connection", "peer", p.id, "err", err)
		}
		p.conn, p.node = nil, nil
	}
	if p.conn == nil {
		conn, err := p.dial()
		if err != nil {
			p.t.log.Error("transport: cannot create client", "peer", p.id, "addr", p.addr, "err", err)
			return nil, err
		}
		p.conn, p.node = conn, dynagopb.NewNodeClient(conn)
		p.live.Store(conn)
	}
	return p.node, nil
}

// runUnary sends each batch in its own Step call, with up to MaxInFlight
// calls at a time. Taking a call slot before taking the batch lets messages
// pile up while all slots are busy, so batches grow exactly when the peer is
// the bottleneck.
func (p *peer) runUnary() {
	var scratch []node.Message
	var calls sync.WaitGroup
	defer calls.Wait()
	slots := make(chan struct{}, p.t.cfg.MaxInFlight)
	for {
		select {
		case slots <- struct{}{}:
		case <-p.ctx.Done():
			return
		}
		batch := p.takeBatch(&scratch)
		if batch == nil {
			return
		}
		client, err := p.client()
		if err != nil {
			p.stats.failed.Add(uint64(len(batch)))
			<-slots
			continue
		}
		calls.Add(1)
		go func() {
			defer calls.Done()
			p.step(client, batch)
			<-slots
		}()
	}
}

func (p *peer) dial() (*grpc.ClientConn, error) {
	// Plaintext unless the node runs with certificates (--certs-dir).
	creds := insecure.NewCredentials()
	if p.t.cfg.ClientTLS != nil {
		creds = credentials.NewTLS(p.t.cfg.ClientTLS())
	}
	return grpc.NewClient(p.addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallSendMsgSize(maxMsgSize),
			grpc.MaxCallRecvMsgSize(maxMsgSize),
			grpc.ForceCodecV2(peerCodec),
		),
		grpc.WithKeepaliveParams(clientKeepalive),
		grpc.WithStaticStreamWindowSize(streamWindow),
		grpc.WithStaticConnWindowSize(connWindow),
		grpc.WithWriteBufferSize(ioBuffer),
		grpc.WithReadBufferSize(ioBuffer),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  50 * time.Millisecond,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   p.t.cfg.MaxReconnectDelay,
			},
			// A connection attempt to a partitioned host hangs until
			// this; no call waits longer than CallTimeout anyway.
			MinConnectTimeout: p.t.cfg.CallTimeout,
		}),
	)
}

// step makes one Step call and counts its outcome. Calls are not
// wait-for-ready: while the peer is known to be down they fail at once, and
// the core's timeouts decide what happens next.
func (p *peer) step(client dynagopb.NodeClient, batch []*dynagopb.Envelope) {
	ctx, cancel := context.WithTimeout(p.ctx, p.t.cfg.CallTimeout)
	start := time.Now()
	ack, err := client.Step(ctx, &dynagopb.Batch{Messages: batch}, p.callOptions()...)
	p.observe(MethodStep, time.Since(start), err)
	cancel()
	n := uint64(len(batch))
	if err != nil {
		p.failed(n, err)
		return
	}
	rejected := min(uint64(ack.GetRejected()), n)
	p.stats.sent.Add(n - rejected)
	p.stats.failed.Add(rejected)
	if rejected > 0 {
		p.t.log.Warn("transport: peer rejected messages (wrong node at this address?)",
			"peer", p.id, "addr", p.addr, "rejected", rejected)
	}
	p.reachable()
}

// reconnectGrace is how long after Reconnect calls wait for the connection
// (bounded by CallTimeout) rather than fail fast: long enough for a
// connection attempt on a loaded machine, short enough that a node which
// died again right away costs little.
const reconnectGrace = time.Second

// callOptions makes calls wait for the connection while a Reconnect is
// fresh: gRPC re-dials in the background, and a call made before the dial
// completes would otherwise fail at once and lose its batch.
func (p *peer) callOptions() []grpc.CallOption {
	if time.Now().UnixNano() < p.waitUntil.Load() {
		return []grpc.CallOption{grpc.WaitForReady(true)}
	}
	return nil
}

// failed counts n messages lost to err and logs the peer going down once.
func (p *peer) failed(n uint64, err error) {
	p.stats.failed.Add(n)
	if p.ctx.Err() != nil {
		return // removed or closing: not the peer's fault
	}
	if !p.reached.Load() && time.Since(p.created) < startupGrace {
		p.t.log.Debug("transport: peer not reachable yet", "peer", p.id, "addr", p.addr, "err", err)
		return
	}
	if p.failing.CompareAndSwap(false, true) {
		p.t.log.Warn("transport: peer unreachable", "peer", p.id, "addr", p.addr, "err", err)
	} else {
		p.t.log.Debug("transport: send failed", "peer", p.id, "messages", n, "err", err)
	}
}

// reachable logs the peer coming back, once.
func (p *peer) reachable() {
	p.reached.Store(true)
	if p.failing.CompareAndSwap(true, false) {
		p.t.log.Info("transport: peer reachable again", "peer", p.id, "addr", p.addr)
	}
}

// observe records one call's latency or failure in the transport's
// Metrics. A call that failed because the peer was being removed or the
// transport closed says nothing about the peer and is not counted.
func (p *peer) observe(method string, d time.Duration, err error) {
	if err != nil && p.ctx.Err() != nil {
		return
	}
	p.t.cfg.Metrics.observe(p.id, method, d, err)
}

// pingLoop measures a round trip to the peer every PingInterval, for
// ModeStream, whose writes have no answer to time. It pings only a peer
// sent to since the last ping, over a connection that is ready: a peer
// that is down or idle is not dialled for the sake of a measurement (the
// sends that fail already count its failures), and neither is a node that
// left the cluster, which nothing sends to any more. The fault lab's Interceptor acts on messages,
// not on pings: an injected partition does not show here.
func (p *peer) pingLoop(stop <-chan struct{}) {
	defer p.pings.Done()
	tick := time.NewTicker(p.t.cfg.PingInterval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-p.ctx.Done():
			return
		case <-tick.C:
		}
		conn := p.live.Load()
		if conn == nil || conn.GetState() != connectivity.Ready || !p.active.Swap(false) {
			continue
		}
		start := time.Now()
		err := p.ping(conn)
		if err != nil && p.live.Load() != conn {
			continue // the sender replaced the connection (Reconnect) under the ping
		}
		p.observe(MethodPing, time.Since(start), err)
	}
}

// ping opens a stream addressed to the peer and waits for its accept (the
// response headers), one round trip over an established connection, then
// cancels it: the receiver ends its side when the cancellation arrives.
func (p *peer) ping(conn *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(p.ctx, p.t.cfg.CallTimeout)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, addresseeKey, string(p.id))
	s, err := dynagopb.NewNodeClient(conn).Stream(ctx)
	if err != nil {
		return err
	}
	md, err := s.Header()
	if err == nil && md == nil {
		// Refused (another node at this address, or closing).
		if _, err = s.CloseAndRecv(); err == nil {
			err = io.ErrUnexpectedEOF
		}
	}
	return err
}
