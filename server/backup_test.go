package server

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dynago/dynago/storage"
	"github.com/dynago/dynago/storage/pebbledb"
)

// A data directory written by a newer dynago (a newer on-disk format) is
// refused at start with both versions named, not misread.
func TestStartRefusesNewerFormat(t *testing.T) {
	srvs := startCluster(t, 1, nil)
	cfg := srvs[0].cfg
	if err := srvs[0].Close(); err != nil {
		t.Fatal(err)
	}
	p, err := pebbledb.Open(filepath.Join(cfg.DataDir, "db"), pebbledb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v, found, err := storage.ReadFormat(p); err != nil || !found || v != storage.FormatVersion {
		t.Fatalf("format written at first start: %d %v %v", v, found, err)
	}
	var b storage.Batch
	b.Set(storage.MetaKey("format"), binary.BigEndian.AppendUint64(nil, storage.FormatVersion+1))
	if err := p.Apply(&b, true); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Start(cfg)
	if err == nil {
		s.Close()
		t.Fatal("a node started on a newer on-disk format")
	}
	if !errors.Is(err, storage.ErrFormat) || !strings.Contains(err.Error(), "format 2") || !strings.Contains(err.Error(), "format 1") {
		t.Fatalf("start on a newer format: %v", err)
	}
}
