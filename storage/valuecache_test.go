package storage

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"testing"
)

// engineRead returns a read func over a map, counting calls.
func engineRead(m map[string][]byte, key string, calls *int) func() ([]byte, error) {
	return func() ([]byte, error) {
		*calls++
		v, ok := m[key]
		if !ok {
			return nil, ErrNotFound
		}
		return append([]byte(nil), v...), nil
	}
}

func TestValueCacheServesReadsAndAbsencesFromMemory(t *testing.T) {
	c := NewValueCache(1 << 20)
	disk := map[string][]byte{"a": []byte("1")}
	calls := 0
	for range 3 {
		if v, err := c.Get([]byte("a"), engineRead(disk, "a", &calls)); err != nil || string(v) != "1" {
			t.Fatalf("Get(a) = %q, %v", v, err)
		}
		if _, err := c.Get([]byte("b"), engineRead(disk, "b", &calls)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(b) err = %v, want ErrNotFound", err)
		}
	}
	if calls != 2 {
		t.Fatalf("the engine was read %d times for two keys read three times each, want 2", calls)
	}
	if h, m := c.Stats(); h != 4 || m != 2 {
		t.Fatalf("stats = %d hits, %d misses; want 4, 2", h, m)
	}
	// A caller owns what Get returns: changing it changes nothing cached.
	v, _ := c.Get([]byte("a"), engineRead(disk, "a", &calls))
	v[0] = 'X'
	if v, _ := c.Get([]byte("a"), engineRead(disk, "a", &calls)); string(v) != "1" {
		t.Fatalf("a cached value changed through a returned slice: %q", v)
	}
}

func TestValueCacheFollowsAppliedWrites(t *testing.T) {
	c := NewValueCache(1 << 20)
	disk := map[string][]byte{"a": []byte("1"), "b": []byte("2")}
	calls := 0
	c.Get([]byte("a"), engineRead(disk, "a", &calls))
	c.Get([]byte("b"), engineRead(disk, "b", &calls))
	var b Batch
	b.Set([]byte("a"), []byte("new"))
	b.Delete([]byte("b"))
	b.Set([]byte("c"), []byte("3"))
	c.Applied(&b)
	b.Reset() // the cache must not alias the batch
	b.Set([]byte("zzz"), []byte("garbage"))
	never := func() ([]byte, error) { t.Fatal("read the engine for a key a write just cached"); return nil, nil }
	if v, err := c.Get([]byte("a"), never); err != nil || string(v) != "new" {
		t.Fatalf("Get(a) after a set = %q, %v", v, err)
	}
	if _, err := c.Get([]byte("b"), never); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(b) after a delete: err %v, want ErrNotFound", err)
	}
	if v, err := c.Get([]byte("c"), never); err != nil || string(v) != "3" {
		t.Fatalf("Get(c) = %q, %v", v, err)
	}
	c.Clear()
	if v, _ := c.Get([]byte("a"), engineRead(disk, "a", &calls)); string(v) != "1" {
		t.Fatalf("after Clear, Get(a) = %q, want the engine's %q", v, "1")
	}
}

// A read that raced with an Apply must not leave its older value cached.
func TestValueCacheDropsAReadThatRacedAWrite(t *testing.T) {
	c := NewValueCache(1 << 20)
	stale := func() ([]byte, error) {
		// The engine answered "old"; before the cache stores it, a
		// write of "new" is applied and recorded.
		var b Batch
		b.Set([]byte("k"), []byte("new"))
		c.Applied(&b)
		return []byte("old"), nil
	}
	if v, _ := c.Get([]byte("k"), stale); string(v) != "old" {
		t.Fatalf("the racing read returned %q", v)
	}
	if v, _ := c.Get([]byte("k"), func() ([]byte, error) { return []byte("disk"), nil }); string(v) != "new" {
		t.Fatalf("after the race Get(k) = %q, want the applied %q", v, "new")
	}
}

func TestValueCacheStaysWithinItsBudget(t *testing.T) {
	const budget = 64 << 10
	c := NewValueCache(budget)
	value := bytes.Repeat([]byte("v"), 100)
	for i := range 10_000 {
		var b Batch
		b.Set(fmt.Appendf(nil, "key-%05d", i), value)
		c.Applied(&b)
	}
	c.mu.Lock()
	total := c.curBytes
	for _, e := range c.old {
		total += e.size()
	}
	n := len(c.cur) + len(c.old)
	c.mu.Unlock()
	if total > budget {
		t.Fatalf("cache holds %d bytes, budget %d", total, budget)
	}
	if n == 0 {
		t.Fatal("cache holds nothing")
	}
	// The newest keys are kept, the oldest dropped.
	if _, err := c.Get([]byte("key-09999"), func() ([]byte, error) { t.Fatal("newest key evicted"); return nil, nil }); err != nil {
		t.Fatal(err)
	}
	read := false
	c.Get([]byte("key-00000"), func() ([]byte, error) { read = true; return value, nil })
	if !read {
		t.Fatal("the oldest key was still cached")
	}
	// A value bigger than half the budget is never cached.
	big := make([]byte, budget)
	var b Batch
	b.Set([]byte("big"), big)
	c.Applied(&b)
	read = false
	c.Get([]byte("big"), func() ([]byte, error) { read = true; return big, nil })
	if !read {
		t.Fatal("a value over half the budget was cached")
	}
}

func TestNilValueCacheReadsThrough(t *testing.T) {
	var c *ValueCache = NewValueCache(0)
	calls := 0
	disk := map[string][]byte{"a": []byte("1")}
	for range 2 {
		c.Get([]byte("a"), engineRead(disk, "a", &calls))
	}
	c.Applied(&Batch{})
	c.Clear()
	if calls != 2 {
		t.Fatalf("a disabled cache read the engine %d times for 2 gets", calls)
	}
}

// Two keys with one hash share a slot: the entry found is another key's, so
// the read goes to the engine, and its answer takes the slot.
func TestValueCacheHashCollisionIsAMiss(t *testing.T) {
	c := NewValueCache(1 << 20)
	h := maphash.Bytes(c.seed, []byte("a"))
	c.mu.Lock()
	c.addLocked(h, entry([]byte("other"), []byte("wrong"), false))
	c.mu.Unlock()
	disk := map[string][]byte{"a": []byte("right")}
	calls := 0
	for range 2 {
		if v, err := c.Get([]byte("a"), engineRead(disk, "a", &calls)); err != nil || string(v) != "right" {
			t.Fatalf("Get(a) over a colliding entry = %q, %v", v, err)
		}
	}
	if calls != 1 {
		t.Fatalf("the engine was read %d times, want 1 (then cached)", calls)
	}
	// The same in the old generation.
	c.mu.Lock()
	c.old[maphash.Bytes(c.seed, []byte("b"))] = entry([]byte("other"), []byte("wrong"), false)
	c.mu.Unlock()
	disk["b"] = []byte("right")
	if v, err := c.Get([]byte("b"), engineRead(disk, "b", &calls)); err != nil || string(v) != "right" {
		t.Fatalf("Get(b) over a colliding old entry = %q, %v", v, err)
	}
}
