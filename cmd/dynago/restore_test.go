package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dynago/dynago/storage"
	"github.com/dynago/dynago/storage/pebbledb"
)

func TestRestoreCommand(t *testing.T) {
	root := t.TempDir()
	p, err := pebbledb.Open(filepath.Join(root, "live"), pebbledb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b storage.Batch
	b.Set([]byte("k"), []byte("v"))
	if err := p.Apply(&b, true); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(root, "backup")
	if err := p.Checkpoint(backup); err != nil {
		t.Fatal(err)
	}
	p.Close()

	for _, args := range [][]string{{"restore"}, {"restore", "--from", backup}, {"restore", "--data-dir", root}} {
		if _, err := run(t, "", args...); !errors.Is(err, errUsage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	dataDir := filepath.Join(root, "node")
	out := mustRun(t, "restore", "--from", backup, "--data-dir", dataDir)
	if !strings.Contains(out, "new epoch") {
		t.Errorf("restore printed %q", out)
	}
	if _, err := run(t, "", "restore", "--from", backup, "--data-dir", dataDir); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("restore over a used data dir: %v", err)
	}
	keep := filepath.Join(dataDir, "operator-notes.txt")
	if err := os.WriteFile(keep, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "restore", "--from", backup, "--data-dir", dataDir, "--force")
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("--force deleted a file that is not the store: %v", err)
	}
	r, err := pebbledb.Open(filepath.Join(dataDir, "db"), pebbledb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if v, err := r.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("restored k = %q, %v", v, err)
	}
	if _, err := run(t, "", "restore", "--from", root, "--data-dir", filepath.Join(root, "other")); err == nil || !strings.Contains(err.Error(), "not a dynago backup") {
		t.Errorf("restore from a non-backup: %v", err)
	}
}

func TestAdminBackupNeedsAnAbsoluteDir(t *testing.T) {
	for _, args := range [][]string{{"admin", "backup"}, {"admin", "backup", "--dir", "rel/dir"}} {
		if _, err := run(t, "", args...); !errors.Is(err, errUsage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}
