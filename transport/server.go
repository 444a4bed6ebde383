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
	rejected, err := s.deliver(b)
	if err != nil {
		return nil, err
	}
	return &dynagopb.StepAck{Rejected: rejected}, nil
}

// deliver hands b's valid messages to the Handler and returns how many
// envelopes it rejected instead, and an InvalidArgument status when any of
// them was malformed rather than merely misaddressed.
func (s *nodeServer) deliver(b *dynagopb.Batch) (rejected uint32, err error) {
	t := s.t
	msgs := make([]node.Message, 0, len(b.GetMessages()))
	var (
		from      ring.NodeID
		c         *counters
		malformed int
		first     error
	)
	for _, e := range b.GetMessages() {
		m, merr := fromEnvelope(e)
		if merr == nil {
			merr = m.Validate()
		}
		// A batch normally comes from one node: look its counters up
		// once. A malformed envelope's sender is not trusted to name a
		// stats entry: it is counted under UnknownPeer.
		sender := ring.NodeID(e.GetFrom())
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
		msgs = append(msgs, m)
		c.received.Add(1)
	}
	if len(msgs) > 0 {
		t.handler(msgs)
	}
	if malformed > 0 {
		t.malformed.Add(uint64(malformed))
		t.logMalformed(malformed, first)
		return rejected, status.Errorf(codes.InvalidArgument, "%d of %d envelopes malformed; first: %v", malformed, len(b.GetMessages()), first)
	}
	return rejected, nil
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
