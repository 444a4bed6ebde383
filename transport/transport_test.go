package transport

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynago/dynago/internal/testutil"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

// sink is a Handler that records what it receives.
type sink struct {
	mu     sync.Mutex
	msgs   []node.Message
	at     []time.Time
	notify chan struct{}
}

func newSink() *sink { return &sink{notify: make(chan struct{}, 1)} }

func (s *sink) handle(msgs []node.Message) {
	now := time.Now()
	s.mu.Lock()
	for _, m := range msgs {
		s.msgs = append(s.msgs, m)
		s.at = append(s.at, now)
	}
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *sink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

func (s *sink) snapshot() ([]node.Message, []time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]node.Message(nil), s.msgs...), append([]time.Time(nil), s.at...)
}

// wait blocks until the sink holds at least n messages.
func (s *sink) wait(t *testing.T, n int, timeout time.Duration) []node.Message {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if s.len() >= n {
			msgs, _ := s.snapshot()
			return msgs
		}
		select {
		case <-s.notify:
		case <-deadline:
			t.Fatalf("received %d messages within %v, want %d", s.len(), timeout, n)
		}
	}
}

// env starts transports in one Mode.
type env struct{ mode Mode }

// forEachMode runs f once per Mode, as subtests.
func forEachMode(t *testing.T, f func(t *testing.T, e env)) {
	for _, mode := range []Mode{ModeUnary, ModeStream} {
		t.Run(mode.String(), func(t *testing.T) { f(t, env{mode}) })
	}
}

