package storage

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func put(t *testing.T, e Engine, k, v string) {
	t.Helper()
	var b Batch
	b.Set([]byte(k), []byte(v))
	if err := e.Apply(&b, false); err != nil {
		t.Fatal(err)
	}
}

func TestCheckpointRestoreKeepsDataAndRetiresEpoch(t *testing.T) {
	root := t.TempDir()
	p, err := OpenPebble(filepath.Join(root, "db"), PebbleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := CheckFormat(p); err != nil {
		t.Fatal(err)
	}
	epoch, _, err := StartEpoch(p, nil)
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
	r, err := OpenPebble(dst, PebbleOptions{})
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
	if err := CheckFormat(r); err != nil {
		t.Fatalf("restored format: %v", err)
	}
	e2, why, err := StartEpoch(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e2 == epoch || why != EpochNew {
		t.Fatalf("restored node starts with epoch %x (%s); the backup's was %x: want a new one", e2, why, epoch)
	}
}

func TestRestoreRefusesNonBackupAndNewerFormat(t *testing.T) {
	root := t.TempDir()
	if err := RestoreCheckpoint(root, filepath.Join(root, "x"), false); err == nil || !strings.Contains(err.Error(), "not a dynago backup") {
		t.Fatalf("restore from a plain dir: %v", err)
	}
	p, err := OpenPebble(filepath.Join(root, "db"), PebbleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var b Batch
	b.Set(MetaKey(formatName), binary.BigEndian.AppendUint64(nil, FormatVersion+1))
	if err := p.Apply(&b, true); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(root, "backup")
	if err := p.Checkpoint(backup); err != nil {
		t.Fatal(err)
	}
	err = RestoreCheckpoint(backup, filepath.Join(root, "restored"), false)
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "format 2") {
		t.Fatalf("restore of a newer format: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(backup, "MANIFEST-*")); len(m) == 0 {
		t.Fatalf("backup damaged")
	}
}

func TestCheckFormat(t *testing.T) {
	m := NewMem()
	if err := CheckFormat(m); err != nil {
		t.Fatal(err)
	}
	if v, found, err := ReadFormat(m); err != nil || !found || v != FormatVersion {
		t.Fatalf("format after first start: %d %v %v", v, found, err)
	}
	if err := CheckFormat(m); err != nil {
		t.Fatalf("second start: %v", err)
	}
	for _, v := range []uint64{0, FormatVersion + 1, 1 << 40} {
		var b Batch
		b.Set(MetaKey(formatName), binary.BigEndian.AppendUint64(nil, v))
		if err := m.Apply(&b, true); err != nil {
			t.Fatal(err)
		}
		err := CheckFormat(m)
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "format 1") {
			t.Errorf("format %d: %v; want ErrFormat naming both versions", v, err)
		}
	}
	var b Batch
	b.Set(MetaKey(formatName), []byte{1})
	_ = m.Apply(&b, true)
	if err := CheckFormat(m); !errors.Is(err, ErrCorrupt) {
		t.Errorf("short record: %v", err)
	}
}
