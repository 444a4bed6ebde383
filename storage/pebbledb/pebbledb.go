// Package pebbledb is the daemon's on-disk storage.Engine, a
// cockroachdb/pebble LSM with its write-ahead log enabled, with what only
// that engine can do: its Prometheus metrics, and backups as Pebble
// checkpoints and their restore.
//
// It is a package of its own so that the protocol core, which needs only
// storage's Engine interface and key layout, does not link Pebble: only the
// daemon and the tools that open a data directory import it. It follows
// storage's rules (see that package): it stores bytes, never interprets
// them, and never reports a write durable before an fsync covering it.
package pebbledb

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/dynago/dynago/storage"
)

// Defaults for Options, sized for one node of a small real cluster.
const (
	// DefaultCacheSize keeps the index and filter blocks of several GiB of
	// data and the hot data blocks in memory. Pebble's own default is 8
	// MiB, which its two default 4 MiB memtables use up (see
	// cacheMemTables): every get then reads about three blocks from the OS
	// (BenchmarkPebbleGet).
	DefaultCacheSize = 64 << 20
	// DefaultMemTableSize is pebble's own default. Every write inserts
	// into the memtable's skiplist, a pointer chase through its arena for
	// each level; under a SET load a 16 MiB memtable made those inserts a
	// fifth of a replica's CPU, and 4 MiB gave 1.09-1.17x the writes per
	// second at 0.9x the machine CPU per write, gets unchanged
	// (docs/BENCHMARKS.md, "Beside Redis"), for four times as many
	// flushes. dynago server --memtable-size changes it.
	DefaultMemTableSize = 4 << 20
	// DefaultBloomBitsPerKey gives a ~1% false-positive rate: a get skips
	// 99% of the sstables that do not hold its key, which is most of them
	// for the read-before-write of every put to a new key. Pebble's own
	// Get reads filters down to L5 only, which is why get goes through an
	// iterator that reads L6's too (getIterOptions).
	DefaultBloomBitsPerKey = 10
	// DefaultValueCacheSize keeps the newest value of the 50,000 to
	// 100,000 most recently used small objects (its two generations hold
	// half the budget each; uniform reads over 100,000 keys of 100-byte
	// values missed about 11 %): a replica's read of a hot key then skips
	// Pebble's memtable and level search (see storage.ValueCache).
	DefaultValueCacheSize = 32 << 20
)

// memTableStopWrites is the number of queued memtables at which pebble
// stalls writes. Four (pebble's default is two) absorbs a burst while a
// flush is slow instead of stalling acknowledgements.
const memTableStopWrites = 4

// cacheMemTables is how many memtables' worth of room Open adds to
// the block cache. Pebble charges memtables against the block cache it is
// given: with a 64 MiB cache and two 32 MiB memtables (the one taking writes
// and the one being flushed or kept for reuse) the cache holds no blocks at
// all, and every read goes to the OS (measured: 0% hit rate). Adding room
// for the steady-state two keeps CacheSize for blocks; a burst of queued
// memtables still shrinks the cache temporarily rather than growing memory.
const cacheMemTables = 2

// formatVersion pins the on-disk format. Pebble ratchets a store forward to
// the version it is given and never back, so the version is named, not
// pebble.FormatNewest: upgrading pebble must not silently make a data
// directory unreadable by the previous dynago release.
const formatVersion = pebble.FormatValueSeparation

// Options configures Open. The zero value is valid: every zero
// field takes its documented default.
type Options struct {
	// CacheSize is the block cache size in bytes, for sstable blocks; room
	// for memtables, which pebble charges to the same cache, is added on
	// top. Default DefaultCacheSize.
	CacheSize int64
	// MemTableSize is the size in bytes of one memtable. Default
	// DefaultMemTableSize.
	MemTableSize uint64
	// BloomBitsPerKey sizes the bloom filter built for every sstable on
	// every level. Default DefaultBloomBitsPerKey; negative disables
	// filters.
	BloomBitsPerKey int
	// ValueCacheSize bounds, in bytes, the cache of recently read and
	// written values in front of Pebble (storage.ValueCache). Default
	// DefaultValueCacheSize; negative disables it.
	ValueCacheSize int64
	// Logger receives pebble's log lines and disk-stall events. Default
	// slog.Default().
	Logger *slog.Logger

	// noPrefill leaves new write-ahead logs as pebble creates them
	// (prefillFS says why they are not): for the benchmarks that measure
	// what the prefill buys.
	noPrefill bool
}

