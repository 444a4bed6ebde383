package storage

import (
	"bytes"
	"sync"

	"github.com/google/btree"
)

// memDegree is the B-tree node fan-out; 32 is google/btree's usual choice
// and keeps node copies after a Clone cheap.
const memDegree = 32

type memItem struct {
	key   []byte
	value []byte
}

func memLess(a, b memItem) bool { return bytes.Compare(a.key, b.key) < 0 }

// prior is the durable state of one key before its unsynced writes: what a
// crash must restore.
type prior struct {
	value   []byte
	existed bool
}

// Mem is an in-memory Engine for the simulator and tests, ordered by a
// google/btree. It models a disk with a write-ahead log: it remembers which
// writes are durable, so Crash can drop exactly the writes a power loss
// would drop. The zero value is not usable; call NewMem.
type Mem struct {
	mu     sync.Mutex
	tree   *btree.BTreeG[memItem]
	undo   map[string]prior // keys written since the last durable point
	closed bool
}

var _ Engine = (*Mem)(nil)

// NewMem returns an empty in-memory engine.
func NewMem() *Mem {
	return &Mem{
		tree: btree.NewG(memDegree, memLess),
		undo: make(map[string]prior),
	}
}

// Get implements Engine.
func (m *Mem) Get(key []byte) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	it, ok := m.tree.Get(memItem{key: key})
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(it.value), nil
}

// Apply implements Engine. The batch's bytes are copied into the tree, so
// the caller may Reset and reuse b.
func (m *Mem) Apply(b *Batch, sync bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	// The whole batch goes in under one lock hold, which is what makes it
	// atomic to readers; a crash is atomic too because Crash also takes the
	// lock.
	_ = b.Each(func(key, value []byte, deleted bool) error {
		if !sync {
			m.rememberPrior(key)
		}
		if deleted {
			m.tree.Delete(memItem{key: key})
			return nil
		}
		m.tree.ReplaceOrInsert(memItem{key: bytes.Clone(key), value: bytes.Clone(value)})
		return nil
	})
	if sync {
		// A log sync covers every earlier write, not only this batch.
		clear(m.undo)
	}
	return nil
}

// rememberPrior records key's durable state the first time key is written
// after a durable point. Later writes must not overwrite it: the crash
// target is the state at the durable point, not an intermediate one.
func (m *Mem) rememberPrior(key []byte) {
	if _, ok := m.undo[string(key)]; ok {
		return
	}
	it, ok := m.tree.Get(memItem{key: key})
	m.undo[string(key)] = prior{value: it.value, existed: ok}
}

// Sync implements Engine.
func (m *Mem) Sync() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	clear(m.undo)
	return nil
}

// Scan implements Engine. It iterates a copy-on-write clone of the tree
// taken under the lock, so fn sees a consistent snapshot and may itself call
// Get, Apply or Scan without deadlocking.
func (m *Mem) Scan(lower, upper []byte, fn func(key, value []byte) error) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	snap := m.tree.Clone()
	m.mu.Unlock()

	var err error
	visit := func(it memItem) bool {
		err = fn(it.key, it.value)
		return err == nil
	}
	switch {
	case upper == nil:
		snap.AscendGreaterOrEqual(memItem{key: lower}, visit)
	case bytes.Compare(lower, upper) < 0:
		snap.AscendRange(memItem{key: lower}, memItem{key: upper}, visit)
	}
	return err
}

// Close implements Engine. Like a clean shutdown of a real engine, it makes
// every applied write durable.
func (m *Mem) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	clear(m.undo)
	m.closed = true
	return nil
}

// Crash simulates a power loss followed by a restart: every write not yet
// made durable is dropped, durable writes stay. The engine is open
// afterwards even if it had been closed, as a restarted process reopens its
// disk.
func (m *Mem) Crash() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, p := range m.undo {
		if p.existed {
			m.tree.ReplaceOrInsert(memItem{key: []byte(k), value: p.value})
		} else {
			m.tree.Delete(memItem{key: []byte(k)})
		}
	}
	clear(m.undo)
	m.closed = false
}

// Wipe simulates the loss of the disk: everything is gone, durable or not.
// The engine is open afterwards, as a node restarted on a fresh disk.
func (m *Mem) Wipe() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tree = btree.NewG(memDegree, memLess)
	clear(m.undo)
	m.closed = false
}

// Unsynced returns how many keys hold writes that a Crash would drop.
func (m *Mem) Unsynced() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.undo)
}

// Len returns the number of keys stored.
func (m *Mem) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tree.Len()
}
