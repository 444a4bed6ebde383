package storage_test

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/dynago/dynago/storage"
)

func TestCheckFormat(t *testing.T) {
	m := storage.NewMem()
	if err := storage.CheckFormat(m); err != nil {
		t.Fatal(err)
	}
	if v, found, err := storage.ReadFormat(m); err != nil || !found || v != storage.FormatVersion {
		t.Fatalf("format after first start: %d %v %v", v, found, err)
	}
	if err := storage.CheckFormat(m); err != nil {
		t.Fatalf("second start: %v", err)
	}
	for _, v := range []uint64{0, storage.FormatVersion + 1, 1 << 40} {
		var b storage.Batch
		b.Set(storage.MetaKey("format"), binary.BigEndian.AppendUint64(nil, v))
		if err := m.Apply(&b, true); err != nil {
			t.Fatal(err)
		}
		err := storage.CheckFormat(m)
		if !errors.Is(err, storage.ErrFormat) || !strings.Contains(err.Error(), "format 1") {
			t.Errorf("format %d: %v; want storage.ErrFormat naming both versions", v, err)
		}
	}
	var b storage.Batch
	b.Set(storage.MetaKey("format"), []byte{1})
	_ = m.Apply(&b, true)
	if err := storage.CheckFormat(m); !errors.Is(err, storage.ErrCorrupt) {
		t.Errorf("short record: %v", err)
	}
}
