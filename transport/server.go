package transport

import (
	"context"
	"errors"
	"fmt"

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

// Step never fails the call for a bad envelope: it rejects that envelope,
// counts it and says so in the ack, and delivers the rest. An error would
// make the sender count the whole batch as failed.
func (s *nodeServer) Step(_ context.Context, b *dynagopb.Batch) (*dynagopb.StepAck, error) {
	t := s.t
	// GracefulStop lets calls in progress finish; refusing here keeps a call
	// that was merely slow to start from reaching a closed node's Handler.
	if !t.accepting() {
		return nil, status.Error(codes.Unavailable, ErrClosed.Error())
	}
	rejected := s.deliver(b)
	return &dynagopb.StepAck{Rejected: rejected}, nil
}

// deliver hands b's messages to the Handler and returns how many envelopes
// it rejected instead: misaddressed or malformed ones.
func (s *nodeServer) deliver(b *dynagopb.Batch) (rejected uint32) {
	t := s.t
	msgs := make([]node.Message, 0, len(b.Messages))
	var (
		from ring.NodeID
		c    *counters
	)
	for _, e := range b.Messages {
		// A batch normally comes from one node: look its counters up once.
		if c == nil || string(e.From) != string(from) {
			from = ring.NodeID(e.From)
			c = t.stats.of(from)
		}
		m, err := fromEnvelope(e)
		if err == nil && m.To != t.cfg.ID {
			err = fmt.Errorf("%w: addressed to %q", ErrMisaddressed, m.To)
		}
		if err != nil {
			t.log.Debug("transport: rejecting message", "from", from, "err", err)
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
	return rejected
}
