package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

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
		gossip[ring.NodeID(fmt.Sprintf("n%d", i))] = freeAddr(t)
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
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok := true
		for _, s := range srvs {
			alive := 0
			for _, m := range s.members.Members() {
				if m.Status == node.Alive {
					alive++
				}
			}
			ok = ok && alive >= 3
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the 3 nodes did not see each other alive within 15 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // let a first round of RPC traffic happen
	if w := rec.seen(); len(w) > 0 {
		t.Errorf("a normal start logged:\n%s", strings.Join(w, "\n"))
	}
}
