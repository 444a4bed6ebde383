package testutil

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynago/dynago/internal/ports"
)

func TestFreeAddrIsLoopbackAndBindable(t *testing.T) {
	addr := FreeAddr(t)
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("FreeAddr() = %q, want a 127.0.0.1 host:port", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening on FreeAddr() %s: %v", addr, err)
	}
	ln.Close()
}

// The ports FreeAddr picks lie below the kernel's ephemeral range, where no
// outgoing connection can take them before the test binds them.
func TestFreeAddrStaysBelowEphemeralPorts(t *testing.T) {
	eph := ports.EphemeralStart()
	for range 50 {
		addr := FreeAddr(t)
		_, p, _ := net.SplitHostPort(addr)
		port, err := strconv.Atoi(p)
		if err != nil {
			t.Fatalf("FreeAddr() = %q: %v", addr, err)
		}
		if port >= eph {
			t.Fatalf("FreeAddr() = %q: port %d is in the ephemeral range (from %d)", addr, port, eph)
		}
	}
}

func TestFreeGossipPortIsFreeForTCPAndUDP(t *testing.T) {
	eph := ports.EphemeralStart()
	for range 20 {
		port := FreeGossipPort(t)
		if port >= eph {
			t.Fatalf("FreeGossipPort() = %d: in the ephemeral range (from %d)", port, eph)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("FreeGossipPort() = %d, but TCP cannot bind it: %v", port, err)
		}
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			ln.Close()
			t.Fatalf("FreeGossipPort() = %d, but UDP cannot bind it: %v", port, err)
		}
		pc.Close()
		ln.Close()
	}
}

func TestEventuallyReturnsOnceCondHolds(t *testing.T) {
	var calls atomic.Int32
	Eventually(t, 2*time.Second, "the third call", func() bool { return calls.Add(1) >= 3 })
	if n := calls.Load(); n != 3 {
		t.Fatalf("cond called %d times, want 3 (it must stop polling once cond holds)", n)
	}
}

// recorder is a testing.TB whose Fatalf records instead of stopping the
// outer test, so the failing path of Eventually can be checked.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	panic(r)
}

func TestEventuallyFailsAfterDeadline(t *testing.T) {
	r := &recorder{TB: t}
	start := time.Now()
	func() {
		defer func() {
			if p := recover(); p != r {
				t.Fatalf("Eventually did not fail through Fatalf: recovered %v", p)
			}
		}()
		Eventually(r, 50*time.Millisecond, "never", func() bool { return false })
	}()
	if took := time.Since(start); took < 50*time.Millisecond || took > 2*time.Second {
		t.Fatalf("Eventually gave up after %v, want about 50ms", took)
	}
	if r.failed == "" {
		t.Fatal("Eventually returned without failing on a condition that never holds")
	}
}

func TestEventuallyNilFailsWithTheLastError(t *testing.T) {
	var calls atomic.Int32
	EventuallyNil(t, 2*time.Second, func() error {
		if calls.Add(1) < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if n := calls.Load(); n != 3 {
		t.Fatalf("check called %d times, want 3", n)
	}

	r := &recorder{TB: t}
	func() {
		defer func() {
			if p := recover(); p != r {
				t.Fatalf("EventuallyNil did not fail through Fatalf: recovered %v", p)
			}
		}()
		n := 0
		EventuallyNil(r, 50*time.Millisecond, func() error { n++; return fmt.Errorf("seen %d", n) })
	}()
	if !strings.Contains(r.failed, "seen ") {
		t.Fatalf("failure %q does not carry the last error", r.failed)
	}
}
