package server

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/dynago/dynago/fault"
	"github.com/dynago/dynago/transport"
)

// The fault injector is wired in here, at the composition root: package
// fault knows neither the transport nor memberlist, so that the HTTP layer,
// which needs only its Rules and Stats, links no RPC or gossip code.
var _ transport.Interceptor = (*fault.Injector)(nil)

// errGossipDropped is the dial error of a gossip stream the injector
// dropped (destination cut, or the connection attempt lost).
var errGossipDropped = errors.New("server: gossip connection dropped by fault injection")

// errGossipTimeout is the dial error when the injected delay alone exceeds
// the dial timeout.
var errGossipTimeout = errors.New("server: injected gossip delay exceeds dial timeout")

// errGossipShutdown is returned for writes after Shutdown.
var errGossipShutdown = errors.New("server: gossip transport shut down")

// wrapGossip returns a memberlist transport that applies inj's rules to
// gossip sent through inner, so that a partition or a slow link affects
// failure detection the way it affects replication:
//   - a packet (UDP) to a dropped destination is discarded silently, as the
//     network would; a delayed one is written by a timer later, without
//     holding up the caller;
//   - a stream dial (TCP: push/pull, fallback probes) to a dropped
//     destination fails with errGossipDropped; a delayed one is dialled
//     after the delay, so the exchange it opens starts that much later.
//     Bytes on an already open stream are not delayed: memberlist opens a
//     stream per exchange, so the dial is where latency shows.
//
// addrToID maps a gossip address (host:port) to the node ID the rules are
// keyed by; addresses it does not know are passed through untouched.
// Inbound traffic is never touched: each node injects faults on what it
// sends, so a cut in both directions needs rules on both nodes.
func wrapGossip(inner memberlist.NodeAwareTransport, inj *fault.Injector, addrToID func(addr string) (string, bool)) memberlist.NodeAwareTransport {
	return &gossipTransport{NodeAwareTransport: inner, inj: inj, addrToID: addrToID}
}

type gossipTransport struct {
	memberlist.NodeAwareTransport // FinalAdvertiseAddr, PacketCh, StreamCh pass through
	inj                           *fault.Injector
	addrToID                      func(string) (string, bool)

	// mu guards closed and orders it with timers: after Shutdown no
	// delayed packet is written to the closed inner transport.
	mu      sync.Mutex
	closed  bool
	pending map[*time.Timer]struct{}
}

func (g *gossipTransport) decide(addr string) (time.Duration, bool) {
	id, ok := g.addrToID(addr)
	if !ok {
		return 0, false
	}
	return g.inj.Decide(id)
}

func (g *gossipTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return g.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (g *gossipTransport) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	delay, drop := g.decide(addr.Addr)
	if drop {
		// A lost datagram is not an error to the sender.
		return time.Now(), nil
	}
	if delay <= 0 {
		return g.NodeAwareTransport.WriteToAddress(b, addr)
	}
	// memberlist may reuse b once WriteTo returns.
	buf := append([]byte(nil), b...)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return time.Time{}, errGossipShutdown
	}
	if g.pending == nil {
		g.pending = map[*time.Timer]struct{}{}
	}
	var t *time.Timer
	t = time.AfterFunc(delay, func() {
		g.mu.Lock()
		delete(g.pending, t)
		closed := g.closed
		g.mu.Unlock()
		if !closed {
			// Errors of a late write are like a datagram lost on the way.
			_, _ = g.NodeAwareTransport.WriteToAddress(buf, addr)
		}
	})
	g.pending[t] = struct{}{}
	return time.Now(), nil
}

func (g *gossipTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return g.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (g *gossipTransport) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	delay, drop := g.decide(addr.Addr)
	if drop {
		return nil, fmt.Errorf("%w: dial %s", errGossipDropped, addr)
	}
	if delay > 0 {
		if timeout > 0 && delay >= timeout {
			time.Sleep(timeout)
			return nil, fmt.Errorf("%w: dial %s: delay %v, timeout %v", errGossipTimeout, addr, delay, timeout)
		}
		time.Sleep(delay)
		if timeout > 0 {
			timeout -= delay
		}
	}
	return g.NodeAwareTransport.DialAddressTimeout(addr, timeout)
}

// Shutdown stops pending delayed packets, then shuts inner down.
func (g *gossipTransport) Shutdown() error {
	g.mu.Lock()
	g.closed = true
	for t := range g.pending {
		t.Stop()
	}
	g.pending = nil
	g.mu.Unlock()
	return g.NodeAwareTransport.Shutdown()
}
