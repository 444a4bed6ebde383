package pebbledb

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dynago/dynago/storage"
)

// walSizes returns the size of every write-ahead log in dir.
func walSizes(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int64{}
	for _, l := range logs {
		fi, err := os.Stat(l)
		if err != nil {
			t.Fatal(err)
		}
		sizes[filepath.Base(l)] = fi.Size()
	}
	return sizes
}

// A store's logs carry their zeros from the start, and a store whose logs
// were rotated several times (prefilled ones ended by pebble's EOF trailer,
// then recycled ones) reopens with every synced write. Crash recovery with
// a prefilled log's zeros after the last record is
// TestSIGKILLKeepsAcknowledgedWrites: its writer runs on prefilled logs.
func TestNewLogsArePrefilled(t *testing.T) {
	dir := t.TempDir()
	p := openTestPebble(t, dir) // 1 MiB memtables
	want := int64(1<<20 + (1<<20)/10)
	sizes := walSizes(t, dir)
	if len(sizes) != 1 {
		t.Fatalf("after Open: logs %v, want one", sizes)
	}
	for name, size := range sizes {
		if size < want {
			t.Fatalf("after Open: %s is %d bytes, want it prefilled to at least %d", name, size, want)
		}
	}

	// 4 MiB of values through 1 MiB memtables: several rotations.
	value := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i%26)}, 1024) }
	const n = 4096
	var b storage.Batch
	for i := range n {
		b.Reset()
		b.Set(fmt.Appendf(nil, "key-%06d", i), value(i))
		if err := p.Apply(&b, i%64 == 63); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	for name, size := range walSizes(t, dir) {
		if size < want {
			t.Errorf("after rotations: %s is %d bytes, want every log prefilled or recycled (at least %d)", name, size, want)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}

	p = openTestPebble(t, dir)
	defer p.Close()
	for i := range n {
		got, err := p.Get(fmt.Appendf(nil, "key-%06d", i))
		if err != nil {
			t.Fatalf("key-%06d after reopen: %v", i, err)
		}
		if !bytes.Equal(got, value(i)) {
			t.Fatalf("key-%06d after reopen: %d bytes %.8q..., want %d bytes %.8q...", i, len(got), got, len(value(i)), value(i))
		}
	}
}

// The prefill is bounded: the largest memtables would otherwise write a
// gigabyte of zeros at every open.
func TestPrefillIsBounded(t *testing.T) {
	if got := newPrefillFS(nil, 4<<20).size; got != 4<<20+(4<<20)/10 {
		t.Errorf("4 MiB memtables: prefill %d, want 110 %% of the memtable", got)
	}
	if got := newPrefillFS(nil, 1<<30).size; got != maxWALPrefill {
		t.Errorf("1 GiB memtables: prefill %d, want the bound %d", got, maxWALPrefill)
	}
}