// start creates and starts a transport on a free loopback port, closed when
// the test ends.
func (e env) start(t testing.TB, id ring.NodeID, h Handler, tweak func(*Config)) *Transport {
	t.Helper()
	// A generous CallTimeout: under the race detector on a loaded 2-core
	// machine a batch can take seconds, and a call that times out after
	// delivering counts as Failed, which would break exact counts.
	cfg := Config{ID: id, ListenAddr: "127.0.0.1:0", CallTimeout: 30 * time.Second, Mode: e.mode}
	if tweak != nil {
		tweak(&cfg)
	}
	tr, err := New(cfg, h)
	if err != nil {
		t.Fatalf("New(%s): %v", id, err)
	}
	if err := tr.Start(); err != nil {
		t.Fatalf("Start(%s): %v", id, err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// mesh starts n transports n1..nn that know each other.
func (e env) mesh(t testing.TB, n int) ([]*Transport, []*sink) {
	t.Helper()
	trs := make([]*Transport, n)
	sinks := make([]*sink, n)
	addrs := map[ring.NodeID]string{}
	for i := range n {
		sinks[i] = newSink()
		id := ring.NodeID(fmt.Sprintf("n%d", i+1))
		trs[i] = e.start(t, id, sinks[i].handle, nil)
		addrs[id] = trs[i].Addr()
	}
	for _, tr := range trs {
		tr.SetPeers(addrs) // includes the node itself, which must be ignored
	}
	return trs, sinks
}

func TestMeshDeliversEveryMessageIntact(t *testing.T) {
	forEachMode(t, func(t *testing.T, e env) {
		for _, n := range []int{2, 3} {
			t.Run(fmt.Sprintf("%d nodes", n), func(t *testing.T) { testMesh(t, e, n) })
		}
	})
}

func testMesh(t *testing.T, e env, n int) {
	const perPair = 3000
	trs, sinks := e.mesh(t, n)
	var wg sync.WaitGroup
	for i, from := range trs {
		for j, to := range trs {
			if i == j {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range perPair {
					from.Send(fullMessage(k, from.cfg.ID, to.cfg.ID))
				}
			}()
		}
	}
	wg.Wait()
	for j, to := range trs {
		got := sinks[j].wait(t, perPair*(n-1), 20*time.Second)
		seen := map[string]bool{}
		for _, m := range got {
			k := int(m.ReqID - 1<<40)
			if want := fullMessage(k, m.From, to.cfg.ID); !reflect.DeepEqual(m, want) {
				t.Fatalf("%s received a changed message\n got %+v\nwant %+v", to.cfg.ID, m, want)
			}
			key := fmt.Sprint(m.From, "/", k)
			if seen[key] {
				t.Fatalf("%s received %s twice", to.cfg.ID, key)
			}
			seen[key] = true
		}
		if len(seen) != perPair*(n-1) {
			t.Fatalf("%s received %d distinct messages, want %d", to.cfg.ID, len(seen), perPair*(n-1))
		}
	}
	for _, tr := range trs {
		for _, other := range trs {
			if other == tr {
				continue
			}
			// Sent is counted when the ack is back, just after delivery.
			want := Counters{Sent: perPair, Received: perPair}
			testutil.EventuallyNil(t, 20*time.Second, func() error {
				if got := tr.Stats().Peers[other.cfg.ID]; got != want {
					return fmt.Errorf("%s stats for %s = %+v, want %+v", tr.cfg.ID, other.cfg.ID, got, want)
				}
				return nil
			})
		}
	}
}

func TestMessagesKeepEnqueueOrder(t *testing.T) {
	// Unary with one call in flight: every batch is in enqueue order, and
	// batches cannot overtake each other. Stream: one stream, FIFO. Either
	// way the receiver sees Send order.
	forEachMode(t, testOrder)
}

func testOrder(t *testing.T, e env) {
	sb := newSink()
	b := e.start(t, "b", sb.handle, nil)
	a := e.start(t, "a", func([]node.Message) {}, func(c *Config) {
		c.MaxInFlight = 1
		c.Peers = map[ring.NodeID]string{"b": b.Addr()}
	})
	const n = 2000
	for i := range n {
		a.Send(node.Message{Type: node.MsgReplicaGet, Key: []byte("k"), From: "a", To: "b", ReqID: uint64(i)})
	}
	for i, m := range sb.wait(t, n, 10*time.Second) {
		if m.ReqID != uint64(i) {
			t.Fatalf("message %d has ReqID %d: order not preserved", i, m.ReqID)
		}
	}
}

// TestReusedEnvelopesCarryNothingOver: a stream's sender encodes every
// batch into the same envelopes. A full message followed, one at a time
// and in batches, by a sparse one must arrive as sent: nothing of the
// full one may leak into the next.
func TestReusedEnvelopesCarryNothingOver(t *testing.T) {
	forEachMode(t, func(t *testing.T, e env) {
		sb := newSink()
		b := e.start(t, "b", sb.handle, nil)
		a := e.start(t, "a", func([]node.Message) {}, func(c *Config) {
			c.MaxInFlight = 1 // unary: in order, to compare message by message
			c.Peers = map[ring.NodeID]string{"b": b.Addr()}
		})
		var want []node.Message
		send := func(m node.Message) {
			want = append(want, m)
			a.Send(m)
		}
		for i := range 300 {
			if i%3 == 0 {
				send(fullMessage(i, "a", "b"))
			} else {
				send(node.Message{Type: node.MsgReplicaGet, From: "a", To: "b", ReqID: uint64(i), Key: []byte("k")})
			}
			if i < 30 {
				// Batches of one at first: each message reuses
				// the envelope of the one before.
				sb.wait(t, len(want), 10*time.Second)
			}
		}
		got := sb.wait(t, len(want), 10*time.Second)
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("message %d arrived as\n%+v\nsent as\n%+v", i, got[i], want[i])
			}
		}
	})
}

func TestSendToSelfIsAsynchronous(t *testing.T) {
	gate := make(chan struct{})
	s := newSink()
	a := env{}.start(t, "a", func(msgs []node.Message) {
		<-gate // would deadlock Send if the handler ran on Send's goroutine
		s.handle(msgs)
	}, nil)
	returned := make(chan struct{})
	go func() {
		a.Send(fullMessage(1, "a", "a"))
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("Send to self blocked until the handler returned")
	}
	close(gate)
	got := s.wait(t, 1, 5*time.Second)
	if want := fullMessage(1, "a", "a"); !reflect.DeepEqual(got[0], want) {
		t.Fatalf("self delivery changed the message\n got %+v\nwant %+v", got[0], want)
	}
	testutil.Eventually(t, 5*time.Second, "self stats Sent 1 Received 1", func() bool {
		return a.Stats().Peers["a"] == Counters{Sent: 1, Received: 1}
	})
}

func TestSendBeforeStartIsDeliveredOnStart(t *testing.T) {
	forEachMode(t, testSendBeforeStart)
}

func testSendBeforeStart(t *testing.T, e env) {
	sb := newSink()
	b := e.start(t, "b", sb.handle, nil)
	a, err := New(Config{ID: "a", ListenAddr: "127.0.0.1:0", Peers: map[ring.NodeID]string{"b": b.Addr()}, Mode: e.mode}, func([]node.Message) {})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for i := range 10 {
		a.Send(fullMessage(i, "a", "b"))
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	sb.wait(t, 10, 10*time.Second)
	if err := a.Start(); !errors.Is(err, ErrStarted) {
		t.Fatalf("second Start = %v, want ErrStarted", err)
	}
}

func TestCloseWithoutStartDropsQueuedMessages(t *testing.T) {
	a, err := New(Config{ID: "a", ListenAddr: "127.0.0.1:0", Peers: map[ring.NodeID]string{"b": "127.0.0.1:1"}}, func([]node.Message) {})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		a.Send(fullMessage(i, "a", "b"))
	}
	a.Send(fullMessage(0, "a", "a"))
	if err := a.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	st := a.Stats()
	if st.Peers["b"].Dropped != 3 || st.Peers["a"].Dropped != 1 || st.Total.Sent != 0 {
		t.Fatalf("stats after Close without Start = %+v, want 3 dropped for b, 1 for a, nothing sent", st)
	}
}

// downAddr reserves a loopback address for a transport and takes it down
// again: a peer there is down until a test starts it on that address.
func downAddr(t *testing.T, e env) string {
	t.Helper()
	b := e.start(t, "b", func([]node.Message) {}, nil)
	addr := b.Addr()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestPeerDownThenUp(t *testing.T) {
	forEachMode(t, testPeerDownThenUp)
}

func testPeerDownThenUp(t *testing.T, e env) {
	addr := downAddr(t, e)
	a := e.start(t, "a", func([]node.Message) {}, func(c *Config) {
		c.Peers = map[ring.NodeID]string{"b": addr}
		c.MaxReconnectDelay = 200 * time.Millisecond
	})

	const down = 1000
	began := time.Now()
	for i := range down {
		a.Send(fullMessage(i, "a", "b"))
	}
	if d := time.Since(began); d > time.Second {
		t.Fatalf("%d Sends to a down peer took %v: Send blocks", down, d)
	}
	testutil.Eventually(t, 10*time.Second, "every message to the down peer failed or dropped", func() bool {
		c := a.Stats().Peers["b"]
		return c.Failed+c.Dropped == down
	})
	if c := a.Stats().Peers["b"]; c.Sent != 0 {
		t.Fatalf("stats for a down peer = %+v, want nothing sent", c)
	}

	sb := newSink()
	e.start(t, "b", sb.handle, func(c *Config) { c.ListenAddr = addr })
	// Probe until the connection is back (gRPC reconnects on its backoff).
	probe := 0
	testutil.Eventually(t, 10*time.Second, "a reconnects to b", func() bool {
		a.Send(node.Message{Type: node.MsgReplicaGet, Key: []byte("k"), From: "a", To: "b", ReqID: 1 << 50})
		probe++
		return sb.len() > 0
	})
	const after = 500
	for i := range after {
		a.Send(fullMessage(i, "a", "b"))
	}
	got := sb.wait(t, 1+after, 10*time.Second)
	var n int
	for _, m := range got {
		if m.ReqID != 1<<50 {
			n++
		}
	}
	if n != after {
		t.Fatalf("after reconnecting b received %d messages, want %d", n, after)
	}
}

func TestQueueOverflowDropsWithoutBlocking(t *testing.T) {
	forEachMode(t, testQueueOverflow)
}

func testQueueOverflow(t *testing.T, e env) {
	// b's handler stalls, so a's calls hang (or its stream stops taking
	// writes) and its queue fills.
	gate := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	b := e.start(t, "b", func([]node.Message) { <-gate }, nil)
	t.Cleanup(release) // before b's Close (cleanups run last-in first-out)
	const (
		queue    = 16
		inFlight = 2
		batch    = 4
		n        = 10000
	)
	a := e.start(t, "a", func([]node.Message) {}, func(c *Config) {
		c.Peers = map[ring.NodeID]string{"b": b.Addr()}
		c.QueueSize = queue
		c.MaxInFlight = inFlight
		c.MaxBatch = batch
		// Long enough that no call times out (freeing its slot for
		// another batch) while the Sends below run.
		c.CallTimeout = 10 * time.Second
	})
	// 8 KiB objects, 80 MB in all: more than HTTP/2 flow control lets a
	// stream buffer, so a stream stalls too.
	object := bytes.Repeat([]byte{'o'}, 8<<10)
	began := time.Now()
	for i := range n {
		m := fullMessage(i, "a", "b")
		m.Object = object
		a.Send(m)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Fatalf("%d Sends to a stalled peer took %v: Send blocks", n, d)
	}
	// Unary: at most the queue, the calls in flight and one message held
	// back for the next batch can have escaped dropping. Stream: also what
	// the connection's flow-control windows absorbed.
	minDropped := uint64(n - (queue + inFlight*batch + 1))
	if e.mode == ModeStream {
		minDropped = n / 2
	}
	if c := a.Stats().Peers["b"]; c.Dropped < minDropped {
		t.Fatalf("stats = %+v, want at least %d dropped", c, minDropped)
	}
	release()
	testutil.Eventually(t, 10*time.Second, "every message accounted for", func() bool {
		c := a.Stats().Peers["b"]
		return c.Sent+c.Failed+c.Dropped == n
	})
}

func TestSetPeersAtRuntime(t *testing.T) {
	forEachMode(t, testSetPeers)
}

func testSetPeers(t *testing.T, e env) {
	a := e.start(t, "a", func([]node.Message) {}, nil)
	sb, sb2, sc := newSink(), newSink(), newSink()
	b := e.start(t, "b", sb.handle, nil)
	c := e.start(t, "c", sc.handle, nil)

	a.Send(fullMessage(0, "a", "b"))
	if got := a.Stats().Peers["b"]; got.Dropped != 1 {
		t.Fatalf("send to an unknown peer: stats %+v, want 1 dropped", got)
	}

	a.SetPeers(map[ring.NodeID]string{"b": b.Addr(), "c": c.Addr()})
	a.Send(fullMessage(1, "a", "b"))
	a.Send(fullMessage(2, "a", "c"))
	sb.wait(t, 1, 10*time.Second)
	sc.wait(t, 1, 10*time.Second)

	// b moves to a new address.
	b2 := e.start(t, "b", sb2.handle, nil)
	a.SetPeers(map[ring.NodeID]string{"b": b2.Addr(), "c": c.Addr()})
	a.Send(fullMessage(3, "a", "b"))
	if got := sb2.wait(t, 1, 10*time.Second); got[0].ReqID != fullMessage(3, "a", "b").ReqID {
		t.Fatalf("moved peer received %+v", got[0])
	}
	if sb.len() != 1 {
		t.Fatalf("old address of b received %d messages, want 1", sb.len())
	}

	// c is removed, once a has counted its message to c as sent: c's
	// handler has it already, but a unary call counts it when its answer
	// is back, which a loaded machine can delay past the removal.
	testutil.Eventually(t, 5*time.Second, "c's stats Sent 1", func() bool {
		return a.Stats().Peers["c"].Sent == 1
	})
	a.SetPeers(map[ring.NodeID]string{"b": b2.Addr()})
	a.Send(fullMessage(4, "a", "c"))
	testutil.Eventually(t, 5*time.Second, "c's stats Sent 1 (before removal) Dropped 1 (after)", func() bool {
		return a.Stats().Peers["c"] == Counters{Sent: 1, Dropped: 1}
	})
}

func TestMisaddressedMessagesAreRejected(t *testing.T) {
	forEachMode(t, testMisaddressed)
}

func testMisaddressed(t *testing.T, e env) {
	sb := newSink()
	b := e.start(t, "b", sb.handle, nil)
	// a believes c lives at b's address.
	a := e.start(t, "a", func([]node.Message) {}, func(cfg *Config) {
		cfg.Peers = map[ring.NodeID]string{"c": b.Addr(), "b": b.Addr()}
	})
	const n = 20
	for i := range n {
		a.Send(fullMessage(i, "a", "c"))
	}
	testutil.Eventually(t, 10*time.Second, "the misaddressed messages fail", func() bool {
		return a.Stats().Peers["c"].Failed == n
	})
	if got := a.Stats().Peers["c"]; got.Sent != 0 {
		t.Fatalf("a's stats for c = %+v: misaddressed messages counted as sent", got)
	}
	// A Step call is checked envelope by envelope; a stream is refused
	// when it opens, before any envelope arrives.
	wantRejected := uint64(n)
	if e.mode == ModeStream {
		wantRejected = 0
	}
	if got := b.Stats().Peers["a"].Rejected; got != wantRejected {
		t.Fatalf("b rejected %d messages, want %d", got, wantRejected)
	}
	// Rejected messages never reach the handler; a correctly addressed
	// one sent afterwards does.
	a.Send(fullMessage(99, "a", "b"))
	got := sb.wait(t, 1, 10*time.Second)
	if len(got) != 1 || got[0].To != "b" {
		t.Fatalf("b's handler got %+v, want only the message addressed to b", got)
	}
}

type interceptorFunc func(m *node.Message) (time.Duration, bool)

func (f interceptorFunc) Outbound(m *node.Message) (time.Duration, bool) { return f(m) }

func TestInterceptorDelay(t *testing.T) {
	trs, sinks := env{}.mesh(t, 2)
	a, sb := trs[0], sinks[1]
	const (
		n       = 200
		long    = 300 * time.Millisecond
		longID  = 1 << 31 // ReqID of the message delayed by long
		quickID = 1 << 30 // ReqID of a message sent undelayed right after it
	)
	delayOf := func(m *node.Message) time.Duration {
		switch {
		case m.ReqID == quickID:
			return 0
		case m.ReqID == longID:
			return long
		}
		return 10*time.Millisecond + time.Duration(m.ReqID%4)*5*time.Millisecond
	}
	a.SetInterceptor(interceptorFunc(func(m *node.Message) (time.Duration, bool) {
		return delayOf(m), false
	}))

	sentAt := map[uint64]time.Time{}
	send := func(id uint64) {
		sentAt[id] = time.Now()
		a.Send(node.Message{Type: node.MsgReplicaGet, Key: []byte("k"), From: "n1", To: "n2", ReqID: id})
	}
	send(longID)
	send(quickID)
	for i := range n {
		send(uint64(i))
	}
	sb.wait(t, n+2, 10*time.Second)
	msgs, at := sb.snapshot()
	arrived := map[uint64]time.Time{}
	for i, m := range msgs {
		arrived[m.ReqID] = at[i]
	}
	for id, sent := range sentAt {
		m := node.Message{ReqID: id}
		if took, want := arrived[id].Sub(sent), delayOf(&m); took < want {
			t.Errorf("message %d arrived after %v, want at least the injected %v", id, took, want)
		}
	}
	if !arrived[quickID].Before(arrived[longID]) {
		t.Errorf("an undelayed message waited behind a delayed one")
	}
	// Sent is counted when the ack comes back, just after delivery.
	testutil.Eventually(t, 10*time.Second, "the last ack", func() bool { return a.Stats().Peers["n2"].Sent == n+2 })
	if c := a.Stats().Peers["n2"]; c.FaultDelayed != n+1 {
		t.Errorf("stats = %+v, want FaultDelayed %d", c, n+1)
	}
}

func TestInterceptorDropAndModify(t *testing.T) {
	trs, sinks := env{}.mesh(t, 2)
	a, sb := trs[0], sinks[1]
	a.SetInterceptor(interceptorFunc(func(m *node.Message) (time.Duration, bool) {
		m.Err = "touched"
		return 0, m.ReqID%2 == 1
	}))
	const n = 200
	for i := range n {
		a.Send(node.Message{Type: node.MsgReplicaGet, Key: []byte("k"), From: "n1", To: "n2", ReqID: uint64(i)})
	}
	testutil.Eventually(t, 10*time.Second, "every message sent or dropped", func() bool {
		c := a.Stats().Peers["n2"]
		return c.Sent+c.FaultDropped == n
	})
	if c := a.Stats().Peers["n2"]; c.FaultDropped != n/2 || c.Sent != n/2 {
		t.Fatalf("stats = %+v, want %d fault-dropped and %d sent", c, n/2, n/2)
	}
	for _, m := range sb.wait(t, n/2, 10*time.Second) {
		if m.ReqID%2 == 1 || m.Err != "touched" {
			t.Fatalf("received %+v: want only even ReqIDs, as modified by the interceptor", m)
		}
	}

	a.SetInterceptor(nil)
	a.Send(node.Message{Type: node.MsgReplicaGet, Key: []byte("k"), From: "n1", To: "n2", ReqID: 1})
	if got := sb.wait(t, n/2+1, 10*time.Second); got[n/2].ReqID != 1 || got[n/2].Err != "" {
		t.Fatalf("after removing the interceptor received %+v", got[n/2])
	}
}

func TestCloseStopsGoroutines(t *testing.T) {
	forEachMode(t, testCloseStopsGoroutines)
}

func testCloseStopsGoroutines(t *testing.T, e env) {
	// Warm up gRPC's process-wide goroutines so they are in the baseline.
	func() {
		trs, sinks := e.mesh(t, 2)
		trs[0].Send(fullMessage(0, "n1", "n2"))
		sinks[1].wait(t, 1, 10*time.Second)
		for _, tr := range trs {
			_ = tr.Close()
		}
	}()
	time.Sleep(100 * time.Millisecond)
	base := runtime.NumGoroutine()

	trs, sinks := e.mesh(t, 3)
	for _, tr := range trs {
		for _, to := range trs {
			for k := range 200 {
				tr.Send(fullMessage(k, tr.cfg.ID, to.cfg.ID))
			}
		}
	}
	for _, s := range sinks {
		s.wait(t, 600, 10*time.Second)
	}
	// Leave work behind: a down peer, delayed messages, a stalled call.
	gate := make(chan struct{})
	stalled := e.start(t, "stalled", func([]node.Message) { <-gate }, nil)
	trs[0].SetPeers(map[ring.NodeID]string{"n2": trs[1].Addr(), "n3": trs[2].Addr(), "down": "127.0.0.1:1", "stalled": stalled.Addr()})
	trs[0].SetInterceptor(interceptorFunc(func(m *node.Message) (time.Duration, bool) {
		if m.To == "n3" {
			return time.Hour, false
		}
		return 0, false
	}))
	for k := range 50 {
		trs[0].Send(fullMessage(k, "n1", "down"))
		trs[0].Send(fullMessage(k, "n1", "n3"))
		trs[0].Send(fullMessage(k, "n1", "stalled"))
	}
	testutil.Eventually(t, 10*time.Second, "a call to the stalled peer is in flight", func() bool {
		return stalled.Stats().Peers["n1"].Received > 0
	})

	began := time.Now()
	for _, tr := range trs {
		if err := tr.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("Close with a stalled call in flight took %v; it should abort the call", d)
	}
	close(gate)
	if err := stalled.Close(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > base+2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			var buf bytes.Buffer
			_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
			t.Fatalf("%d goroutines 10s after Close, want at most %d (baseline + 2):\n%s", runtime.NumGoroutine(), base+2, &buf)
		}
	}

	// Everything left behind is accounted for as dropped or failed.
	c := trs[0].Stats().Peers["n3"]
	if c.FaultDelayed != 50 || c.Dropped != 50 {
		t.Errorf("delayed messages pending at Close: stats %+v, want 50 delayed and 50 dropped", c)
	}
	for _, id := range []ring.NodeID{"down", "stalled"} {
		if c := trs[0].Stats().Peers[id]; c.Sent+c.Failed+c.Dropped != 50 {
			t.Errorf("stats for %s = %+v: want all 50 messages accounted for", id, c)
		}
	}

	// A closed transport drops and counts, never panics or blocks.
	trs[0].Send(fullMessage(0, "n1", "n2"))
	trs[0].Send(fullMessage(0, "n1", "n1"))
	if c := trs[0].Stats().Peers["n2"]; c.Dropped != 1 {
		t.Errorf("Send after Close: stats %+v, want 1 dropped", c)
	}
	if err := trs[0].Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := trs[0].Start(); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close = %v, want ErrClosed", err)
	}
}

