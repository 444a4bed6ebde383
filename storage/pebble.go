package storage

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

// Defaults for PebbleOptions, sized for one node of a small real cluster.
const (
	// DefaultCacheSize keeps the index and filter blocks of several GiB of
	// data and the hot data blocks in memory. Pebble's own default is 8
	// MiB, which its two default 4 MiB memtables use up (see
	// cacheMemTables): every get then reads about three blocks from the OS
	// (BenchmarkPebbleGet).
	DefaultCacheSize = 64 << 20
	// DefaultMemTableSize makes flushes (and L0 files) four times rarer
	// than pebble's 4 MiB default while keeping WAL replay after a crash
	// well under a second.
	DefaultMemTableSize = 16 << 20
	// DefaultBloomBitsPerKey gives a ~1% false-positive rate: a get skips
	// 99% of the sstables that do not hold its key, which is most of them
	// for the read-before-write of every put to a new key.
	DefaultBloomBitsPerKey = 10
)

// memTableStopWrites is the number of queued memtables at which pebble
// stalls writes. Four (pebble's default is two) absorbs a burst while a
// flush is slow instead of stalling acknowledgements.
const memTableStopWrites = 4

// cacheMemTables is how many memtables' worth of room OpenPebble adds to
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

// PebbleOptions configures OpenPebble. The zero value is valid: every zero
// field takes its documented default.
type PebbleOptions struct {
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
	// Logger receives pebble's log lines and disk-stall events. Default
	// slog.Default().
	Logger *slog.Logger
}

func (o *PebbleOptions) validate() error {
	if o.CacheSize < 0 {
		return fmt.Errorf("storage: negative CacheSize %d", o.CacheSize)
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	// Pebble rejects memtables of 4 GiB or more.
	if o.MemTableSize >= 4<<30 {
		return fmt.Errorf("storage: MemTableSize %d must be below 4 GiB", o.MemTableSize)
	}
	if o.BloomBitsPerKey == 0 {
		o.BloomBitsPerKey = DefaultBloomBitsPerKey
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// Pebble is the on-disk Engine of the daemon, a cockroachdb/pebble LSM with
// its write-ahead log enabled.
type Pebble struct {
	db    *pebble.DB
	cache *pebble.Cache
	gate  closeGate
}

var _ Engine = (*Pebble)(nil)

// OpenPebble opens the store in dir, creating it if needed. A store left by
// a crash is recovered from its write-ahead log: everything synced before
// the crash is present.
func OpenPebble(dir string, opts PebbleOptions) (*Pebble, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	cache := pebble.NewCache(opts.CacheSize + cacheMemTables*int64(opts.MemTableSize))
	db, err := pebble.Open(dir, pebbleOptions(opts, cache))
	// The DB holds its own reference to the cache; ours is released on
	// Close, or now if the open failed.
	if err != nil {
		cache.Unref()
		return nil, fmt.Errorf("storage: open pebble %s: %w", dir, err)
	}
	return &Pebble{db: db, cache: cache}, nil
}

func pebbleOptions(opts PebbleOptions, cache *pebble.Cache) *pebble.Options {
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
func (p *Pebble) Get(key []byte) ([]byte, error) {
	if err := p.gate.enter(); err != nil {
		return nil, err
	}
	defer p.gate.exit()
	v, closer, err := p.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("storage: pebble get: %w", err)
	}
	out := make([]byte, len(v))
	copy(out, v)
	if err := closer.Close(); err != nil {
		return nil, fmt.Errorf("storage: pebble get: %w", err)
	}
	return out, nil
}

// Apply implements Engine.
func (p *Pebble) Apply(b *Batch, sync bool) error {
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
		return fmt.Errorf("storage: pebble apply: %w", err)
	}
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
func (p *Pebble) Sync() error {
	if err := p.gate.enter(); err != nil {
		return err
	}
	defer p.gate.exit()
	return p.syncWAL()
}

func (p *Pebble) syncWAL() error {
	if err := p.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("storage: pebble sync: %w", err)
	}
	return nil
}

// Scan implements Engine. The iterator reads a snapshot taken when Scan
// starts.
func (p *Pebble) Scan(lower, upper []byte, fn func(key, value []byte) error) error {
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
		return fmt.Errorf("storage: pebble scan: %w", err)
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
		return fmt.Errorf("storage: pebble scan: %w", err)
	}
	return nil
}

// Close implements Engine. Pebble syncs the WAL when it closes, so every
// applied write is durable afterwards.
func (p *Pebble) Close() error {
	if !p.gate.close() {
		return ErrClosed
	}
	err := p.db.Close()
	p.cache.Unref()
	if err != nil {
		return fmt.Errorf("storage: pebble close: %w", err)
	}
	return nil
}

// PebbleMetrics is a snapshot of the engine's health, for the daemon's
// /metrics and the dashboard.
type PebbleMetrics struct {
	BlockCacheBytes  int64 // bytes held by the block cache
	BlockCacheHits   int64
	BlockCacheMisses int64
	// FilterHits counts sstable reads avoided by a bloom filter;
	// FilterMisses counts filter checks that could not avoid the read.
	FilterHits     int64
	FilterMisses   int64
	MemTableBytes  uint64 // bytes in memtables, flushed or not
	DiskBytes      uint64 // WAL, sstables and obsolete files on disk
	WALBytes       uint64 // bytes written to the WAL since open
	ReadAmp        int    // sstables (sublevels) a point read may visit
	Flushes        int64
	Compactions    int64
	CompactionDebt uint64 // bytes compaction must rewrite to reach its shape
}

// Metrics returns a snapshot of the engine's metrics, or ErrClosed.
func (p *Pebble) Metrics() (PebbleMetrics, error) {
	if err := p.gate.enter(); err != nil {
		return PebbleMetrics{}, err
	}
	defer p.gate.exit()
	m := p.db.Metrics()
	return PebbleMetrics{
		BlockCacheBytes:  m.BlockCache.Size,
		BlockCacheHits:   m.BlockCache.Hits,
		BlockCacheMisses: m.BlockCache.Misses,
		FilterHits:       m.Filter.Hits,
		FilterMisses:     m.Filter.Misses,
		MemTableBytes:    m.MemTable.Size,
		DiskBytes:        m.DiskSpaceUsage(),
		WALBytes:         m.WAL.BytesWritten,
		ReadAmp:          m.ReadAmp(),
		Flushes:          m.Flush.Count,
		Compactions:      m.Compact.Count,
		CompactionDebt:   m.Compact.EstimatedDebt,
	}, nil
}
