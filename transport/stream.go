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

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/proto/dynagopb"
	"github.com/dynago/dynago/ring"
)

// Mode selects how batches travel to a peer.
type Mode int

const (
	// ModeUnary sends each batch in its own Step call with a CallTimeout
	// deadline, up to MaxInFlight calls at a time per peer. Sent counts
	// messages the peer acknowledged. Order is kept within a batch only.
	ModeUnary Mode = iota
	// ModeStream writes batches back to back on one long-lived stream per
	// peer, in FIFO order. A request and its answer cost about a third of
	// the latency and CPU of ModeUnary, where every call sets up an HTTP/2
	// stream; bulk throughput is lower (one writer per peer instead of
	// MaxInFlight calls) but still hundreds of thousands of small messages
	// per second (see transport/BENCHMARKS.md). There is no per-batch
	// answer, so Sent counts messages handed to the connection; a stream
	// that breaks loses what was in flight, like a failed Step call does.
	// A write the peer does not take within CallTimeout (a stalled peer)
	// tears the stream down; the next batch opens a new one.
	ModeStream
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
	var out *outStream
	var outConn *grpc.ClientConn // the connection out runs on
	defer func() {
		if out != nil {
			out.close()
		}
	}()
	for {
		batch := p.takeBatch(&scratch)
		if batch == nil {
			return
		}
		n := uint64(len(batch))
		client, err := p.client()
		if err != nil {
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
				p.failed(n, err)
				continue
			}
		}
		if err := p.write(out, batch); err != nil {
			out.close()
			out = nil
			p.failed(n, err)
			continue
		}
		p.stats.sent.Add(n)
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
	if err != nil {
		o.close()
		return nil, err
	}
	return o, nil
}

// write sends one batch on o.
func (p *peer) write(o *outStream, batch []*dynagopb.Envelope) error {
	o.watchdog.Reset(p.t.cfg.CallTimeout)
	err := o.s.Send(&dynagopb.Batch{Messages: batch})
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
	return err
}

// Stream receives batches on one sender's stream. Receiving runs on its own
// goroutine so that Close can end the call (a blocked Recv cannot be
// interrupted otherwise): GracefulStop waits for calls to finish, and a
// sender's stream never finishes by itself.
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
	batches := make(chan *dynagopb.Batch)
	errc := make(chan error, 1)
	go func() {
		for {
			b, err := st.Recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case batches <- b:
			case <-st.Context().Done():
				return
			}
		}
	}()
	var rejected uint32
	for {
		select {
		case b := <-batches:
			// A malformed envelope ends the stream (see Step): the
			// sender is broken or not a node, and its next batches
			// are no more trustworthy.
			n, err := s.deliver(b)
			rejected += n
			if err != nil {
				return err
			}
		case err := <-errc:
			if errors.Is(err, io.EOF) {
				return st.SendAndClose(&dynagopb.StepAck{Rejected: rejected})
			}
			return err
		case <-t.stop:
			return status.Error(codes.Unavailable, ErrClosed.Error())
		}
	}
}
