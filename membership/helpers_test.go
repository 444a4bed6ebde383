package membership

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/dynago/dynago/internal/testutil"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

// recorder collects one member's callbacks.
type recorder struct {
	mu     sync.Mutex
	events []Event
	states []recordedState
}

type recordedState struct {
	version uint64
	data    string
}

func (r *recorder) onEvent(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) onState(v uint64, b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, recordedState{v, string(b)})
}

// history is the sequence of statuses reported for id.
func (r *recorder) history(id ring.NodeID) []node.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []node.Status
	for _, ev := range r.events {
		if ev.Member.ID == id {
			out = append(out, ev.Member.Status)
		}
	}
	return out
}

func (r *recorder) lastEvent(id ring.NodeID) (Event, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.events) - 1; i >= 0; i-- {
		if r.events[i].Member.ID == id {
			return r.events[i], true
		}
	}
	return Event{}, false
}

func (r *recorder) stateLog() []recordedState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.states)
}

// tmember is a started member with its recorder.
type tmember struct {
	*Membership
	id   ring.NodeID
	port int
	rec  *recorder
}

func metaFor(id ring.NodeID, port int) Meta {
	return Meta{HTTPAddr: fmt.Sprintf("127.0.0.1:%d", port+1000), RPCAddr: fmt.Sprintf("%s.rpc:%d", id, port)}
}

// startMember starts a lab-preset member on 127.0.0.1:port (a fresh port
// when 0) and shuts it down when the test ends.
func startMember(t *testing.T, id ring.NodeID, port int, mod func(*Config)) *tmember {
	t.Helper()
	if port == 0 {
		port = testutil.FreeGossipPort(t)
	}
	rec := &recorder{}
	cfg := Config{
		ID:       id,
		BindAddr: fmt.Sprintf("127.0.0.1:%d", port),
		Meta:     metaFor(id, port),
		Preset:   PresetLab,
		OnEvent:  rec.onEvent,
		OnState:  rec.onState,
	}
	if mod != nil {
		mod(&cfg)
	}
	m, err := Start(cfg)
	if err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return &tmember{Membership: m, id: id, port: port, rec: rec}
}

// startCluster starts n members; all but the first join through the first.
func startCluster(t *testing.T, n int, mod func(*Config)) []*tmember {
	t.Helper()
	var ms []*tmember
	for i := range n {
		m := startMember(t, ring.NodeID(fmt.Sprintf("n%d", i+1)), 0, mod)
		if i > 0 {
			if got, err := m.Join([]string{ms[0].Addr()}); err != nil || got != 1 {
				t.Fatalf("%s join: %d, %v", m.id, got, err)
			}
		}
		ms = append(ms, m)
	}
	// Forming the cluster is not what these tests measure; under -race on
	// a 2-core machine running other packages' tests a member may be
	// suspected during formation and must wait for the reconnect loop.
	for _, m := range ms {
		waitAllAlive(t, m, ms, 15*time.Second)
	}
	return ms
}

func waitAllAlive(t *testing.T, m *tmember, all []*tmember, within time.Duration) {
	t.Helper()
	testutil.Eventually(t, within, fmt.Sprintf("%s sees %d members alive", m.id, len(all)), func() bool {
		got := m.Members()
		if len(got) != len(all) {
			return false
		}
		for _, x := range got {
			if x.Status != node.Alive {
				return false
			}
		}
		return true
	})
}

// waitReported waits until m's last event about id reports st (callbacks
// trail the table that Members reads), and checks Members agrees.
func waitReported(t *testing.T, m *tmember, id ring.NodeID, st node.Status, within time.Duration) {
	t.Helper()
	testutil.Eventually(t, within, fmt.Sprintf("%s reports %s %v", m.id, id, st), func() bool {
		ev, ok := m.rec.lastEvent(id)
		return ok && ev.Member.Status == st
	})
	if got, ok := statusOf(m.Membership, id); !ok || got != st {
		t.Errorf("%s: Members() has %s %v, but the last event said %v", m.id, id, got, st)
	}
}

func statusOf(m *Membership, id ring.NodeID) (node.Status, bool) {
	for _, x := range m.Members() {
		if x.ID == id {
			return x.Status, true
		}
	}
	return 0, false
}

// gatedTransport cuts a member off the network while cut is set: packets
// in and out are dropped and TCP streams refused, as if its cable were
// pulled while the process keeps running.
type gatedTransport struct {
	memberlist.NodeAwareTransport
	cut     *atomic.Bool
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	once    sync.Once
}

var errCut = errors.New("test: network cut")

func gate(cut *atomic.Bool) func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
	return func(inner memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
		g := &gatedTransport{
			NodeAwareTransport: inner,
			cut:                cut,
			packets:            make(chan *memberlist.Packet),
			streams:            make(chan net.Conn),
			done:               make(chan struct{}),
		}
		go g.forward()
		return g
	}
}

func (g *gatedTransport) forward() {
	for {
		select {
		case <-g.done:
			return
		case p := <-g.NodeAwareTransport.PacketCh():
			if g.cut.Load() {
				continue
			}
			select {
			case g.packets <- p:
			case <-g.done:
				return
			}
		case c := <-g.NodeAwareTransport.StreamCh():
			if g.cut.Load() {
				c.Close()
				continue
			}
			select {
			case g.streams <- c:
			case <-g.done:
				c.Close()
				return
			}
		}
	}
}

func (g *gatedTransport) PacketCh() <-chan *memberlist.Packet { return g.packets }
func (g *gatedTransport) StreamCh() <-chan net.Conn           { return g.streams }

func (g *gatedTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if g.cut.Load() {
		return time.Now(), nil
	}
	return g.NodeAwareTransport.WriteTo(b, addr)
}

func (g *gatedTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if g.cut.Load() {
		return time.Now(), nil
	}
	return g.NodeAwareTransport.WriteToAddress(b, a)
}

func (g *gatedTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if g.cut.Load() {
		return nil, errCut
	}
	return g.NodeAwareTransport.DialTimeout(addr, timeout)
}

func (g *gatedTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if g.cut.Load() {
		return nil, errCut
	}
	return g.NodeAwareTransport.DialAddressTimeout(a, timeout)
}

// Shutdown tears the inner transport down before stopping the forwarder,
// as memberlist's own Shutdown does with its handlers: the inner listeners
// hand each accepted stream and packet to an unbuffered channel and wait
// for their goroutines on shutdown, so a forwarder that stopped first could
// leave one blocked on that send and the shutdown waiting forever.
func (g *gatedTransport) Shutdown() error {
	err := g.NodeAwareTransport.Shutdown()
	g.once.Do(func() { close(g.done) })
	return err
}

// captureHandler records slog records.
type captureHandler struct {
	mu      sync.Mutex
	records []slog.Record
	attrs   []slog.Attr
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	r.AddAttrs(h.attrs...)
	h.records = append(h.records, r)
	return nil
}

func (h *captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.attrs = append(h.attrs, as...)
	return h
}

func (h *captureHandler) WithGroup(string) slog.Handler { return h }

// memberlistLines returns the levels of the records forwarded from
// memberlist.
func (h *captureHandler) memberlistLines() []slog.Level {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []slog.Level
	for _, r := range h.records {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "source" && a.Value.String() == "memberlist" {
				out = append(out, r.Level)
				return false
			}
			return true
		})
	}
	return out
}
