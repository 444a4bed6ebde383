package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/proto/dynagopb"
	"github.com/dynago/dynago/ring"
)

// Mode selects how batches travel to a peer.
type Mode int

const (
	// ModeStream, the default and the daemon's mode, writes batches back
	// to back on one long-lived stream per peer, in FIFO order. A request
	// and its answer cost about a third of the latency and CPU of
	// ModeUnary, where every call sets up an HTTP/2 stream, and Dynamo's
	// traffic is mostly such round trips (a coordinator asks N replicas,
	// each answers at once); bulk throughput is lower (one writer per peer
	// instead of MaxInFlight calls) but still hundreds of thousands of
	// small messages per second (see transport/BENCHMARKS.md). There is no
	// per-batch answer, so Sent counts messages handed to the connection;
	// a stream that breaks loses what was in flight, like a failed Step
	// call does. A write the peer does not take within CallTimeout (a
	// stalled peer) tears the stream down; the next batch opens a new one.
	ModeStream Mode = iota
	// ModeUnary sends each batch in its own Step call with a CallTimeout
	// deadline, up to MaxInFlight calls at a time per peer. Sent counts
	// messages the peer acknowledged. Order is kept within a batch only.
	// It moves bulk data up to twice as fast as ModeStream, and is kept
	// for that comparison (transport/BENCHMARKS.md) and its exact Sent.
	ModeUnary
)

