package transport

import (
	"context"
	"google.golang.org/grpc/credentials"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

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
	defer func() {
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
// messages' byte slices, not the messages.
func (p *peer) takeBatch(scratch *[]node.Message) []*dynagopb.Envelope {
	cfg := &p.t.cfg
	for {
		msgs := p.q.take((*scratch)[:0], cfg.MaxBatch, cfg.MaxBatchBytes)
		if len(msgs) > 0 {
			batch := make([]*dynagopb.Envelope, len(msgs))
			for i := range msgs {
				batch[i] = toEnvelope(&msgs[i])
			}
			clear(msgs)
			*scratch = msgs
			return batch
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
		if err := p.conn.Close(); err != nil {
			p.t.log.Debug("transport: closing connection", "peer", p.id, "err", err)
		}
		p.conn = nil
	}
	if p.conn == nil {
		conn, err := p.dial()
		if err != nil {
			p.t.log.Error("transport: cannot create client", "peer", p.id, "addr", p.addr, "err", err)
			return nil, err
		}
		p.conn = conn
	}
	return dynagopb.NewNodeClient(p.conn), nil
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
		),
		grpc.WithKeepaliveParams(clientKeepalive),
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
	ack, err := client.Step(ctx, &dynagopb.Batch{Messages: batch}, p.callOptions()...)
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
