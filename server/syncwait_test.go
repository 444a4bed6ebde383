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
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
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

// TestLazyCopyJoinsALaterFsync: with W=1 the replica's copy of a put waits
// for its node's next fsync, started by something that is waited for or by
// LazySyncDelay running out, instead of starting one itself; a read of the
// copy there is answered at once, after an fsync that covers it. With the
// delay off (negative) the copy's fsync starts at once: the control that
// shows the first check can fail.
func TestLazyCopyJoinsALaterFsync(t *testing.T) {
	const lazy = 900 * time.Millisecond
	for _, tc := range []struct {
		name  string
		delay time.Duration
	}{{"lazy", lazy}, {"at once", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			var fsyncs [2]atomic.Int64 // started, per node
			srvs := startCluster(t, 2, func(c *Config) {
				c.Node.N = 2
				c.Node.AEInterval = -1 // an exchange's answers are waited for: they would start n2's fsync
				c.LazySyncDelay = tc.delay
				i := int(c.ID[1] - '1')
				c.beforeSync = func() { fsyncs[i].Add(1) }
			})
			n1, n2 := srvs[0], srvs[1]
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for _, s := range srvs {
				testutil.Eventually(t, 10*time.Second, string(s.NodeID())+" reaches its peer", func() bool {
					return s.Do(ctx, node.Request{Op: node.OpGet, Key: []byte("warm-up"), R: 2}).Code == node.CodeNotFound
				})
			}
			// Let start-up's writes (cluster state, epochs) settle: n2 quiet
			// for as long as the checks below watch it.
			quiet := func() int64 {
				t.Helper()
				deadline := time.Now().Add(15 * time.Second)
				for {
					c := fsyncs[1].Load()
					time.Sleep(lazy / 2)
					if fsyncs[1].Load() == c {
						return c
					}
					if time.Now().After(deadline) {
						t.Fatal("n2 never stopped syncing while idle")
					}
				}
			}

			c0 := quiet()
			if r := n1.Do(ctx, node.Request{Op: node.OpPut, Key: []byte("k1"), Value: []byte("v1"), W: 1}); r.Code != node.CodeOK {
				t.Fatalf("W=1 put: %s %s", r.Code, r.Err)
			}
			time.Sleep(lazy / 3)
			got := fsyncs[1].Load() - c0
			if tc.delay < 0 {
				if got == 0 {
					t.Fatal("with the lazy delay off, n2 did not sync its copy at once")
				}
				return
			}
			if got != 0 {
				t.Fatalf("n2 started %d fsyncs for a copy no quorum waits for, within %v of the put (lazy delay %v)", got, lazy/3, lazy)
			}
			// A read at n2 is waited for: answered at once, after an fsync.
			start := time.Now()
			g := n2.Do(ctx, node.Request{Op: node.OpGet, Key: []byte("k1"), R: 1})
			if g.Code != node.CodeOK || len(g.Siblings) != 1 || string(g.Siblings[0].Value) != "v1" {
				t.Fatalf("R=1 get at n2: %s %s %+v", g.Code, g.Err, g.Siblings)
			}
			if took := time.Since(start); took > lazy/2 {
				t.Errorf("R=1 get at n2 took %v: it waited for the lazy delay (%v)", took, lazy)
			}
			if fsyncs[1].Load() == c0 {
				t.Error("n2 answered a read of its lazy copy without an fsync")
			}

			// Nothing else happening: the delay runs out and n2 syncs.
			c1 := quiet()
			start = time.Now()
			if r := n1.Do(ctx, node.Request{Op: node.OpPut, Key: []byte("k2"), Value: []byte("v2"), W: 1}); r.Code != node.CodeOK {
				t.Fatalf("W=1 put: %s %s", r.Code, r.Err)
			}
			// n1 answered on its own copy, and still waits for n2's
			// acknowledgement, which waits for n2's fsync.
			if got := fsyncs[1].Load(); got == c1 && promtest.ToFloat64(n1.metrics.inflight) != 1 {
				t.Errorf("n1 has %v operations in flight before n2's fsync; want the put, waiting for n2's acknowledgement", promtest.ToFloat64(n1.metrics.inflight))
			}
			if n := promtest.ToFloat64(n2.metrics.lazyFsyncs); n != 0 {
				t.Errorf("n2 counted %v fsyncs started by the lazy delay; the read started the only one so far", n)
			}
			testutil.Eventually(t, lazy+10*time.Second, "n2 syncs its lazy copy", func() bool { return fsyncs[1].Load() > c1 })
			if took := time.Since(start); took < lazy*8/10 {
				t.Errorf("n2 synced its lazy copy after %v, before the lazy delay (%v)", took, lazy)
			}
			testutil.Eventually(t, 10*time.Second, "n1 receives n2's acknowledgement", func() bool { return promtest.ToFloat64(n1.metrics.inflight) == 0 })
			if n := promtest.ToFloat64(n2.metrics.lazyFsyncs); n != 1 {
				t.Errorf("n2 counted %v fsyncs started by the lazy delay; want 1", n)
			}
		})
	}
}
