package transport

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"time"

	"github.com/dynago/dynago/ring"
)

// Defaults for Config fields left zero.
const (
	// DefaultCallTimeout bounds one Step call. It only has to cover a
	// loopback or LAN round trip of one batch; the core's own request
	// timeouts (seconds) are what clients see.
	DefaultCallTimeout = 2 * time.Second
	// DefaultQueueSize is messages queued per peer. At a few hundred
	// thousand messages per second it absorbs tens of milliseconds of
	// stall before dropping.
	DefaultQueueSize = 8192
	// DefaultMaxBatch is messages per Step call: large enough to amortise
	// the per-call cost, small enough that one batch is not a latency spike.
	DefaultMaxBatch = 256
	// DefaultMaxBatchBytes caps the approximate payload of one Step call,
	// so that a batch of 1 MiB values is split rather than hitting the
	// message size limit.
	DefaultMaxBatchBytes = 4 << 20
	// DefaultMaxInFlight is Step calls in flight per peer, so that one slow
	// call does not serialise a peer's traffic.
	DefaultMaxInFlight = 4
	// DefaultMaxReconnectDelay caps gRPC's reconnect backoff. gRPC's own
	// default (120s) would hide a revived peer for minutes; in a cluster a
	// refused connect attempt per second per peer costs nothing.
	DefaultMaxReconnectDelay = time.Second
	// DefaultPingInterval spaces the round trips ModeStream measures per
	// peer: one small call every few seconds costs nothing and still shows
	// a peer turning slow within a scrape interval or two.
	DefaultPingInterval = 5 * time.Second
)

// maxMsgSize is the gRPC message size limit on both sides. Values are up to
// 1 MiB and an object may hold several siblings, so a single message can be
// a few MiB; batches are split at MaxBatchBytes well below this.
const maxMsgSize = 64 << 20

// Flow-control windows of the peer connections, fixed rather than left to
// gRPC's bandwidth estimator. The estimator sends a PING with a window
// update whenever data arrives and none is outstanding, which with
// Dynamo's traffic (a request, an answer, a pause) is nearly every message:
// two more writes and reads, and wake-ups, per message on both nodes. A
// stream window of one full batch (DefaultMaxBatchBytes) lets a batch go
// without waiting for a window update; the connection window leaves room
// for the Stream and a few Step calls at once. They bound what a sender may
// have in flight, not memory the receiver allocates up front; a network
// whose bandwidth-delay product is larger than streamWindow (more than
// 4 MiB: 10 Gb/s at over 3 ms) would move bulk data slower than with the
// estimator.
const (
	streamWindow = 4 << 20
	connWindow   = 16 << 20
)

// ioBuffer is the read and write buffer of each peer connection, 8 times
// gRPC's default of 32 KiB: bulk traffic (hints, repairs, 16 KiB objects)
// then takes fewer, larger reads and writes (measured: 0.82x the CPU per
// 16 KiB message, 0.89x per fan-out round with 32 rounds in flight). The
// write buffer is shared, held only while flushing; the read buffer is
// held per connection: 256 KiB for each of the two connections between
// two nodes.
const ioBuffer = 256 << 10

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("transport: invalid config")

// ErrClosed is returned by Start after Close.
var ErrClosed = errors.New("transport: closed")

// ErrStarted is returned by a second Start.
var ErrStarted = errors.New("transport: already started")