// TestCloseEndsOpenInboundStreams: senders keep their streams open for
// good, so Close must end them itself. With a CallTimeout of 30s, a Close
// that waited for the streams (GracefulStop) until its deadline would take
// 30s; it must return at once, and no batch may reach the Handler after.
func TestCloseEndsOpenInboundStreams(t *testing.T) {
	e := env{ModeStream}
	var calls atomic.Int64
	b := e.start(t, "b", func([]node.Message) { calls.Add(1) }, nil)
	senders := make([]*Transport, 3)
	for i := range senders {
		senders[i] = e.start(t, ring.NodeID(fmt.Sprintf("s%d", i)), func([]node.Message) {}, func(c *Config) {
			c.Peers = map[ring.NodeID]string{"b": b.Addr()}
		})
		senders[i].Send(fullMessage(i, senders[i].cfg.ID, "b"))
	}
	testutil.Eventually(t, 10*time.Second, "every sender's stream is open", func() bool {
		return b.Stats().Total.Received == uint64(len(senders))
	})

	closed := make(chan time.Duration, 1)
	began := time.Now()
	go func() {
		_ = b.Close()
		closed <- time.Since(began)
	}()
	select {
	case d := <-closed:
		// Generous for -race on a loaded machine, far below CallTimeout.
		if d > 5*time.Second {
			t.Errorf("Close with %d open inbound streams took %v", len(senders), d)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close with open inbound streams did not return within 20s")
	}
	after := calls.Load()
	for i, s := range senders {
		s.Send(fullMessage(10+i, s.cfg.ID, "b"))
	}
	testutil.Eventually(t, 10*time.Second, "messages to the closed node fail", func() bool {
		for _, s := range senders {
			if c := s.Stats().Peers["b"]; c.Failed+c.Dropped == 0 {
				return false
			}
		}
		return true
	})
	if n := calls.Load(); n != after {
		t.Fatalf("Handler called %d times after Close returned", n-after)
	}
}

func TestCloseRefusesLateInboundCalls(t *testing.T) {
	forEachMode(t, testCloseRefuses)
}

func testCloseRefuses(t *testing.T, e env) {
	var calls atomic.Int64
	b := e.start(t, "b", func([]node.Message) { calls.Add(1) }, nil)
	a := e.start(t, "a", func([]node.Message) {}, func(c *Config) {
		c.Peers = map[ring.NodeID]string{"b": b.Addr()}
	})
	_ = b.Close()
	for i := range 10 {
		a.Send(fullMessage(i, "a", "b"))
	}
	testutil.Eventually(t, 10*time.Second, "messages to a closed node fail", func() bool {
		return a.Stats().Peers["b"].Failed == 10
	})
	if calls.Load() != 0 {
		t.Fatalf("handler called %d times after Close", calls.Load())
	}
}

func TestNewValidatesConfig(t *testing.T) {
	h := func([]node.Message) {}
	ok := Config{ID: "a", ListenAddr: "127.0.0.1:0"}
	for name, tc := range map[string]struct {
		mutate func(*Config)
		h      Handler
	}{
		"empty ID":            {func(c *Config) { c.ID = "" }, h},
		"empty listen addr":   {func(c *Config) { c.ListenAddr = "" }, h},
		"listen without port": {func(c *Config) { c.ListenAddr = "127.0.0.1" }, h},
		"peer without port":   {func(c *Config) { c.Peers = map[ring.NodeID]string{"b": "localhost"} }, h},
		"peer with empty ID":  {func(c *Config) { c.Peers = map[ring.NodeID]string{"": "127.0.0.1:1"} }, h},
		"negative queue":      {func(c *Config) { c.QueueSize = -1 }, h},
		"negative timeout":    {func(c *Config) { c.CallTimeout = -time.Second }, h},
		"negative ping":       {func(c *Config) { c.PingInterval = -time.Second }, h},
		"huge batch bytes":    {func(c *Config) { c.MaxBatchBytes = maxMsgSize }, h},
		"huge batch":          {func(c *Config) { c.MaxBatch = maxBatchEnvelopes + 1 }, h},
		"nil handler":         {func(*Config) {}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := ok
			tc.mutate(&cfg)
			if _, err := New(cfg, tc.h); !errors.Is(err, ErrConfig) {
				t.Fatalf("New = %v, want ErrConfig", err)
			}
		})
	}
	tr, err := New(ok, h)
	if err != nil {
		t.Fatalf("New(valid) = %v", err)
	}
	want := Config{ID: "a", ListenAddr: "127.0.0.1:0", Peers: map[ring.NodeID]string{}, CallTimeout: DefaultCallTimeout,
		QueueSize: DefaultQueueSize, MaxBatch: DefaultMaxBatch, MaxBatchBytes: DefaultMaxBatchBytes,
		MaxInFlight: DefaultMaxInFlight, MaxReconnectDelay: DefaultMaxReconnectDelay, PingInterval: DefaultPingInterval, Logger: tr.cfg.Logger}
	if !reflect.DeepEqual(tr.cfg, want) {
		t.Fatalf("defaults = %+v, want %+v", tr.cfg, want)
	}
	if tr.cfg.Mode != ModeStream {
		t.Fatalf("default mode = %v, want stream (the daemon's)", tr.cfg.Mode)
	}
}

