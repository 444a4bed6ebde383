package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynago/dynago/internal/testutil"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

// warnRecorder is a slog handler that keeps the messages of WARN and ERROR
// records.
type warnRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnRecorder) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnRecorder) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, r.Level.String()+" "+r.Message)
	return nil
}
func (w *warnRecorder) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnRecorder) WithGroup(string) slog.Handler      { return w }

func (w *warnRecorder) seen() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs...)
}

// TestNormalStartLogsNoWarnings starts three nodes one after another, each
// joining gossip through the others (so the first starts while its peers'
// RPC and gossip ports are still closed), and checks that a normal start
// logs nothing at WARN or above: the start-up races go to DEBUG. An
// operator who sees a WARN should have something to look at.
func TestNormalStartLogsNoWarnings(t *testing.T) {
	rec := &warnRecorder{}
	gossip := map[ring.NodeID]string{}
	for i := 1; i <= 3; i++ {
		gossip[ring.NodeID(fmt.Sprintf("n%d", i))] = testutil.FreeAddr(t)
	}
	srvs := startCluster(t, 3, func(c *Config) {
		c.Logger = slog.New(rec)
		c.GossipAddr = gossip[c.ID]
		c.Join = nil
		for id, a := range gossip {
			if id != c.ID {
				c.Join = append(c.Join, a)
			}
		}
		c.Preset = "lab"
	})
	// Wait, bounded, until every node sees the other two alive.
	testutil.Eventually(t, 15*time.Second, "the 3 nodes see each other alive", func() bool {
		for _, s := range srvs {
			alive := 0
			for _, m := range s.members.Members() {
				if m.Status == node.Alive {
					alive++
				}
			}
			if alive < 3 {
				return false
			}
		}
		return true
	})
	time.Sleep(500 * time.Millisecond) // let a first round of RPC traffic happen
	if w := rec.seen(); len(w) > 0 {
		t.Errorf("a normal start logged:\n%s", strings.Join(w, "\n"))
	}
}

// A Start that fails once storage and the core exist (here: the RPC port is
// taken) returns its error and releases what it opened, rather than wait
// for an event loop it never started.
func TestStartFailingAfterTheCoreReturns(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	cfg := Config{
		ID: "n1", DataDir: dir, HTTPAddr: testutil.FreeAddr(t), RPCAddr: taken.Addr().String(),
		Cluster: []Peer{{ID: "n1", RPCAddr: taken.Addr().String()}}, Node: node.Config{N: 1, Partitions: 8},
		GossipAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
	}
	done := make(chan error, 1)
	go func() {
		s, err := Start(cfg)
		if err == nil {
			s.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "transport") {
			t.Fatalf("Start on a taken RPC port = %v, want a transport error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Start on a taken RPC port did not return")
	}
	// Storage was closed: the directory opens again.
	cfg.RPCAddr, cfg.Cluster = testutil.FreeAddr(t), nil
	cfg.Cluster = []Peer{{ID: "n1", RPCAddr: cfg.RPCAddr}}
	s, err := Start(cfg)
	if err != nil {
		t.Fatalf("restart on the same data dir: %v", err)
	}
	s.Close()
}