func (o *Options) validate() error {
	if o.CacheSize < 0 {
		return fmt.Errorf("pebbledb: negative CacheSize %d", o.CacheSize)
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	// Pebble rejects memtables of 4 GiB or more.
	if o.MemTableSize >= 4<<30 {
		return fmt.Errorf("pebbledb: MemTableSize %d must be below 4 GiB", o.MemTableSize)
	}
	if o.ValueCacheSize == 0 {
		o.ValueCacheSize = DefaultValueCacheSize
	}
	if o.BloomBitsPerKey == 0 {
		o.BloomBitsPerKey = DefaultBloomBitsPerKey
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// DB is the on-disk storage.Engine of the daemon, a cockroachdb/pebble LSM with
// its write-ahead log enabled.
type DB struct {
	db     *pebble.DB
	cache  *pebble.Cache
	values *storage.ValueCache // nil when disabled
	gate   closeGate
}

var _ storage.Engine = (*DB)(nil)

// Open opens the store in dir, creating it if needed. A store left by
// a crash is recovered from its write-ahead log: everything synced before
// the crash is present.
func Open(dir string, opts Options) (*DB, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	cache := pebble.NewCache(opts.CacheSize + cacheMemTables*int64(opts.MemTableSize))
	db, err := pebble.Open(dir, pebbleOptions(opts, cache))
	// The DB holds its own reference to the cache; ours is released on
	// Close, or now if the open failed.
	if err != nil {
		cache.Unref()
		return nil, fmt.Errorf("pebbledb: open pebble %s: %w", dir, err)
	}
	return &DB{db: db, cache: cache, values: storage.NewValueCache(int(opts.ValueCacheSize))}, nil
}

func pebbleOptions(opts Options, cache *pebble.Cache) *pebble.Options {
	log := opts.Logger.With("component", "pebble")
	po := &pebble.Options{
		Cache:                       cache,
		MemTableSize:                opts.MemTableSize,
		MemTableStopWritesThreshold: memTableStopWrites,
		FormatMajorVersion:          formatVersion,
		Logger:                      pebbleLogger{log},
		EventListener: &pebble.EventListener{
			// Slow disks and write stalls are what turn into put latency
			// spikes; an operator needs to see them next to the latency.
			DiskSlow: func(info pebble.DiskSlowInfo) {
				log.Warn("disk slow", "path", info.Path, "op", info.OpType.String(), "duration", info.Duration)
			},
			WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
				log.Warn("write stall begin", "reason", info.Reason)
			},
			WriteStallEnd: func() { log.Warn("write stall end") },
		},
	}
	if opts.noPrefill {
		po.FS = vfs.Default
	} else {
		po.FS = newPrefillFS(vfs.Default, opts.MemTableSize)
	}
	// Pebble filters nothing by default and never filters L0; every level
	// gets a filter here because most of dynago's point reads are for keys a
	// given sstable does not hold.
	for i := range po.Levels {
		if opts.BloomBitsPerKey > 0 {
			po.Levels[i].FilterPolicy = bloom.FilterPolicy(opts.BloomBitsPerKey)
		}
	}
	return po
}

// pebbleLogger adapts slog to pebble's printf-style logger.
type pebbleLogger struct{ l *slog.Logger }

// Pebble's informational lines ("Found 0 WALs", recoveries) are routine: DEBUG.
func (p pebbleLogger) Infof(format string, args ...any) { p.l.Debug(fmt.Sprintf(format, args...)) }

func (p pebbleLogger) Errorf(format string, args ...any) { p.l.Error(fmt.Sprintf(format, args...)) }

// Fatalf must not return: pebble calls it when a WAL write or fsync failed
// or data is corrupt, after which its state — and whether acknowledged
// writes reached the disk — is unknown. Exiting and recovering from the WAL
// on restart is the only safe continuation (PostgreSQL's "fsyncgate"); a
// panic could be recovered by an HTTP handler and the node would keep
// acknowledging writes on a broken store.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error("fatal: "+fmt.Sprintf(format, args...), "exit", 1)
	os.Exit(1)
}

// Get implements Engine.
func (p *DB) Get(key []byte) ([]byte, error) {
	if err := p.gate.enter(); err != nil {
		return nil, err
	}
	defer p.gate.exit()
	return p.values.Get(key, func() ([]byte, error) { return p.get(key) })
}

// get reads key from Pebble itself.
func (p *DB) get(key []byte) ([]byte, error) {
	if len(key) == 0 {
		// No object key is empty, but the Engine contract allows it, and
		// Pebble's iterators refuse to seek to it (its invariant checks,
		// on under -race, index the key's first byte).
		return p.getEmptyKey()
	}
	it, err := p.db.NewIter(&getIterOptions)
	if err != nil {
		return nil, fmt.Errorf("pebbledb: get: %w", err)
	}
	// SeekPrefixGE with the default comparer (the whole key is its prefix)
	// lands on key itself or nowhere; the comparison guards that.
	var out []byte
	found := it.SeekPrefixGE(key) && bytes.Equal(it.Key(), key)
	if found {
		var v []byte
		v, err = it.ValueAndErr()
		out = bytes.Clone(v)
		if out == nil {
			out = []byte{}
		}
	}
	if cerr := it.Close(); err == nil {
		err = cerr // also an error the seek met (Close returns it)
	}
	if err != nil {
		return nil, fmt.Errorf("pebbledb: get: %w", err)
	}
	if !found {
		return nil, storage.ErrNotFound
	}
	return out, nil
}

// getEmptyKey is get for the empty key, through DB.Get.
func (p *DB) getEmptyKey() ([]byte, error) {
	v, closer, err := p.db.Get(nil)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, storage.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("pebbledb: get: %w", err)
	}
	out := make([]byte, len(v))
	copy(out, v)
	if err := closer.Close(); err != nil {
		return nil, fmt.Errorf("pebbledb: get: %w", err)
	}
	return out, nil
}

