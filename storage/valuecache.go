package storage

import (
	"bytes"
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// ValueCache keeps the values of recently read and written keys in memory,
// absences included, so that a point read of a hot key costs a map lookup
// instead of an LSM search: in an engine such as Pebble a Get builds an
// iterator over the memtables and every level's bloom filters, which was
// the largest single cost of a replica's read (issue #11's profile). An
// engine puts it in front of its own Get and keeps it current in Apply; it
// caches bytes only and is safe for concurrent use.
//
// Eviction is by generations rather than a linked list: entries go to the
// current generation; when it holds half the budget it becomes the old one
// and the previous old one is dropped. A hit in the old generation moves
// the entry to the current one. That approximates LRU with two maps and no
// per-entry pointers (nothing extra for the garbage collector to trace),
// and a burst of writes (a handoff, an anti-entropy repair) can push out
// at most the colder half.
type ValueCache struct {
	half int // bytes one generation may hold
	// seed keys the maps' 64-bit hashes of the keys. The maps are keyed by
	// those hashes rather than by string keys: a lookup then compares a
	// word in the map's own slot instead of chasing every candidate's key
	// bytes (the string-keyed maps were 7 % of a coordinator's CPU under a
	// read load, mostly cache misses), and an entry is one allocation,
	// key and value together, instead of two. The key is kept in the entry
	// and compared on a hit; two keys with the same hash just take turns.
	seed maphash.Seed

	mu       sync.Mutex
	cur, old map[uint64]cached
	curBytes int
	// gen counts Applies. A Get that missed records it before reading the
	// engine, and caches what it read only if no Apply ran meanwhile:
	// otherwise the value read could be older than the one Apply cached.
	gen uint64

	hits, misses atomic.Uint64
}

// cached is one entry: the key, then the value, in one array.
type cached struct {
	kv     []byte
	klen   int
	absent bool
}

func (e cached) key() []byte   { return e.kv[:e.klen] }
func (e cached) value() []byte { return e.kv[e.klen:] }
func (e cached) size() int     { return len(e.kv) + entryOverhead }

func entry(key, value []byte, absent bool) cached {
	kv := make([]byte, 0, len(key)+len(value))
	kv = append(append(kv, key...), value...)
	return cached{kv: kv, klen: len(key), absent: absent}
}

// entryOverhead approximates a map entry's own memory beyond its key and
// value bytes, so that many small entries are not undercounted.
const entryOverhead = 64

// NewValueCache returns a cache holding about maxBytes of keys and values;
// nil when maxBytes is zero or negative (a nil cache caches nothing).
func NewValueCache(maxBytes int) *ValueCache {
	if maxBytes <= 0 {
		return nil
	}
	return &ValueCache{half: maxBytes / 2, seed: maphash.MakeSeed(), cur: map[uint64]cached{}, old: map[uint64]cached{}}
}

// Get returns a copy of key's value, or ErrNotFound, from the cache when it
// holds key, and otherwise from read, whose answer it keeps.
func (c *ValueCache) Get(key []byte, read func() ([]byte, error)) ([]byte, error) {
	if c == nil {
		return read()
	}
	h := maphash.Bytes(c.seed, key)
	c.mu.Lock()
	e, ok := c.cur[h]
	ok = ok && bytes.Equal(e.key(), key)
	if !ok {
		if e, ok = c.old[h]; ok && bytes.Equal(e.key(), key) {
			delete(c.old, h)
			c.addLocked(h, e)
		} else {
			ok = false
		}
	}
	gen := c.gen
	c.mu.Unlock()
	if ok {
		c.hits.Add(1)
		if e.absent {
			return nil, ErrNotFound
		}
		// Entries are never changed once made, so the copy needs no lock;
		// the caller owns what Get returns.
		return append([]byte(nil), e.value()...), nil
	}
	c.misses.Add(1)
	v, err := read()
	absent := errors.Is(err, ErrNotFound)
	if err != nil && !absent {
		return nil, err
	}
	c.mu.Lock()
	if c.gen == gen {
		c.addLocked(h, entry(key, v, absent))
	}
	c.mu.Unlock()
	return v, err
}

// Applied records b's writes after the engine has applied them.
func (c *ValueCache) Applied(b *Batch) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	_ = b.Each(func(key, value []byte, deleted bool) error {
		h := maphash.Bytes(c.seed, key)
		delete(c.old, h)
		c.addLocked(h, entry(key, value, deleted))
		return nil
	})
}

// Clear drops every entry: after a failed Apply the engine may hold some
// of the batch or none of it, so nothing cached can be trusted.
func (c *ValueCache) Clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.cur, c.old, c.curBytes = map[uint64]cached{}, map[uint64]cached{}, 0
}

// Stats returns the hits and misses counted so far.
func (c *ValueCache) Stats() (hits, misses uint64) {
	if c == nil {
		return 0, 0
	}
	return c.hits.Load(), c.misses.Load()
}

// addLocked makes e the current generation's entry for hash h, replacing
// whatever entry had that hash (the same key's older value, or, rarely,
// another key's).
func (c *ValueCache) addLocked(h uint64, e cached) {
	if old, ok := c.cur[h]; ok {
		c.curBytes -= old.size()
	}
	size := e.size()
	if size > c.half {
		delete(c.cur, h) // too big to keep; the engine serves it
		return
	}
	if c.curBytes+size > c.half {
		c.old, c.cur, c.curBytes = c.cur, make(map[uint64]cached, len(c.cur)), 0
		delete(c.old, h)
	}
	c.cur[h] = e
	c.curBytes += size
}