// TestReconnectEndsTheBackoff: after a peer was down long enough for the
// reconnect backoff to grow, a send right after it comes back fails at
// once unless Reconnect says the peer is alive again.
func TestReconnectEndsTheBackoff(t *testing.T) {
	forEachMode(t, func(t *testing.T, e env) {
		addr := downAddr(t, e)
		a := e.start(t, "a", func([]node.Message) {}, func(c *Config) {
			c.Peers = map[ring.NodeID]string{"b": addr}
			c.MaxReconnectDelay = 10 * time.Second
		})
		// Fail for long enough that the backoff grows past a few seconds
		// (50ms × 1.6^k: about 2.7 s after 1.5 s of failures).
		deadline := time.Now().Add(1500 * time.Millisecond)
		for i := 0; time.Now().Before(deadline); i++ {
			a.Send(fullMessage(i, "a", "b"))
			time.Sleep(20 * time.Millisecond)
		}
		sb := newSink()
		e.start(t, "b", sb.handle, func(c *Config) { c.ListenAddr = addr })
		a.Reconnect("b")
		a.Reconnect("nobody") // unknown peers are ignored
		a.Send(node.Message{Type: node.MsgReplicaGet, Key: []byte("k"), From: "a", To: "b", ReqID: 1 << 50})
		sb.wait(t, 1, 1500*time.Millisecond)
	})
}