func (m Mode) String() string {
	switch m {
	case ModeUnary:
		return "unary"
	case ModeStream:
		return "stream"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// addresseeKey is the metadata entry naming the node a stream is meant for.
// "-bin" because node IDs are arbitrary bytes.
const addresseeKey = "dynago-to-bin"

// outStream is the sender's side of one Stream call.
type outStream struct {
	s      dynagopb.Node_StreamClient
	cancel context.CancelFunc
	// watchdog cancels the stream when a write (or the opening handshake)
	// takes longer than CallTimeout. One timer per stream, re-armed per
	// batch, so that sending costs no allocation.
	watchdog *time.Timer
	dead     bool // canceled by the watchdog after a write went through
}

func (o *outStream) close() {
	o.watchdog.Stop()
	o.cancel()
}

// runStream sends batches on one stream, opening a new one whenever the
// last one broke.
func (p *peer) runStream() {
	var scratch []node.Message
	// batch is encoded by peerCodec straight from the messages; gRPC has
	// encoded it when SendMsg returns, and nothing refers to it after.
	// (gRPC's documentation reserves the message for stats handlers and
	// tracing, which may read it lazily; the peer connections have none.)
	var batch outBatch
	var out *outStream
	var outConn *grpc.ClientConn // the connection out runs on
	defer func() {
		if out != nil {
			out.close()
		}
	}()
	for {
		msgs := p.takeMessages(&scratch)
		if msgs == nil {
			return
		}
		n := uint64(len(msgs))
		client, err := p.client()
		if err != nil {
			clear(msgs)
			p.stats.failed.Add(n)
			continue
		}
		if out != nil && outConn != p.conn {
			// client() replaced the connection (Reconnect): the stream
			// belonged to the old one.
			out.close()
			out = nil
		}
		if out == nil {
			outConn = p.conn
			if out, err = p.openStream(client); err != nil {
				clear(msgs)
				p.failed(n, err)
				continue
			}
		}
		batch.msgs = msgs
		err = p.write(out, &batch)
		batch.msgs = nil
		clear(msgs) // the messages' buffers belong to their senders again
		if err != nil {
			out.close()
			out = nil
			p.failed(n, err)
			continue
		}
		p.stats.sent.Add(n)
		p.active.Store(true)
		p.reachable()
		if out.dead {
			out.close()
			out = nil
		}
	}
}

// openStream opens a stream and waits for the receiver's headers, which say
// it accepted the stream as the node p.id.
func (p *peer) openStream(client dynagopb.NodeClient) (*outStream, error) {
	ctx, cancel := context.WithCancel(p.ctx)
	ctx = metadata.AppendToOutgoingContext(ctx, addresseeKey, string(p.id))
	o := &outStream{cancel: cancel, watchdog: time.AfterFunc(p.t.cfg.CallTimeout, cancel)}
	start := time.Now()
	s, err := client.Stream(ctx, p.callOptions()...)
	if err == nil {
		o.s = s
		var md metadata.MD
		if md, err = s.Header(); err == nil && md == nil {
			// The stream ended without headers: refused or failed. gRPC
			// reports why on the receive side.
			if _, err = s.CloseAndRecv(); err == nil {
				err = io.ErrUnexpectedEOF
			}
		}
	}
	if !o.watchdog.Stop() && err == nil {
		err = context.DeadlineExceeded
	}
	p.observe(MethodStreamOpen, time.Since(start), err)
	if err != nil {
		o.close()
		return nil, err
	}
	return o, nil
}

// write sends one batch on o.
func (p *peer) write(o *outStream, batch *outBatch) error {
	o.watchdog.Reset(p.t.cfg.CallTimeout)
	start := time.Now()
	err := o.s.SendMsg(batch)
	took := time.Since(start)
	if !o.watchdog.Stop() && err == nil {
		// The watchdog fired as the write completed: the batch is on its
		// way, but the stream is canceled and must be replaced.
		o.dead = true
	}
	if errors.Is(err, io.EOF) {
		// The receiver ended the stream; its status says why.
		_, err = o.s.CloseAndRecv()
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
	}
	p.observe(MethodStreamSend, took, err)
	return err
}

// endOnClose is the server's tap handle: it gives every inbound Stream call
// a context that Close cancels as well. A sender's stream never ends by
// itself, and gRPC cancels a call's context only when the call ends, so
// without this a Stream handler blocked in Recv could not be stopped:
// GracefulStop would wait for it until Close's deadline forced the server
// down. With it the handler receives on its own goroutine, with no hand-off
// to another one per batch. It runs on the connection's reader goroutine
// and must not block; Step calls are left alone, to finish their batch.
func (t *Transport) endOnClose(ctx context.Context, info *tap.Info) (context.Context, error) {
	if info.FullMethodName != dynagopb.Node_Stream_FullMethodName {
		return ctx, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	unregister := context.AfterFunc(t.ctx, cancel)
	// A stream that ends first (the usual case) must not stay registered
	// on t.ctx until Close: one entry per stream a peer ever opened.
	context.AfterFunc(ctx, func() { unregister() })
	return ctx, nil
}

// Stream receives batches on one sender's stream and hands each to the
// Handler, on the call's own goroutine. Close ends the call through its
// context (see endOnClose).
func (s *nodeServer) Stream(st dynagopb.Node_StreamServer) error {
	t := s.t
	if !t.accepting() {
		return status.Error(codes.Unavailable, ErrClosed.Error())
	}
	md, _ := metadata.FromIncomingContext(st.Context())
	if to := md.Get(addresseeKey); len(to) != 1 || ring.NodeID(to[0]) != t.cfg.ID {
		return status.Errorf(codes.FailedPrecondition, "%v: stream for %q reached %q", ErrMisaddressed, to, t.cfg.ID)
	}
	if err := st.SendHeader(nil); err != nil {
		return err
	}
	var rejected uint32
	var b inBatch // decoded into by peerCodec, its interned IDs kept
	for {
		err := st.RecvMsg(&b)
		if t.ctx.Err() != nil {
			// Closing: no batch reaches the Handler any more (Close
			// waits, through GracefulStop, for one already there).
			return status.Error(codes.Unavailable, ErrClosed.Error())
		}
		if errors.Is(err, io.EOF) {
			return st.SendAndClose(&dynagopb.StepAck{Rejected: rejected})
		}
		if err != nil {
			return err
		}
		// A malformed envelope ends the stream (see Step): the sender is
		// broken or not a node, and its next batches are no more
		// trustworthy.
		n, err := s.deliver(b.msgs, b.bad)
		rejected += n
		if err != nil {
			return err
		}
	}
}
