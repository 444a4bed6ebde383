package pebbledb

import "github.com/prometheus/client_golang/prometheus"

// pebbleSeries are the engine's Prometheus series, in base units (bytes,
// counts) with _total on counters, named after what CockroachDB exports
// from the same Pebble metrics (storage.disk.used, rocksdb.block.cache.*,
// rocksdb.read-amplification, storage.l0-sublevels, rocksdb.estimated-
// pending-compaction, rocksdb.compactions...).
var pebbleSeries = []struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(*Metrics) float64
}{
	{desc("disk_bytes", "Bytes the storage engine uses on disk: sstables, WAL, manifest, and obsolete files not yet deleted."),
		prometheus.GaugeValue, func(m *Metrics) float64 { return float64(m.DiskBytes) }},
	{desc("live_sstable_bytes", "Bytes in live sstables (the stored data after compression)."),
		prometheus.GaugeValue, func(m *Metrics) float64 { return float64(m.LiveTableBytes) }},
	{desc("wal_bytes", "Bytes of data in the live write-ahead-log files: what a restart replays."),
		prometheus.GaugeValue, func(m *Metrics) float64 { return float64(m.WALBytes) }},
	{desc("wal_written_bytes_total", "Bytes written to the write-ahead log since the node started."),
		prometheus.CounterValue, func(m *Metrics) float64 { return float64(m.WALWrittenBytes) }},
	{desc("memtable_bytes", "Bytes held by memtables, the one taking writes and those waiting to be flushed."),
		prometheus.GaugeValue, func(m *Metrics) float64 { return float64(m.MemTableBytes) }},
	{desc("block_cache_bytes", "Bytes held by the block cache (memtables are charged to it too)."),
		prometheus.GaugeValue, func(m *Metrics) float64 { return float64(m.BlockCacheBytes) }},
	{desc("block_cache_hits_total", "Block reads served by the block cache."),
		prometheus.CounterValue, func(m *Metrics) float64 { return float64(m.BlockCacheHits) }},
	{desc("block_cache_misses_total", "Block reads the block cache missed (read from the OS)."),
		prometheus.CounterValue, func(m *Metrics) float64 { return float64(m.BlockCacheMisses) }},
	{desc("value_cache_hits_total", "Point reads answered by the value cache in front of the engine, without a Pebble search."),
		prometheus.CounterValue, func(m *Metrics) float64 { return float64(m.ValueCacheHits) }},
	{desc("value_cache_misses_total", "Point reads the value cache missed, which read Pebble."),
		prometheus.CounterValue, func(m *Metrics) float64 { return float64(m.ValueCacheMisses) }},
	{desc("bloom_filter_hits_total", "Sstable reads a bloom filter avoided."),
		prometheus.CounterValue, func(m *Metrics) float64 { return float64(m.FilterHits) }},
	{desc("bloom_filter_misses_total", "Bloom filter checks that could not avoid the sstable read."),
		prometheus.CounterValue, func(m *Metrics) float64 { return float64(m.FilterMisses) }},
	{desc("read_amplification", "Sstables (L0 sublevels plus one per non-empty level) a point read may have to visit."),
		prometheus.GaugeValue, func(m *Metrics) float64 { return float64(m.ReadAmp) }},
	{desc("l0_sublevels", "Sublevels in L0; it grows when compactions fall behind the write rate."),
		prometheus.GaugeValue, func(m *Metrics) float64 { return float64(m.L0Sublevels) }},
	{desc("l0_files", "Sstables in L0."),
		prometheus.GaugeValue, func(m *Metrics) float64 { return float64(m.L0Files) }},
	{desc("compaction_debt_bytes", "Pebble's estimate of the bytes compactions must rewrite for the LSM to reach its stable shape."),
		prometheus.GaugeValue, func(m *Metrics) float64 { return float64(m.CompactionDebt) }},
	{desc("compactions_in_progress", "Compactions running now."),
		prometheus.GaugeValue, func(m *Metrics) float64 { return float64(m.CompactionsInProgress) }},
	{desc("compactions_total", "Compactions completed since the node started."),
		prometheus.CounterValue, func(m *Metrics) float64 { return float64(m.Compactions) }},
	{desc("flushes_total", "Memtable flushes completed since the node started."),
		prometheus.CounterValue, func(m *Metrics) float64 { return float64(m.Flushes) }},
}

func desc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("dynago_storage_"+name, help, nil, nil)
}

// collector reads the engine's metrics when Prometheus scrapes,
// rather than on a timer: a scrape sees the numbers of that moment, and an
// idle node does no work for metrics nobody reads.
type collector struct{ p *DB }

// NewCollector returns a Collector of p's metrics (see
// Metrics). Once p is closed it collects nothing.
func NewCollector(p *DB) prometheus.Collector { return collector{p} }

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range pebbleSeries {
		ch <- s.desc
	}
}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	m, err := c.p.Metrics()
	if err != nil {
		return // closed: a node shutting down has no storage to report
	}
	for _, s := range pebbleSeries {
		ch <- prometheus.MustNewConstMetric(s.desc, s.kind, s.value(&m))
	}
}