// getIterOptions are get's: L6's bloom filters read too. Pebble's own
// DB.Get skips them (L6 filters are big, and a one-off read of a key that
// exists gains nothing from them), so an absent key, the read-before-write
// of every put to a new key, searched L6's index and data blocks, where a
// small store keeps nearly all it holds (its base level) and a large one
// most. Under such puts that was 9 % of a cluster's CPU; through this
// iterator the local read costs a quarter less. A read of a key that
// exists costs 0.2 µs more with every block cached, which the cluster's
// gets did not show (BENCHMARKS.md, "L6's filters"). NewIter copies the
// options; they are never written.
var getIterOptions = pebble.IterOptions{UseL6Filters: true}

// Apply implements Engine.
func (p *DB) Apply(b *storage.Batch, sync bool) error {
	if err := p.gate.enter(); err != nil {
		return err
	}
	defer p.gate.exit()
	if b.Len() == 0 {
		// Pebble commits an empty batch without touching the WAL, so it
		// would skip the sync that the caller asked for to cover earlier
		// writes.
		if sync {
			return p.syncWAL()
		}
		return nil
	}
	pb := p.db.NewBatch()
	defer pb.Close()
	// Pebble batch methods only fail on a committed or read-only batch,
	// neither of which can happen to a fresh batch.
	_ = b.Each(func(key, value []byte, deleted bool) error {
		if deleted {
			return pb.Delete(key, nil)
		}
		return pb.Set(key, value, nil)
	})
	if err := pb.Commit(writeOptions(sync)); err != nil {
		p.values.Clear()
		return fmt.Errorf("pebbledb: apply: %w", err)
	}
	p.values.Applied(b)
	return nil
}

func writeOptions(sync bool) *pebble.WriteOptions {
	if sync {
		return pebble.Sync
	}
	return pebble.NoSync
}

// Sync implements Engine by committing an empty LogData record with
// pebble.Sync. The WAL is one sequential file (an older one is synced when
// closed at rotation), and its writer syncs everything queued before a
// record that asks for a sync, so one fsync covers every batch applied
// earlier (read in pebble v2.1.7's commitPipeline and record.LogWriter;
// the workaround pebble's maintainers give in cockroachdb/pebble#4598).
// Until then a NoSync batch may not even have left pebble's WAL buffer for
// the kernel (cockroachdb/pebble#795), so a process crash alone can lose
// it.
func (p *DB) Sync() error {
	if err := p.gate.enter(); err != nil {
		return err
	}
	defer p.gate.exit()
	return p.syncWAL()
}

