package pebbledb

import (
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// maxWALPrefill bounds prefillFS's zeros per new log: with the largest
// memtables (1 GiB) a full prefill would write a gigabyte at every open.
// Past it, a log grows by appending, as pebble's own do.
const maxWALPrefill = 64 << 20

// prefillFS writes zeros over the first size bytes of every new
// write-ahead log pebble creates, and syncs them, before pebble writes to
// it.
//
// Why: every put waits for an fdatasync of the log. When the write extends
// the file (a fresh log), the fdatasync must also write the inode (its new
// size, and the extent pebble's fallocate left unwritten) before it
// returns: two device writes one after the other instead of one. A log
// whose blocks were written before syncs its data alone. Pebble gets that
// by recycling obsolete logs (a recycled log keeps its old contents and
// size), but only after a memtable has been flushed, so a fresh store or
// one written slowly never does. On this project's lab VM (ext4 on virtio)
// a small write's sync took 0.21 ms at the median on a fresh log and 0.15
// on a prefilled one, 0.28 against 0.22 with three stores syncing at once
// (BenchmarkPebbleSync; docs/BENCHMARKS.md, "Prefilled write-ahead logs").
//
// Zeros are what pebble's reader expects past a log's end: a recycled log
// ends in an EOF trailer, a crashed one in a chunk that does not parse,
// and zeroed chunks with no valid chunk after them end a log the same way
// (record.ErrZeroedChunk, the case of pebble's own preallocation).
type prefillFS struct {
	vfs.FS
	size int64
}

func newPrefillFS(fs vfs.FS, memTableSize uint64) prefillFS {
	// Pebble preallocates 110 % of the memtable for a log (DB.
	// walPreallocateSize): a log's records take a little more room than
	// the memtable charges them.
	size := int64(memTableSize + memTableSize/10)
	return prefillFS{FS: fs, size: min(size, maxWALPrefill)}
}

// Create implements vfs.FS.
func (fs prefillFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	// A failed prefill leaves zeros up to where it stopped, which reads
	// as a shorter prefill; the log still works, only its first syncs
	// are slower. A disk that cannot take the zeros fails pebble's own
	// writes next, and pebble reports those.
	_ = prefill(f, fs.size)
	return f, nil
}

func prefill(f vfs.File, size int64) error {
	zeros := make([]byte, 256<<10)
	for off := int64(0); off < size; off += int64(len(zeros)) {
		// WriteAt leaves the file offset at 0, where pebble's first
		// Write goes.
		if _, err := f.WriteAt(zeros[:min(int64(len(zeros)), size-off)], off); err != nil {
			return err
		}
	}
	return f.Sync()
}
