package storage

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkValueCacheHit reads keys a 100,000-key cache holds, in a
// scattered order (a map lookup that misses the CPU caches, as a node's does).
func BenchmarkValueCacheHit(b *testing.B) {
	c := NewValueCache(32 << 20)
	keys := make([][]byte, 100_000)
	var batch Batch
	value := bytes.Repeat([]byte("v"), 150)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "\x00\x00\x00\x2akey:%012d", i)
		batch.Set(keys[i], value)
	}
	c.Applied(&batch)
	miss := func() ([]byte, error) { return value, nil }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Get(keys[(i*7919)%len(keys)], miss); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValueCacheApplied records one write per Apply, as a replica's
// loop pass under a write load does, over 100,000 keys.
func BenchmarkValueCacheApplied(b *testing.B) {
	c := NewValueCache(32 << 20)
	keys := make([][]byte, 100_000)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "\x00\x00\x00\x2akey:%012d", i)
	}
	value := bytes.Repeat([]byte("v"), 150)
	var batch Batch
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		batch.Reset()
		batch.Set(keys[(i*7919)%len(keys)], value)
		c.Applied(&batch)
	}
}
