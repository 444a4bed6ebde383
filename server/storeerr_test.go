package server

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynago/dynago/internal/testutil"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/storage"
)

// lockedBuffer is a log sink the test can read while the node writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestReadErrorFailStops: when the core cannot read its storage, the
// daemon stops as it does on a failed fsync: Done closes, the log says
// why, requests get "unavailable" instead of hanging, and the next start
// does not take the stop for a clean shutdown (it draws a new epoch).
func TestReadErrorFailStops(t *testing.T) {
	logs := &lockedBuffer{}
	var disk *storage.Faulty
	cfg := Config{
		ID: "solo", DataDir: t.TempDir(), HTTPAddr: testutil.FreeAddr(t), RPCAddr: testutil.FreeAddr(t), GossipAddr: "127.0.0.1:0", Node: node.Config{N: 1},
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
		coreStore: func(e storage.Engine) node.Store {
			disk = storage.NewFaulty(e)
			return disk
		},
	}
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	epoch := s.Epoch()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if r := s.Do(ctx, node.Request{Op: node.OpPut, Key: []byte("k"), Value: []byte("v")}); r.Code != node.CodeOK {
		t.Fatalf("put: %s %s", r.Code, r.Err)
	}

	disk.FailReads(storage.ErrInjected)
	r := s.Do(ctx, node.Request{Op: node.OpGet, Key: []byte("k")})
	if r.Code != node.CodeUnavailable || r.Err != ErrStopped.Error() {
		t.Fatalf("get on an unreadable disk: %s %q, want unavailable %q", r.Code, r.Err, ErrStopped)
	}
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the node kept running after a storage read error")
	}
	if l := logs.String(); !strings.Contains(l, "storage read failed; stopping the node") || !strings.Contains(l, storage.ErrInjected.Error()) {
		t.Fatalf("the log does not say why the node stopped:\n%s", l)
	}
	if r := s.Do(ctx, node.Request{Op: node.OpPut, Key: []byte("k2"), Value: []byte("v")}); r.Code != node.CodeUnavailable {
		t.Fatalf("put after the stop: %s %q, want unavailable", r.Code, r.Err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart on the same data, reading normally: the acknowledged write
	// is there, under a new epoch since the stop was not clean.
	cfg.coreStore = nil
	cfg.Logger = slog.New(slog.NewTextHandler(&lockedBuffer{}, nil))
	s2, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.Epoch() == epoch {
		t.Fatal("a fail-stopped node restarted with its old epoch, as after a clean shutdown")
	}
	if g := s2.Do(ctx, node.Request{Op: node.OpGet, Key: []byte("k")}); g.Code != node.CodeOK || len(g.Siblings) != 1 || string(g.Siblings[0].Value) != "v" {
		t.Fatalf("get after restart: %s %v", g.Code, g.Siblings)
	}
}