// TestReconnectIsSafeUnderConcurrentUse: Reconnect runs on gossip's
// goroutine while messages are sent and peers change. (grpc-go's
// ResetConnectBackoff, which an earlier Reconnect called, iterates a map
// gRPC's balancer writes: a fatal concurrent map access. Found by review.)
func TestReconnectIsSafeUnderConcurrentUse(t *testing.T) {
	forEachMode(t, func(t *testing.T, e env) {
		sb := newSink()
		b := e.start(t, "b", sb.handle, nil)
		a := e.start(t, "a", func([]node.Message) {}, func(c *Config) {
			c.Peers = map[ring.NodeID]string{"b": b.Addr()}
		})
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					switch g {
					case 0, 3:
						a.Reconnect("b")
					case 1:
						a.Send(node.Message{Type: node.MsgReplicaGet, Key: []byte("k"), From: "a", To: "b", ReqID: uint64(i) + 1})
					case 2:
						if i%50 == 0 {
							a.SetPeers(map[ring.NodeID]string{})
							a.SetPeers(map[ring.NodeID]string{"b": b.Addr()})
						}
					}
					time.Sleep(time.Millisecond)
				}
			}()
		}
		time.Sleep(1500 * time.Millisecond)
		close(stop)
		wg.Wait()
		if sb.len() == 0 {
			t.Fatal("nothing was delivered while Reconnect ran")
		}
		a.Close()
		a.Reconnect("b") // after Close: a no-op
	})
}
