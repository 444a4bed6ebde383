package pebbledb

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dynago/dynago/storage"
)

func put(t *testing.T, e storage.Engine, k, v string) {
	t.Helper()
	var b storage.Batch
	b.Set([]byte(k), []byte(v))
	if err := e.Apply(&b, false); err != nil {
		t.Fatal(err)
	}
}

func TestCheckpointRestoreKeepsDataAndRetiresEpoch(t *testing.T) {
	root := t.TempDir()
	p, err := Open(filepath.Join(root, "db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := storage.CheckFormat(p); err != nil {
		t.Fatal(err)
	}
	epoch, _, err := storage.StartEpoch(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	put(t, p, "a", "1")
	put(t, p, "b", "2")
	backup := filepath.Join(root, "backup")
	if err := p.Checkpoint(backup); err != nil {
		t.Fatal(err)
	}
	put(t, p, "a", "after") // not in the backup
	if err := p.Checkpoint(backup); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("checkpoint into a used dir: %v, want ErrNotEmpty", err)
	}

	dst := filepath.Join(root, "restored", "db")
	if err := RestoreCheckpoint(backup, dst, false); err != nil {
		t.Fatal(err)
	}
	if err := RestoreCheckpoint(backup, dst, false); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("restore over data without force: %v, want ErrNotEmpty", err)
	}
	if err := RestoreCheckpoint(backup, dst, true); err != nil {
		t.Fatalf("restore with force: %v", err)
	}
	r, err := Open(dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for k, want := range map[string]string{"a": "1", "b": "2"} {
		v, err := r.Get([]byte(k))
		if err != nil || string(v) != want {
			t.Errorf("restored %s = %q, %v; want %q", k, v, err, want)
		}
	}
	if err := storage.CheckFormat(r); err != nil {
		t.Fatalf("restored format: %v", err)
	}
	e2, why, err := storage.StartEpoch(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e2 == epoch || why != storage.EpochNew {
		t.Fatalf("restored node starts with epoch %x (%s); the backup's was %x: want a new one", e2, why, epoch)
	}
}

func TestRestoreRefusesNonBackupAndNewerFormat(t *testing.T) {
	root := t.TempDir()
	if err := RestoreCheckpoint(root, filepath.Join(root, "x"), false); err == nil || !strings.Contains(err.Error(), "not a dynago backup") {
		t.Fatalf("restore from a plain dir: %v", err)
	}
	p, err := Open(filepath.Join(root, "db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var b storage.Batch
	b.Set(storage.MetaKey("format"), binary.BigEndian.AppendUint64(nil, storage.FormatVersion+1))
	if err := p.Apply(&b, true); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(root, "backup")
	if err := p.Checkpoint(backup); err != nil {
		t.Fatal(err)
	}
	err = RestoreCheckpoint(backup, filepath.Join(root, "restored"), false)
	if !errors.Is(err, storage.ErrFormat) || !strings.Contains(err.Error(), "format 2") {
		t.Fatalf("restore of a newer format: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(backup, "MANIFEST-*")); len(m) == 0 {
		t.Fatalf("backup damaged")
	}
}