func (p *DB) syncWAL() error {
	if err := p.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("pebbledb: sync: %w", err)
	}
	return nil
}

// Scan implements Engine. The iterator reads a snapshot taken when Scan
// starts.
func (p *DB) Scan(lower, upper []byte, fn func(key, value []byte) error) error {
	if err := p.gate.enter(); err != nil {
		return err
	}
	defer p.gate.exit()
	// Pebble rejects an iterator whose lower bound is above its upper one;
	// such a range is simply empty.
	if upper != nil && bytes.Compare(lower, upper) >= 0 {
		return nil
	}
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("pebbledb: scan: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			break // reported by it.Error below
		}
		if err := fn(it.Key(), v); err != nil {
			_ = it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("pebbledb: scan: %w", err)
	}
	return nil
}

// Close implements Engine. Pebble syncs the WAL when it closes, so every
// applied write is durable afterwards.
func (p *DB) Close() error {
	if !p.gate.close() {
		return storage.ErrClosed
	}
	err := p.db.Close()
	p.cache.Unref()
	if err != nil {
		return fmt.Errorf("pebbledb: close: %w", err)
	}
	return nil
}

// Metrics is a snapshot of the engine's health, for the daemon's
// /metrics (see NewCollector) and the dashboard.
type Metrics struct {
	BlockCacheBytes  int64 // bytes held by the block cache
	BlockCacheHits   int64
	BlockCacheMisses int64
	// FilterHits counts sstable reads avoided by a bloom filter;
	// FilterMisses counts filter checks that could not avoid the read.
	FilterHits      int64
	FilterMisses    int64
	MemTableBytes   uint64 // bytes in memtables, flushed or not
	DiskBytes       uint64 // WAL, sstables, blob files, manifest and obsolete files on disk
	LiveTableBytes  uint64 // bytes in live sstables: the data itself
	WALBytes        uint64 // data in the live WAL files: what a restart replays
	WALWrittenBytes uint64 // bytes written to the WAL since open
	ReadAmp         int    // sstables (sublevels) a point read may visit
	L0Sublevels     int    // L0's share of ReadAmp, the part that grows when compaction falls behind
	L0Files         int64
	Flushes         int64
	Compactions     int64
	// CompactionsInProgress are compactions running now.
	CompactionsInProgress int64
	CompactionDebt        uint64 // estimated bytes compaction must rewrite to reach its shape
	// Value cache (storage.ValueCache) lookups answered from memory, and
	// those that read Pebble.
	ValueCacheHits, ValueCacheMisses uint64
}

// Metrics returns a snapshot of the engine's metrics, or storage.ErrClosed.
func (p *DB) Metrics() (Metrics, error) {
	if err := p.gate.enter(); err != nil {
		return Metrics{}, err
	}
	defer p.gate.exit()
	m := p.db.Metrics()
	// Pebble v2.1.7 leaves WAL.PhysicalSize at 0 when it does not recycle
	// WAL files (measured), so DiskSpaceUsage misses the live WAL; the
	// logical size is at most a block short of the physical one.
	disk := m.DiskSpaceUsage() - m.WAL.PhysicalSize + max(m.WAL.PhysicalSize, m.WAL.Size)
	vhits, vmisses := p.values.Stats()
	return Metrics{
		ValueCacheHits:        vhits,
		ValueCacheMisses:      vmisses,
		BlockCacheBytes:       m.BlockCache.Size,
		BlockCacheHits:        m.BlockCache.Hits,
		BlockCacheMisses:      m.BlockCache.Misses,
		FilterHits:            m.Filter.Hits,
		FilterMisses:          m.Filter.Misses,
		MemTableBytes:         m.MemTable.Size,
		DiskBytes:             disk,
		LiveTableBytes:        m.Table.Local.LiveSize,
		WALBytes:              m.WAL.Size,
		WALWrittenBytes:       m.WAL.BytesWritten,
		ReadAmp:               m.ReadAmp(),
		L0Sublevels:           int(m.Levels[0].Sublevels),
		L0Files:               m.Levels[0].TablesCount,
		Flushes:               m.Flush.Count,
		Compactions:           m.Compact.Count,
		CompactionsInProgress: m.Compact.NumInProgress,
		CompactionDebt:        m.Compact.EstimatedDebt,
	}, nil
}
