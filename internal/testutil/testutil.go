// Package testutil holds the helpers every package's tests share: a free
// loopback address and bounded waits for a condition. It is imported by
// _test.go files only (internal/layering checks that no production package
// links it), and it depends on the standard library and internal/ports
// alone, so any package, including transport and membership below server,
// can use it without an import cycle. The bench module imports it too: internal/ is open to it
// because its module path lies under this module's.
package testutil

import (
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/dynago/dynago/internal/ports"
)

// FreeAddr returns a 127.0.0.1 address nobody listens on right now, on a
// port below the kernel's ephemeral range (internal/ports says why). It
// reserves nothing: another test process choosing the same random port
// between this check and its use is the race left, and the listener that
// loses it fails loudly. (It used to take a ":0" port, from the ephemeral
// range: a CI run lost one to an outgoing connection before the server
// under test bound it.)
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}

// FreePort is FreeAddr's port alone, for what takes a number (a container's
// published port).
func FreePort(t testing.TB) int {
	t.Helper()
	return freePort(t, false)
}

// FreeGossipPort is FreeAddr's port for memberlist, which binds TCP and UDP
// on one number: the port was free for both a moment ago.
func FreeGossipPort(t testing.TB) int {
	t.Helper()
	return freePort(t, true)
}

func freePort(t testing.TB, udpToo bool) int {
	t.Helper()
	lo, hi := 10000, ports.EphemeralStart()
	if hi-lo < 1000 {
		lo, hi = 20000, 30000 // an unusual ephemeral range: pick from the middle anyway
	}
	for range 100 {
		port := lo + rand.IntN(hi-lo)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue // taken
		}
		if udpToo {
			pc, err := net.ListenPacket("udp", addr)
			if err != nil {
				ln.Close()
				continue
			}
			pc.Close()
		}
		ln.Close()
		return port
	}
	t.Fatalf("finding a free port below %d: 100 random tries were all taken", hi)
	return 0
}

// Eventually polls cond until it holds, and fails the test if it still does
// not after within. The poll interval is a hundredth of within, kept
// between 5 ms and 100 ms: short waits notice quickly, and long ones (whole
// clusters of processes, polled over HTTP) do not load a shared machine.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll(within, cond) {
		t.Fatalf("timed out after %v waiting until %s", within, what)
	}
}

// EventuallyNil is Eventually for a check that can say what it saw: it
// polls check until it returns nil, and fails the test with check's last
// error if it still does not after within.
func EventuallyNil(t testing.TB, within time.Duration, check func() error) {
	t.Helper()
	var last error
	if !poll(within, func() bool { last = check(); return last == nil }) {
		t.Fatalf("timed out after %v: %v", within, last)
	}
}

// poll calls cond until it holds (true) or within has passed (false).
func poll(within time.Duration, cond func() bool) bool {
	interval := min(max(within/100, 5*time.Millisecond), 100*time.Millisecond)
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
	return true
}
