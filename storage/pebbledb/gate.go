package pebbledb

import (
	"sync"

	"github.com/dynago/dynago/storage"
)

// closeGate lets operations run concurrently with each other but never with
// Close: Pebble panics on use after close, and a daemon shutting down while
// requests are in flight must answer storage.ErrClosed instead. It is not an RWMutex
// on purpose: an RWMutex blocks new readers once Close waits, so a Scan
// callback that calls Get would deadlock against a concurrent Close; the gate
// refuses the nested call with storage.ErrClosed instead.
type closeGate struct {
	mu     sync.Mutex
	idle   sync.Cond // signalled when active drops to zero while closing
	active int
	closed bool
}

// enter registers one operation; it fails once Close has begun.
func (g *closeGate) enter() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return storage.ErrClosed
	}
	g.active++
	return nil
}

func (g *closeGate) exit() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.active--
	if g.active == 0 && g.closed {
		g.idle.Broadcast()
	}
}

// close refuses new operations and waits for running ones to finish. It
// reports false if the gate was already closed.
func (g *closeGate) close() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.closed = true
	if g.idle.L == nil {
		g.idle.L = &g.mu
	}
	for g.active > 0 {
		g.idle.Wait()
	}
	return true
}
