package transport

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/proto/dynagopb"
	"github.com/dynago/dynago/ring"
)

// ErrMisaddressed reports a received message addressed to another node: the
// sender's address for this node is stale.
var ErrMisaddressed = errors.New("transport: message addressed to another node")

// nodeServer serves the Node service: it decodes a batch and hands it to the
// Handler.
type nodeServer struct {
	dynagopb.UnimplementedNodeServer
	t *Transport
}

// Step delivers the batch's valid envelopes to the Handler. Misaddressed
// envelopes are normal during a membership change (a stale address): they
// are dropped and counted in the ack. A malformed envelope (see
// node.Message.Validate) is not: no node of this version sends one, so the call
// fails with InvalidArgument, after the valid envelopes of the batch were
// delivered, so that the sender learns of it and an operator sees it.
func (s *nodeServer) Step(_ context.Context, b *dynagopb.Batch) (*dynagopb.StepAck, error) {
	t := s.t
	// GracefulStop lets calls in progress finish; refusing here keeps a call
	// that was merely slow to start from reaching a closed node's Handler.
	if !t.accepting() {
		return nil, status.Error(codes.Unavailable, ErrClosed.Error())
	}
	rejected, err := s.deliver(decodeBatch(b))
	if err != nil {
		return nil, err
	}
	return &dynagopb.StepAck{Rejected: rejected}, nil
}

// deliver hands msgs's valid messages to the Handler and returns how many
// it rejected instead, and an InvalidArgument status when any of them was
// malformed rather than merely misaddressed. bad[i], when bad is not nil,
// is why msgs[i] could not be decoded into a node.Message. The Handler gets
// msgs itself, its valid messages moved to the front.
func (s *nodeServer) deliver(msgs []node.Message, bad []error) (rejected uint32, err error) {
	t := s.t
	var (
		from      ring.NodeID
		c         *counters
		malformed int
		first     error
		kept      int
	)
	for i := range msgs {
		m := &msgs[i]
		var merr error
		if bad != nil {
			merr = bad[i]
		}
		if merr == nil {
			merr = m.Validate()
		}
		// A batch normally comes from one node: look its counters up
		// once. A malformed envelope's sender is not trusted to name a
		// stats entry: it is counted under UnknownPeer.
		sender := m.From
		if merr != nil {
			sender = UnknownPeer
		}
		if c == nil || sender != from {
			from = sender
			c = t.stats.of(from)
		}
		if merr != nil {
			malformed++
			if first == nil {
				first = merr
			}
			rejected++
			c.rejected.Add(1)
			continue
		}
		if m.To != t.cfg.ID {
			t.log.Debug("transport: rejecting message", "from", from, "err", fmt.Errorf("%w: addressed to %q", ErrMisaddressed, m.To))
			rejected++
			c.rejected.Add(1)
			continue
		}
		msgs[kept] = *m
		kept++
		c.received.Add(1)
	}
	clear(msgs[kept:]) // rejected messages' buffers
	if kept > 0 {
		t.handler(msgs[:kept])
	}
	if malformed > 0 {
		t.malformed.Add(uint64(malformed))
		t.logMalformed(malformed, first)
		return rejected, status.Errorf(codes.InvalidArgument, "%d of %d envelopes malformed; first: %v", malformed, len(msgs), first)
	}
	return rejected, nil
}

// decodeBatch turns a Step call's envelopes into messages, for deliver.
func decodeBatch(b *dynagopb.Batch) ([]node.Message, []error) {
	envs := b.GetMessages()
	msgs := make([]node.Message, len(envs))
	var bad []error
	for i, e := range envs {
		m, err := fromEnvelope(e)
		if err != nil {
			if bad == nil {
				bad = make([]error, len(envs))
			}
			bad[i] = err
			continue
		}
		msgs[i] = m
	}
	return msgs, bad
}

// malformedLogEvery rate-limits the warning about malformed envelopes: a
// flood of them must not become a flood of log lines.
const malformedLogEvery = 10 * time.Second

// logMalformed warns about malformed envelopes, at most once per
// malformedLogEvery; the counter (Stats) has the exact number.
func (t *Transport) logMalformed(n int, first error) {
	now := time.Now().UnixNano()
	last := t.malformedLogged.Load()
	if now-last < int64(malformedLogEvery) || !t.malformedLogged.CompareAndSwap(last, now) {
		return
	}
	t.log.Warn("transport: rejecting malformed envelopes", "count", n, "total", t.malformed.Load(), "first", first)
}

// malformedState is embedded in Transport.
type malformedState struct {
	malformed       atomic.Uint64 // envelopes rejected as malformed, ever
	malformedLogged atomic.Int64  // unix nanoseconds of the last warning
}
