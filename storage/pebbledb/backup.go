package pebbledb

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"

	"github.com/dynago/dynago/storage"
)

// ErrNotEmpty reports a backup or restore target that already holds files.
var ErrNotEmpty = errors.New("target directory exists and is not empty")

// Checkpoint writes a consistent copy of the store to dir, which must not
// exist yet or be empty (its parent must exist). The copy is a Pebble
// database that Open opens as is: every write applied before the call
// (the memtable is flushed and the WAL synced first), none after. Sstables
// are hard-linked where dir is on the same filesystem, so a checkpoint
// costs little disk until compactions rewrite the originals.
func (p *DB) Checkpoint(dir string) error {
	if err := p.gate.enter(); err != nil {
		return err
	}
	defer p.gate.exit()
	if err := emptyOrAbsent(dir); err != nil {
		return err
	}
	// Pebble wants to create dir itself; an empty one is removed first.
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pebbledb: checkpoint: %w", err)
	}
	if err := p.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("pebbledb: checkpoint %s: %w", dir, err)
	}
	return nil
}

// emptyOrAbsent returns nil when dir does not exist or is an empty
// directory, ErrNotEmpty when it holds anything.
func emptyOrAbsent(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("pebbledb: %s: %w", dir, err)
	case len(ents) > 0:
		return fmt.Errorf("pebbledb: %s: %w", dir, ErrNotEmpty)
	}
	return nil
}

// DirSize is the total size in bytes of the regular files under dir.
func DirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}

// RestoreCheckpoint copies the checkpoint in from into the store directory
// dst (a node's <data-dir>/db), which must not exist or be empty unless
// force is set, in which case its contents are removed first. It refuses a
// checkpoint of another on-disk format, and it retires the checkpoint's
// epoch, so the restored node starts with a new one: the node had stamped
// writes after the backup with dots of the old epoch, which replicas still
// hold; reusing those dots for different writes would make replicas drop
// them as already seen (Riak's kv679).
func RestoreCheckpoint(from, dst string, force bool) error {
	if m, err := filepath.Glob(filepath.Join(from, "MANIFEST-*")); err != nil || len(m) == 0 {
		return fmt.Errorf("pebbledb: %s is not a dynago backup (no Pebble MANIFEST file)", from)
	}
	if err := emptyOrAbsent(dst); err != nil {
		if !force || !errors.Is(err, ErrNotEmpty) {
			return err
		}
		if err := os.RemoveAll(dst); err != nil {
			return fmt.Errorf("pebbledb: clearing %s: %w", dst, err)
		}
	}
	if err := copyTree(from, dst); err != nil {
		return fmt.Errorf("pebbledb: copying %s to %s: %w", from, dst, err)
	}
	// The copy, not the backup, is opened: the backup stays untouched and
	// can be restored again.
	p, err := Open(dst, Options{})
	if err != nil {
		return err
	}
	if err := storage.AdoptRestored(p); err != nil {
		_ = p.Close()
		return err
	}
	return p.Close()
}

// copyTree copies the regular files and directories under from into to,
// syncing each file, so a restore that returned survives a power cut.
func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		target := filepath.Join(to, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			return copyFile(path, target)
		}
		return fmt.Errorf("%s: not a regular file", path)
	})
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
