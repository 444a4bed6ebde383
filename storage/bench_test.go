package storage

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

const (
	benchKeys       = 400_000
	benchValueSize  = 128
	benchPartitions = 64
)

// openDefaultPebble opens dir with pebble's defaults, as a program that
// never tuned it would: no bloom filters, the 8 MiB cache pebble creates
// when given none, 4 MiB memtables and pebble's oldest supported format.
func openDefaultPebble(b *testing.B, dir string) *Pebble {
	b.Helper()
	cache := pebble.NewCache(8 << 20)
	db, err := pebble.Open(dir, &pebble.Options{Cache: cache, Logger: pebbleLogger{quietLogger}})
	if err != nil {
		cache.Unref()
		b.Fatal(err)
	}
	return &Pebble{db: db, cache: cache}
}

func benchKey(i int) []byte {
	return ObjectKey(i%benchPartitions, fmt.Appendf(nil, "user-%09d", i))
}

// loadGetBench fills p with benchKeys objects written in random order,
// flushes them to sstables and waits for compactions to settle, so that
// reads go through a realistic multi-level LSM rather than the memtable.
func loadGetBench(b *testing.B, p *Pebble) {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	value := make([]byte, benchValueSize)
	var batch Batch
	for n, i := range rng.Perm(benchKeys) {
		for j := range value {
			value[j] = byte(rng.Uint32())
		}
		batch.Set(benchKey(i), value)
		if batch.Len() == 1000 || n == benchKeys-1 {
			if err := p.Apply(&batch, false); err != nil {
				b.Fatal(err)
			}
			batch.Reset()
		}
	}
	if err := p.db.Flush(); err != nil {
		b.Fatal(err)
	}
	for idle, deadline := 0, time.Now().Add(60*time.Second); idle < 3 && time.Now().Before(deadline); {
		if p.db.Metrics().Compact.NumInProgress == 0 {
			idle++
		} else {
			idle = 0
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// BenchmarkPebbleGet compares point reads with OpenPebble's tuning (bloom
// filters on every level, a 64 MiB block cache) against pebble's defaults,
// for keys that exist ("hit") and keys that do not ("miss": the local read
// before a put of a new key).
func BenchmarkPebbleGet(b *testing.B) {
	configs := []struct {
		name string
		open func(b *testing.B, dir string) *Pebble
	}{
		{"tuned", func(b *testing.B, dir string) *Pebble {
			p, err := OpenPebble(dir, PebbleOptions{Logger: quietLogger})
			if err != nil {
				b.Fatal(err)
			}
			return p
		}},
		{"default", openDefaultPebble},
	}
	for _, c := range configs {
		b.Run(c.name, func(b *testing.B) {
			p := c.open(b, b.TempDir())
			defer p.Close()
			loadGetBench(b, p)
			for _, kind := range []string{"hit", "miss"} {
				b.Run(kind, func(b *testing.B) {
					rng := rand.New(rand.NewPCG(3, 4))
					key := func() []byte {
						i := rng.IntN(benchKeys)
						if kind == "hit" {
							return benchKey(i)
						}
						return ObjectKey(i%benchPartitions, fmt.Appendf(nil, "absent-%09d", i))
					}
					// Warm the cache to its steady state first.
					for range 50_000 {
						_, _ = p.Get(key())
					}
					before, _ := p.Metrics()
					b.ResetTimer()
					for range b.N {
						_, err := p.Get(key())
						if (kind == "hit") != (err == nil) {
							b.Fatalf("Get: %v", err)
						}
					}
					b.StopTimer()
					after, _ := p.Metrics()
					hits := after.BlockCacheHits - before.BlockCacheHits
					misses := after.BlockCacheMisses - before.BlockCacheMisses
					if hits+misses > 0 {
						b.ReportMetric(100*float64(hits)/float64(hits+misses), "cache-hit-%")
					}
					b.ReportMetric(float64(misses)/float64(b.N), "block-reads/op")
					if b.N > 1 {
						b.ReportMetric(float64(after.ReadAmp), "read-amp")
					}
				})
			}
		})
	}
}

// BenchmarkPebbleApplySync measures one small durable write: an fsync of
// the WAL per operation.
func BenchmarkPebbleApplySync(b *testing.B) {
	p, err := OpenPebble(b.TempDir(), PebbleOptions{Logger: quietLogger})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	var batch Batch
	value := make([]byte, 100)
	b.ResetTimer()
	for i := range b.N {
		batch.Reset()
		batch.Set(fmt.Appendf(nil, "key-%09d", i), value)
		if err := p.Apply(&batch, true); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPebbleSync measures Sync (LogData with pebble.Sync) after one
// small unsynced write: the fsync latency that floors every acknowledged
// put. It reports the median and 99th percentile of Sync alone.
func BenchmarkPebbleSync(b *testing.B) {
	p, err := OpenPebble(b.TempDir(), PebbleOptions{Logger: quietLogger})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	var batch Batch
	value := make([]byte, 100)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		batch.Reset()
		batch.Set(fmt.Appendf(nil, "key-%09d", i), value)
		if err := p.Apply(&batch, false); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := p.Sync(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkGroupCommit runs many concurrent committers against Pebble; ns/op
// is the cost per durable batch once fsyncs are shared.
func BenchmarkGroupCommit(b *testing.B) {
	p, err := OpenPebble(b.TempDir(), PebbleOptions{Logger: quietLogger})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	g := NewGroupCommitter(p)
	var next atomic.Uint64
	value := make([]byte, 100)
	b.SetParallelism(16) // 16 committers per core
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var batch Batch
		for pb.Next() {
			batch.Reset()
			batch.Set(fmt.Appendf(nil, "key-%09d", next.Add(1)), value)
			if err := g.Commit(&batch); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	commits, syncs := g.Stats()
	if syncs > 0 {
		b.ReportMetric(float64(commits)/float64(syncs), "commits/sync")
	}
}