// Config configures a Transport.
type Config struct {
	// ID is this node's ID. Messages with To == ID are delivered locally;
	// received envelopes addressed to another ID are rejected.
	ID ring.NodeID
	// ListenAddr is the host:port the gRPC server listens on (":0" style
	// ports allowed; Addr reports the real one after Start).
	ListenAddr string
	// Peers maps every other node to its RPC address (host:port). An entry
	// for ID itself is ignored.
	Peers map[ring.NodeID]string
	// CallTimeout is the deadline of each Step call. Default 2s.
	CallTimeout time.Duration
	// QueueSize is the per-peer outbound queue, in messages. When full, Send
	// drops and counts. Memory follows the queue's length, not this bound.
	// Default 8192.
	QueueSize int
	// MaxBatch is the most messages per Step call. Default 256, at most
	// 65536 (receivers refuse larger batches).
	MaxBatch int
	// MaxBatchBytes caps the approximate payload bytes of one Step call; a
	// single larger message still goes, alone. Default 4 MiB.
	MaxBatchBytes int
	// MaxInFlight is the most Step calls in flight per peer. Default 4.
	MaxInFlight int
	// MaxReconnectDelay caps the backoff between connection attempts to an
	// unreachable peer. Default 1s.
	MaxReconnectDelay time.Duration
	// Mode selects one stream per peer (ModeStream, the default) or a
	// unary Step call per batch (ModeUnary).
	Mode Mode
	// Logger receives connection state changes; it should name the node
	// (the server's carries node=ID), as the transport adds only its
	// component. Default: discard.
	Logger *slog.Logger
	// ServerTLS, when set, serves the peer port over TLS; set ClientAuth to
	// require peers' certificates (mutual TLS, see package security).
	// ClientTLS returns the TLS config for each new outbound connection
	// (called per dial, so reloaded certificates apply). Both nil: plaintext.
	ServerTLS *tls.Config
	ClientTLS func() *tls.Config
	// Metrics, when set, receives per-peer call latencies and failures
	// (see Metrics). Nil: none are recorded.
	Metrics *Metrics
	// PingInterval is how often, in ModeStream with Metrics set, the
	// transport measures a round trip to each peer it has a ready
	// connection to (stream writes have no answer to time). Default 5s.
	PingInterval time.Duration
}

// validate fills defaults and rejects bad values. It copies Peers so that the
// caller may reuse its map.
func (c *Config) validate() error {
	if c.ID == "" {
		return fmt.Errorf("%w: empty ID", ErrConfig)
	}
	if c.ListenAddr == "" {
		return fmt.Errorf("%w: empty ListenAddr", ErrConfig)
	}
	if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		return fmt.Errorf("%w: ListenAddr: %w", ErrConfig, err)
	}
	for id, addr := range c.Peers {
		if err := checkPeer(id, addr); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	c.Peers = maps.Clone(c.Peers)
	delete(c.Peers, c.ID)
	if c.Peers == nil {
		c.Peers = map[ring.NodeID]string{}
	}
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{
		{"QueueSize", &c.QueueSize, DefaultQueueSize},
		{"MaxBatch", &c.MaxBatch, DefaultMaxBatch},
		{"MaxBatchBytes", &c.MaxBatchBytes, DefaultMaxBatchBytes},
		{"MaxInFlight", &c.MaxInFlight, DefaultMaxInFlight},
	} {
		if *f.v < 0 {
			return fmt.Errorf("%w: negative %s %d", ErrConfig, f.name, *f.v)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if c.Mode != ModeUnary && c.Mode != ModeStream {
		return fmt.Errorf("%w: unknown %v", ErrConfig, c.Mode)
	}
	if c.MaxBatch > maxBatchEnvelopes {
		// A receiver refuses larger batches (see maxBatchEnvelopes).
		return fmt.Errorf("%w: MaxBatch %d above %d", ErrConfig, c.MaxBatch, maxBatchEnvelopes)
	}
	if c.MaxBatchBytes > maxMsgSize/2 {
		return fmt.Errorf("%w: MaxBatchBytes %d above %d", ErrConfig, c.MaxBatchBytes, maxMsgSize/2)
	}
	for _, f := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"CallTimeout", &c.CallTimeout, DefaultCallTimeout},
		{"MaxReconnectDelay", &c.MaxReconnectDelay, DefaultMaxReconnectDelay},
		{"PingInterval", &c.PingInterval, DefaultPingInterval},
	} {
		if *f.v < 0 {
			return fmt.Errorf("%w: negative %s %v", ErrConfig, f.name, *f.v)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

func checkPeer(id ring.NodeID, addr string) error {
	if id == "" {
		return errors.New("peer with empty ID")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("peer %s address %q: %w", id, addr, err)
	}
	return nil
}
