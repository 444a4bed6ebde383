package server

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynago/dynago/internal/testutil"
	"github.com/dynago/dynago/node"
)

// TestNoAnswerBeforeItsFsync holds the node's fsync and checks that a put
// is not answered while it is held, and is answered once it returns: no
// acknowledgement before its fsync, checked on the daemon's own loop and
// syncer rather than only through crashes.
func TestNoAnswerBeforeItsFsync(t *testing.T) {
	gate := make(chan struct{})
	held := make(chan struct{}, 1)
	var hold atomic.Bool
	cfg := Config{
		ID: "solo", DataDir: t.TempDir(), HTTPAddr: testutil.FreeAddr(t), RPCAddr: testutil.FreeAddr(t), GossipAddr: "127.0.0.1:0", Node: node.Config{N: 1},
		Logger: slog.New(slog.DiscardHandler),
		beforeSync: func() {
			if hold.Load() {
				select {
				case held <- struct{}{}:
				default:
				}
				<-gate
			}
		},
	}
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var open sync.Once
	release := func() { open.Do(func() { close(gate) }) }
	defer release() // before Close: a failed check must not leave the syncer held
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if r := s.Do(ctx, node.Request{Op: node.OpPut, Key: []byte("before"), Value: []byte("v")}); r.Code != node.CodeOK {
		t.Fatalf("put: %s %s", r.Code, r.Err)
	}
	// From now on every fsync waits for the gate (one already running
	// finishes; the put's write needs a later one).
	hold.Store(true)

	answer := make(chan node.Reply, 1)
	go func() { answer <- s.Do(ctx, node.Request{Op: node.OpPut, Key: []byte("k"), Value: []byte("v")}) }()
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the put never reached an fsync")
	}
	select {
	case r := <-answer:
		t.Fatalf("the put was answered (%s) before its fsync returned", r.Code)
	case <-time.After(300 * time.Millisecond):
	}
	release()
	select {
	case r := <-answer:
		if r.Code != node.CodeOK {
			t.Fatalf("put after the fsync: %s %s", r.Code, r.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the put was not answered after its fsync returned")
	}
}
