package storage

import (
	"errors"
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

	mu       sync.Mutex
	cur, old map[string]cached
	curBytes int
	// gen counts Applies. A Get that missed records it before reading the
	// engine, and caches what it read only if no Apply ran meanwhile:
	// otherwise the value read could be older than the one Apply cached.
	gen uint64

	hits, misses atomic.Uint64
}

type cached struct {
	value  []byte
	absent bool
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
	return &ValueCache{half: maxBytes / 2, cur: map[string]cached{}, old: map[string]cached{}}
}

// Get returns a copy of key's value, or ErrNotFound, from the cache when it
// holds key, and otherwise from read, whose answer it keeps.
func (c *ValueCache) Get(key []byte, read func() ([]byte, error)) ([]byte, error) {
	if c == nil {
		return read()
	}
	c.mu.Lock()
	e, ok := c.cur[string(key)]
	if !ok {
		if e, ok = c.old[string(key)]; ok {
			delete(c.old, string(key))
			c.addLocked(string(key), e)
		}
	}
	gen := c.gen
	c.mu.Unlock()
	if ok {
		c.hits.Add(1)
		if e.absent {
			return nil, ErrNotFound
		}
		return append([]byte(nil), e.value...), nil
	}
	c.misses.Add(1)
	v, err := read()
	absent := errors.Is(err, ErrNotFound)
	if err != nil && !absent {
		return nil, err
	}
	c.mu.Lock()
	if c.gen == gen {
		if absent {
			c.addLocked(string(key), cached{absent: true})
		} else {
			c.addLocked(string(key), cached{value: append([]byte(nil), v...)})
		}
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
		delete(c.old, string(key))
		if deleted {
			c.addLocked(string(key), cached{absent: true})
		} else {
			c.addLocked(string(key), cached{value: append([]byte(nil), value...)})
		}
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
	c.cur, c.old, c.curBytes = map[string]cached{}, map[string]cached{}, 0
}

// Stats returns the hits and misses counted so far.
func (c *ValueCache) Stats() (hits, misses uint64) {
	if c == nil {
		return 0, 0
	}
	return c.hits.Load(), c.misses.Load()
}

func (c *ValueCache) addLocked(key string, e cached) {
	if old, ok := c.cur[key]; ok {
		c.curBytes -= len(key) + len(old.value) + entryOverhead
	}
	size := len(key) + len(e.value) + entryOverhead
	if size > c.half {
		delete(c.cur, key) // too big to keep; the engine serves it
		return
	}
	if c.curBytes+size > c.half {
		c.old, c.cur, c.curBytes = c.cur, make(map[string]cached, len(c.cur)), 0
		delete(c.old, key)
	}
	c.cur[key] = e
	c.curBytes += size
}
