package pebbledb

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/dynago/dynago/storage"
)

// quietLogger keeps pebble's routine lines ("Found 0 WALs") out of test
// output.
var quietLogger = slog.New(slog.DiscardHandler)

// openTestPebble opens dir with small caches. The suite every engine must
// pass (storage's conformance tests) runs against this engine from the
// storage package's external tests; the tests here are Pebble's own.
func openTestPebble(t testing.TB, dir string) *DB {
	t.Helper()
	p, err := Open(dir, Options{CacheSize: 8 << 20, MemTableSize: 1 << 20, Logger: quietLogger})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return p
}

// fillAndFlush writes n keys of 1 KiB values and flushes them into
// sstables, so reads go through the block cache and filters.
func fillAndFlush(t *testing.T, p *DB, n int) {
	t.Helper()
	var b storage.Batch
	value := make([]byte, 1024)
	for i := range n {
		b.Set(fmt.Appendf(nil, "key-%06d", i), value)
		if b.Len() == 100 {
			if err := p.Apply(&b, false); err != nil {
				t.Fatal(err)
			}
			b.Reset()
		}
	}
	if err := p.Apply(&b, false); err != nil {
		t.Fatal(err)
	}
	if err := p.db.Flush(); err != nil {
		t.Fatal(err)
	}
}

// Pebble never builds filters for L0 by default; Open must, since a
// freshly flushed sstable is where a read of an absent key first looks.
func TestPebbleBloomFiltersOnL0(t *testing.T) {
	for _, bits := range []int{0, -1} {
		t.Run(fmt.Sprint("bits=", bits), func(t *testing.T) {
			p, err := Open(t.TempDir(), Options{BloomBitsPerKey: bits, Logger: quietLogger})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			fillAndFlush(t, p, 2000)
			before, err := p.Metrics()
			if err != nil {
				t.Fatal(err)
			}
			for i := range 200 {
				// Inside the table's key range, so only a filter can skip it.
				key := fmt.Sprintf("key-%06d-absent", i)
				if v, err := p.Get([]byte(key)); !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, v, err)
				}
			}
			after, _ := p.Metrics()
			hits := after.FilterHits - before.FilterHits
			if bits >= 0 && hits < 150 {
				t.Fatalf("bloom filters skipped the sstable for %d of 200 absent keys, want nearly all", hits)
			}
			if bits < 0 && hits != 0 {
				t.Fatalf("filters disabled, yet %d filter hits", hits)
			}
		})
	}
}

// Pebble's own Get never reads L6's filters, and L6 is where a small
// store keeps nearly everything (its base level) and a large one most: get
// must read them, or every absent key costs an index and a data block
// there. Present and deleted keys must still read back as they are.
func TestPebbleBloomFiltersOnL6(t *testing.T) {
	// No value cache: it would answer the rereads below from memory.
	p, err := Open(t.TempDir(), Options{Logger: quietLogger, ValueCacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	fillAndFlush(t, p, 2000)
	var b storage.Batch
	b.Delete([]byte("key-000007"))
	b.Set([]byte("key-000008"), nil)
	if err := p.Apply(&b, false); err != nil {
		t.Fatal(err)
	}
	if err := p.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := p.db.Compact(t.Context(), []byte("key-"), []byte("key-999999"), false); err != nil {
		t.Fatal(err)
	}
	m := p.db.Metrics()
	if m.Levels[6].TablesCount == 0 || m.Levels[0].TablesCount != 0 {
		t.Fatalf("after the compaction: %d tables in L0, %d in L6; want all in L6", m.Levels[0].TablesCount, m.Levels[6].TablesCount)
	}
	before, _ := p.Metrics()
	for i := range 200 {
		key := fmt.Sprintf("key-%06d-absent", i) // inside L6's key range
		if v, err := p.Get([]byte(key)); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, v, err)
		}
	}
	after, _ := p.Metrics()
	if hits := after.FilterHits - before.FilterHits; hits < 150 {
		t.Fatalf("L6's bloom filters skipped the sstable for %d of 200 absent keys, want nearly all", hits)
	}
	for _, i := range []int{0, 1, 999, 1999} {
		key := fmt.Sprintf("key-%06d", i)
		if v, err := p.Get([]byte(key)); err != nil || len(v) != 1024 {
			t.Fatalf("Get(%q) = %d bytes, %v; want its 1 KiB value", key, len(v), err)
		}
	}
	if v, err := p.Get([]byte("key-000007")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get of a deleted key = %q, %v; want ErrNotFound", v, err)
	}
	if v, err := p.Get([]byte("key-000008")); err != nil || v == nil || len(v) != 0 {
		t.Fatalf("Get of a key set to an empty value = %#v, %v; want a non-nil empty value", v, err)
	}
}

// Pebble charges memtables to the block cache; Open must leave room
// for them, or a cache no larger than two memtables holds no blocks at all.
func TestPebbleBlockCacheSurvivesMemtables(t *testing.T) {
	// No value cache: the re-reads must reach the block cache.
	p, err := Open(t.TempDir(), Options{CacheSize: 1 << 20, MemTableSize: 1 << 20, ValueCacheSize: -1, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	fillAndFlush(t, p, 6000) // 6 MiB: memtables grow to their full size
	read := func() {
		for i := range 100 {
			if _, err := p.Get(fmt.Appendf(nil, "key-%06d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	read()
	before, _ := p.Metrics()
	read()
	after, _ := p.Metrics()
	hits, misses := after.BlockCacheHits-before.BlockCacheHits, after.BlockCacheMisses-before.BlockCacheMisses
	if hits == 0 || misses > hits {
		t.Fatalf("re-reading 100 keys: %d block cache hits, %d misses; the cache holds no blocks", hits, misses)
	}
}

func TestPebbleMetricsClosed(t *testing.T) {
	p := openTestPebble(t, t.TempDir())
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Metrics(); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("Metrics after Close = %v, want storage.ErrClosed", err)
	}
}

func TestPebbleOptionsValidate(t *testing.T) {
	for _, o := range []Options{{CacheSize: -1}, {MemTableSize: 4 << 30}} {
		if _, err := Open(t.TempDir(), o); err == nil {
			t.Errorf("Open(%+v) accepted invalid options", o)
		}
	}
	var o Options
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	if o.CacheSize != DefaultCacheSize || o.MemTableSize != DefaultMemTableSize || o.BloomBitsPerKey != DefaultBloomBitsPerKey || o.Logger == nil {
		t.Fatalf("defaults not filled: %+v", o)
	}
}

// A re-read of a written key is answered by the value cache, not Pebble,
// and the hits show in the metrics.
func TestValueCacheAnswersRereads(t *testing.T) {
	p, err := Open(t.TempDir(), Options{Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var b storage.Batch
	b.Set([]byte("k"), []byte("v1"))
	if err := p.Apply(&b, false); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if v, err := p.Get([]byte("k")); err != nil || string(v) != "v1" {
			t.Fatalf("Get = %q, %v", v, err)
		}
	}
	b.Reset()
	b.Delete([]byte("k"))
	if err := p.Apply(&b, false); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Get([]byte("k")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get after delete: %v, want ErrNotFound", err)
	}
	m, err := p.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if m.ValueCacheHits != 4 || m.ValueCacheMisses != 0 {
		t.Fatalf("value cache: %d hits, %d misses; want 4 and 0", m.ValueCacheHits, m.ValueCacheMisses)
	}
}
