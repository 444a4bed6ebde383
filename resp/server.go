package resp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/redcon"

	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/node"
)

// Backend is what a node offers the RESP front end: the same coordinator
// entry point as the HTTP API's (httpapi.Backend implements it).
type Backend interface {
	// Do runs a put, get or delete through the node's core and returns its
	// Reply; it returns early when ctx ends.
	Do(ctx context.Context, req node.Request) node.Reply
}

// Batcher is a Backend that also takes several independent requests in
// one hand-off (server.Server.DoBatch): a pipeline's wave of single-request
// commands then costs the node one queue entry, not one per command and a
// goroutine each. reps[i] answers reqs[i].
type Batcher interface {
	DoBatch(ctx context.Context, reqs []node.Request, reps []node.Reply)
}

// Defaults of Config.
const (
	// DefaultIdleTimeout closes a connection that sends nothing for this
	// long, and bounds the time to deliver one command. Redis never closes
	// idle clients by default; a store on an open network cannot let a
	// client hold a connection and its buffers for ever. Pooled clients
	// (go-redis) notice a closed idle connection and dial again.
	DefaultIdleTimeout = 5 * time.Minute
	// DefaultMaxConns is Redis's maxclients.
	DefaultMaxConns = 10000
	// DefaultMaxInFlight bounds the commands of one connection's pipeline
	// that run at once (see the package doc): enough for redis-benchmark's
	// -P 16 and a busy client library, without letting one connection
	// queue thousands of requests into the core.
	DefaultMaxInFlight = 128
	// commandOverhead is what a command may carry beside its key and value:
	// the command name, options and a context (at most
	// httpapi.MaxContextHeaderSize), with room to spare.
	commandOverhead = 64 << 10
)

// Config configures a Server. Zero fields take the defaults of
// node.DefaultConfig (sizes, request timeout), httpapi or this package.
type Config struct {
	MaxKeySize     int           // bytes; default node.DefaultConfig().MaxKeySize
	MaxValueSize   int           // bytes; default node.DefaultConfig().MaxValueSize
	DefaultTimeout time.Duration // coordination timeout without TIMEOUT; default node.DefaultConfig().RequestTimeout
	MaxTimeout     time.Duration // caps TIMEOUT; default httpapi.DefaultMaxTimeout
	IdleTimeout    time.Duration // see DefaultIdleTimeout; negative = never
	MaxConns       int           // connections served at once; more are closed at accept
	MaxInFlight    int           // commands of one pipeline running at once

	// RequireAuth makes every command but PING, AUTH, HELLO and QUIT need
	// a role: from AUTH (a token Authenticate knows) or from a verified
	// client certificate (CertRole). The server sets it exactly when its
	// HTTP API requires credentials.
	RequireAuth bool
	// Authenticate returns the role of a token; nil means no token is
	// valid.
	Authenticate func(token string) (role string, ok bool)
	// CertRole returns the role a verified client certificate carries ("" for
	// none); nil means certificates give no role.
	CertRole func(*x509.Certificate) string
	// AuthGeneration returns a number that changes whenever
	// Authenticate's answers may have changed (the tokens file was
	// reloaded). A connection authenticated by AUTH checks its token
	// again at its next command after a change, so that a revoked token
	// stops working on open connections. nil: tokens never change.
	AuthGeneration func() uint64

	// Registry, when set, gets the front end's metrics:
	// dynago_resp_connections (open now) and
	// dynago_resp_connections_rejected_total (closed at accept for
	// MaxConns); its writes above the soft sibling limit count in
	// dynago_sibling_warnings_total, shared with HTTP
	// (httpapi.SiblingWarnings).
	Registry prometheus.Registerer

	Logger *slog.Logger
}

