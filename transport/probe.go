package transport

import (
	"context"
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/dynago/dynago/proto/dynagopb"
	"github.com/dynago/dynago/ring"
)

// Probe checks that addr answers as node id: it opens a stream addressed
// to id, which the node there accepts only if it is id, and closes it
// without sending anything. It is how an operator's plan checks that a
// joining node's advertised RPC address works before partitions are
// handed to it: an unspecified or stale address may reach nothing, or
// another node (often the caller itself), and both must be refused.
// ctx bounds the probe; without a deadline, CallTimeout does.
func (t *Transport) Probe(ctx context.Context, id ring.NodeID, addr string) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.cfg.CallTimeout)
		defer cancel()
	}
	p := &peer{t: t, id: id, addr: addr} // for its dial options only
	conn, err := p.dial()
	if err != nil {
		return fmt.Errorf("transport: probing %s at %s: %w", id, addr, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(ctx, addresseeKey, string(id)))
	defer cancel()
	// Wait for the connection rather than fail at once while it is being
	// set up; ctx still bounds the wait.
	s, err := dynagopb.NewNodeClient(conn).Stream(ctx, grpc.WaitForReady(true))
	if err == nil {
		var md metadata.MD
		if md, err = s.Header(); err == nil && md == nil {
			// Refused: the status says why (another node, or closing).
			if _, err = s.CloseAndRecv(); err == nil {
				err = io.ErrUnexpectedEOF
			}
		}
	}
	if err != nil {
		return fmt.Errorf("transport: probing %s at %s: %w", id, addr, err)
	}
	return nil
}
