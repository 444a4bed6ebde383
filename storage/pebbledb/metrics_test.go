package pebbledb

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dynago/dynago/storage"
)

// The collector reads Pebble's metrics at scrape time: writes, a flush, a
// compaction and reads each move the series an operator watches.
func TestPebbleCollector(t *testing.T) {
	// No value cache: the reads below must reach Pebble's block cache.
	p, err := Open(t.TempDir(), Options{ValueCacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(p))
	value := func(name string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				m := mf.GetMetric()[0]
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
		t.Fatalf("%s not exported", name)
		return 0
	}
	if n := testutil.CollectAndCount(NewCollector(p)); n != len(pebbleSeries) {
		t.Fatalf("collected %d series, want %d", n, len(pebbleSeries))
	}
	if problems, err := testutil.CollectAndLint(NewCollector(p)); err != nil || len(problems) != 0 {
		t.Errorf("promlint: %v %v", problems, err)
	}
	walBefore := value("dynago_storage_wal_written_bytes_total")
	var b storage.Batch
	for i := range 2000 {
		b.Set(fmt.Appendf(nil, "key-%05d", i), []byte(strings.Repeat("v", 100)))
	}
	if err := p.Apply(&b, true); err != nil {
		t.Fatal(err)
	}
	if value("dynago_storage_wal_written_bytes_total") <= walBefore+2000*100 {
		t.Error("the WAL bytes written did not grow by the batch")
	}
	if value("dynago_storage_memtable_bytes") == 0 || value("dynago_storage_wal_bytes") == 0 {
		t.Error("memtable or WAL size is 0 after a write")
	}
	// A flush turns the memtable into an L0 sstable; reads then go
	// through the block cache.
	if err := p.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if value("dynago_storage_flushes_total") < 1 || value("dynago_storage_l0_files") < 1 ||
		value("dynago_storage_read_amplification") < 1 || value("dynago_storage_live_sstable_bytes") == 0 {
		t.Error("a flush did not show as a flush, an L0 file, read amplification and live sstable bytes")
	}
	if value("dynago_storage_disk_bytes") < value("dynago_storage_live_sstable_bytes") {
		t.Error("disk use below the live sstables' size")
	}
	reads := value("dynago_storage_block_cache_hits_total") + value("dynago_storage_block_cache_misses_total")
	for i := range 2000 {
		if _, err := p.Get(fmt.Appendf(nil, "key-%05d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if value("dynago_storage_block_cache_hits_total") == 0 ||
		value("dynago_storage_block_cache_hits_total")+value("dynago_storage_block_cache_misses_total") <= reads {
		t.Error("reads from an sstable did not show in the block cache counters")
	}
	if value("dynago_storage_block_cache_bytes") == 0 {
		t.Error("the block cache holds nothing after reads")
	}
	// A manual compaction of the whole key space empties L0.
	if err := p.db.Compact(t.Context(), []byte("key-"), []byte("key-\xff"), true); err != nil {
		t.Fatal(err)
	}
	if value("dynago_storage_compactions_total") < 1 || value("dynago_storage_l0_files") != 0 {
		t.Error("a compaction did not show, or L0 is not empty after it")
	}
	for _, name := range []string{"dynago_storage_compaction_debt_bytes", "dynago_storage_compactions_in_progress"} {
		if v := value(name); v < 0 {
			t.Errorf("%s = %v", name, v)
		}
	}
	// A closed engine reports nothing rather than failing the scrape.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(NewCollector(p)); n != 0 {
		t.Errorf("a closed engine exported %d series", n)
	}
}