func (c *Config) fillDefaults() {
	preset := node.DefaultConfig()
	if c.MaxKeySize <= 0 {
		c.MaxKeySize = preset.MaxKeySize
	}
	if c.MaxValueSize <= 0 {
		c.MaxValueSize = preset.MaxValueSize
	}
	if c.MaxTimeout <= 0 {
		c.MaxTimeout = httpapi.DefaultMaxTimeout
	}
	if c.DefaultTimeout <= 0 {
		c.DefaultTimeout = preset.RequestTimeout
	}
	c.DefaultTimeout = min(c.DefaultTimeout, c.MaxTimeout)
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Server serves RESP on one listener.
type Server struct {
	b   Backend
	cfg Config
	rc  *redcon.Server

	// ctx ends on Close: requests in flight stop waiting for the core, so
	// that Close does not wait out their timeouts.
	ctx    context.Context
	cancel context.CancelFunc

	open            prometheus.Gauge
	rejected        prometheus.Counter
	siblingWarnings prometheus.Counter

	mu     sync.Mutex
	ln     net.Listener
	conns  int
	closed bool
	wg     sync.WaitGroup // one per accepted connection, and Serve itself
}

// New returns a Server of the node behind b.
func New(b Backend, cfg Config) *Server {
	cfg.fillDefaults()
	s := &Server{b: b, cfg: cfg,
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dynago_resp_connections",
			Help: "RESP connections open.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dynago_resp_connections_rejected_total",
			Help: "RESP connections closed at accept because MaxConns were open.",
		}),
	}
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(s.open, s.rejected)
	}
	s.siblingWarnings = httpapi.SiblingWarnings(cfg.Registry)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.rc = redcon.NewServerNetwork("tcp", "", s.serveCommand, s.accept, s.connClosed)
	if cfg.IdleTimeout > 0 {
		s.rc.SetIdleClose(cfg.IdleTimeout)
	}
	return s
}

// ErrClosed is returned by Serve after Close.
var ErrClosed = errors.New("resp: server closed")

// Serve accepts connections on ln until Close. ln may be a TLS listener
// (crypto/tls.NewListener): the handshake then happens on a connection's
// first read. Serve closes ln.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	s.ln = ln
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	// redcon closes every connection it serves when Serve returns, which it
	// does once ln is closed.
	return s.rc.Serve(&limitListener{Listener: ln, limit: int64(s.cfg.MaxValueSize + s.cfg.MaxKeySize + commandOverhead)})
}

// Close stops accepting, closes every connection, and returns once their
// handlers have ended. Requests in flight get an error reply (their
// outcome, for writes, is unknown, as with any dropped connection).
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ln := s.ln
	s.mu.Unlock()
	s.cancel()
	var err error
	if ln != nil {
		err = ln.Close()
	}
	s.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// accept admits a connection unless the server is closing or full.
func (s *Server) accept(c redcon.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.conns >= s.cfg.MaxConns {
		// Closed without a reply: writing one here could block the accept
		// loop (a TLS handshake, a client that does not read).
		if !s.closed {
			s.rejected.Inc()
		}
		return false
	}
	s.conns++
	s.open.Inc()
	s.wg.Add(1)
	lc, _ := c.NetConn().(*limitConn)
	c.SetContext(&connState{lc: lc})
	return true
}

func (s *Server) connClosed(c redcon.Conn, err error) {
	if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.ErrUnexpectedEOF) {
		s.cfg.Logger.Debug("resp: connection ended", "remote", c.RemoteAddr(), "err", err)
	}
	s.mu.Lock()
	s.conns--
	s.mu.Unlock()
	s.open.Dec()
	s.wg.Done()
}

// limitListener wraps every accepted connection in a limitConn.
type limitListener struct {
	net.Listener
	limit int64
}

func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &limitConn{Conn: c, limit: l.limit}, nil
}

// limitConn bounds how much one command can make the server buffer.
// redcon grows its read buffer until a command is complete, whatever the
// lengths the client declares, so a client could otherwise stream
// gigabytes into one bulk string. The count of bytes read restarts at each
// command handled (reset); a connection that sends more than limit bytes
// without completing a command gets an error reply and is closed. The
// limit is the largest key and value plus room for a context and options,
// so every command the API can accept fits.
//
// Read and reset both run on the connection's one goroutine (redcon reads
// and calls the handler in turn), so the count needs no lock.
type limitConn struct {
	net.Conn
	limit int64
	read  int64
}

var errCommandTooLarge = errors.New("resp: command over the size limit")

func (c *limitConn) Read(p []byte) (int, error) {
	if c.read > c.limit {
		// Nothing of this connection is pending on the writer: redcon
		// flushes every reply before it reads again.
		_, _ = c.Conn.Write([]byte(fmt.Sprintf("-TOO_LARGE command larger than the limit of %d bytes; closing the connection\r\n", c.limit)))
		return 0, errCommandTooLarge
	}
	n, err := c.Conn.Read(p)
	c.read += int64(n)
	return n, err
}

func (c *limitConn) reset() { c.read = 0 }

// verifiedCert returns the verified client certificate of a TLS
// connection, after its handshake.
func (c *limitConn) verifiedCert() *x509.Certificate {
	tc, ok := c.Conn.(*tls.Conn)
	if !ok {
		return nil
	}
	st := tc.ConnectionState()
	if len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return nil
	}
	return st.VerifiedChains[0][0]
}
