package server

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/dynago/dynago/fault"
	"github.com/dynago/dynago/internal/testutil"
)

// fakeGossip records what the wrapper lets through.
type fakeGossip struct {
	mu       sync.Mutex
	writes   map[string][]time.Time // addr -> arrival times
	dials    []string
	shutdown bool
}

func (f *fakeGossip) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return net.IPv4(127, 0, 0, 1), 7946, nil
}
func (f *fakeGossip) WriteTo(b []byte, addr string) (time.Time, error) {
	return f.WriteToAddress(b, memberlist.Address{Addr: addr})
}
func (f *fakeGossip) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	f.writes[a.Addr+"/"+string(b)] = append(f.writes[a.Addr+"/"+string(b)], now)
	return now, nil
}
func (f *fakeGossip) PacketCh() <-chan *memberlist.Packet { return nil }
func (f *fakeGossip) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return f.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}
func (f *fakeGossip) DialAddressTimeout(a memberlist.Address, _ time.Duration) (net.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dials = append(f.dials, a.Addr)
	c1, c2 := net.Pipe()
	_ = c2.Close()
	return c1, nil
}
func (f *fakeGossip) StreamCh() <-chan net.Conn { return nil }
func (f *fakeGossip) Shutdown() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shutdown = true
	return nil
}

func (f *fakeGossip) arrivals(key string) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.writes[key]...)
}

func TestFaultGossipWrapper(t *testing.T) {
	inner := &fakeGossip{writes: map[string][]time.Time{}}
	ids := map[string]string{"10.0.0.2:7946": "n2", "10.0.0.3:7946": "n3", "10.0.0.4:7946": "n4"}
	inj := fault.NewInjector(1)
	g := wrapGossip(inner, inj, func(addr string) (string, bool) { id, ok := ids[addr]; return id, ok })
	if err := inj.Set(fault.Rules{
		Cut:   []string{"n4"},
		Delay: map[string]fault.Delay{"n3": fault.Fixed(30 * time.Millisecond)},
	}); err != nil {
		t.Fatal(err)
	}

	// Cut: packets vanish without an error, dials fail.
	if _, err := g.WriteTo([]byte("p"), "10.0.0.4:7946"); err != nil {
		t.Errorf("packet to cut n4: %v, want silent loss", err)
	}
	if _, err := g.DialTimeout("10.0.0.4:7946", time.Second); !errors.Is(err, errGossipDropped) {
		t.Errorf("dial to cut n4: %v, want errGossipDropped", err)
	}

	// fault.Delay: the caller is not held up, the packet arrives later, and the
	// buffer memberlist reuses is copied.
	buf := []byte("d")
	start := time.Now()
	if _, err := g.WriteToAddress(buf, memberlist.Address{Addr: "10.0.0.3:7946", Name: "n3"}); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) >= 30*time.Millisecond {
		t.Error("delayed packet blocked the caller")
	}
	buf[0] = 'x'
	var got []time.Time
	testutil.Eventually(t, 5*time.Second, "the delayed packet arrives", func() bool {
		got = inner.arrivals("10.0.0.3:7946/d")
		return len(got) > 0
	})
	if len(got) != 1 || got[0].Sub(start) < 30*time.Millisecond {
		t.Fatalf("delayed packet arrivals %v (start %v), want one ≥ 30ms later", got, start)
	}

	// A delayed dial waits, then connects; a delay beyond the timeout fails.
	start = time.Now()
	c, err := g.DialTimeout("10.0.0.3:7946", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if el := time.Since(start); el < 30*time.Millisecond {
		t.Errorf("delayed dial took %v, want ≥ 30ms", el)
	}
	if _, err := g.DialTimeout("10.0.0.3:7946", 10*time.Millisecond); !errors.Is(err, errGossipTimeout) {
		t.Errorf("dial with delay beyond timeout: %v, want errGossipTimeout", err)
	}

	// Unmapped and unaffected addresses pass straight through.
	if _, err := g.WriteTo([]byte("u"), "10.9.9.9:7946"); err != nil || len(inner.arrivals("10.9.9.9:7946/u")) != 1 {
		t.Errorf("unmapped address not passed through: %v", err)
	}
	if _, err := g.WriteTo([]byte("n"), "10.0.0.2:7946"); err != nil || len(inner.arrivals("10.0.0.2:7946/n")) != 1 {
		t.Errorf("n2 without rules not passed through: %v", err)
	}

	// Shutdown discards packets still waiting and refuses new ones.
	if _, err := g.WriteTo([]byte("late"), "10.0.0.3:7946"); err != nil {
		t.Fatal(err)
	}
	if err := g.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if _, err := g.WriteTo([]byte("after"), "10.0.0.3:7946"); !errors.Is(err, errGossipShutdown) {
		t.Errorf("write after Shutdown: %v, want errGossipShutdown", err)
	}
	time.Sleep(60 * time.Millisecond)
	if n := len(inner.arrivals("10.0.0.3:7946/late")); n != 0 {
		t.Errorf("%d packets written after Shutdown", n)
	}
	inner.mu.Lock()
	defer inner.mu.Unlock()
	if !inner.shutdown {
		t.Error("inner transport not shut down")
	}
	if len(inner.dials) != 1 {
		t.Errorf("inner dials %v, want only the one delayed dial", inner.dials)
	}
}
