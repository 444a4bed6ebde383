package pebbledb

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/dynago/dynago/storage"
)

const (
	benchKeys       = 400_000
	benchValueSize  = 128
	benchPartitions = 64
)

// openDefaultPebble opens dir with pebble's defaults, as a program that
// never tuned it would: no bloom filters, the 8 MiB cache pebble creates
// when given none, 4 MiB memtables and pebble's oldest supported format.
func openDefaultPebble(b *testing.B, dir string) *DB {
	b.Helper()
	cache := pebble.NewCache(8 << 20)
	db, err := pebble.Open(dir, &pebble.Options{Cache: cache, Logger: pebbleLogger{quietLogger}})
	if err != nil {
		cache.Unref()
		b.Fatal(err)
	}
	return &DB{db: db, cache: cache}
}

func benchKey(i int) []byte {
	return storage.ObjectKey(i%benchPartitions, fmt.Appendf(nil, "user-%09d", i))
}

// loadGetBench fills p with benchKeys objects written in random order,
// flushes them to sstables and waits for compactions to settle, so that
// reads go through a realistic multi-level LSM rather than the memtable.
func loadGetBench(b *testing.B, p *DB) {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	value := make([]byte, benchValueSize)
	var batch storage.Batch
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

// BenchmarkPebbleGet compares point reads with Open's tuning (bloom
// filters on every level, a 64 MiB block cache) against pebble's defaults,
// for keys that exist ("hit") and keys that do not ("miss": the local read
// before a put of a new key).
func BenchmarkPebbleGet(b *testing.B) {
	configs := []struct {
		name string
		open func(b *testing.B, dir string) *DB
	}{
		{"tuned", func(b *testing.B, dir string) *DB {
			p, err := Open(dir, Options{Logger: quietLogger})
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
						return storage.ObjectKey(i%benchPartitions, fmt.Appendf(nil, "absent-%09d", i))
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
	p, err := Open(b.TempDir(), Options{Logger: quietLogger})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	var batch storage.Batch
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

// walModes are the two kinds of write-ahead log a store can sync: logs
// prefilled with zeros (Open's default, prefillFS) and logs as pebble
// creates them, which each sync extends.
var walModes = []struct {
	name      string
	noPrefill bool
}{{"prefilled", false}, {"fresh", true}}

// BenchmarkPebbleSync measures Sync (LogData with pebble.Sync) after one
// small unsynced write: the fsync latency that floors every acknowledged
// put. It reports the median and 99th percentile of Sync alone, on a
// prefilled log and on a fresh one.
func BenchmarkPebbleSync(b *testing.B) {
	for _, m := range walModes {
		b.Run(m.name, func(b *testing.B) { benchPebbleSync(b, m.noPrefill) })
	}
}

func benchPebbleSync(b *testing.B, noPrefill bool) {
	p, err := Open(b.TempDir(), Options{Logger: quietLogger, noPrefill: noPrefill})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	var batch storage.Batch
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

// BenchmarkPebbleSyncSharedDisk is BenchmarkPebbleApplySync on three stores
// at once, in three directories of one file system: what a 3-node cluster
// on one machine asks of its disk for every put (each replica fsyncs its
// own WAL). Against BenchmarkPebbleApplySync's p50 it shows whether the
// disk overlaps the three flushes or takes them one after the other, which
// sets the floor of a single client's put latency on such a machine.
func BenchmarkPebbleSyncSharedDisk(b *testing.B) {
	for _, m := range walModes {
		b.Run(m.name, func(b *testing.B) { benchPebbleSyncSharedDisk(b, m.noPrefill) })
	}
}

func benchPebbleSyncSharedDisk(b *testing.B, noPrefill bool) {
	const stores = 3
	ps := make([]*DB, stores)
	for i := range ps {
		p, err := Open(b.TempDir(), Options{Logger: quietLogger, noPrefill: noPrefill})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		ps[i] = p
	}
	value := make([]byte, 100)
	lat := make([][]time.Duration, stores)
	b.ResetTimer()
	var wg sync.WaitGroup
	for s, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var batch storage.Batch
			for i := range b.N {
				batch.Reset()
				batch.Set(fmt.Appendf(nil, "key-%09d", i), value)
				start := time.Now()
				if err := p.Apply(&batch, true); err != nil {
					b.Error(err)
					return
				}
				lat[s] = append(lat[s], time.Since(start))
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
}
