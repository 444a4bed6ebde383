package storage_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/dynago/dynago/storage"
)

func TestEpochMem(t *testing.T) {
	m := storage.NewMem()
	rnd := bytes.NewReader([]byte{
		0, 0, 0, 0, 0, 0, 0, 0, // zero is redrawn
		1, 2, 3, 4, 5, 6, 7, 8,
		9, 9, 9, 9, 9, 9, 9, 9,
	})
	e1, created, err := storage.LoadOrCreateEpoch(m, rnd)
	if err != nil || !created || e1 != 0x0102030405060708 {
		t.Fatalf("first load = %#x, %t, %v; want a created epoch 0x0102030405060708", e1, created, err)
	}
	// The epoch must be durable before it is used: a crash keeps it.
	m.Crash()
	e2, created, err := storage.LoadOrCreateEpoch(m, rnd)
	if err != nil || created || e2 != e1 {
		t.Fatalf("after crash = %#x, %t, %v; want %#x, not created", e2, created, err, e1)
	}
	m.Wipe()
	e3, created, err := storage.LoadOrCreateEpoch(m, rnd)
	if err != nil || !created || e3 == e1 {
		t.Fatalf("after wipe = %#x, %t, %v; want a new epoch", e3, created, err)
	}
}

func TestEpochPebble(t *testing.T) {
	dir := t.TempDir()
	p := openTestPebble(t, dir)
	e1, created, err := storage.LoadOrCreateEpoch(p, nil)
	if err != nil || !created || e1 == 0 {
		t.Fatalf("new dir: %#x, %t, %v; want a created nonzero epoch", e1, created, err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p = openTestPebble(t, dir)
	e2, created, err := storage.LoadOrCreateEpoch(p, nil)
	p.Close()
	if err != nil || created || e2 != e1 {
		t.Fatalf("reopen: %#x, %t, %v; want %#x, not created", e2, created, err, e1)
	}
	// A wiped data directory is a new directory.
	p = openTestPebble(t, t.TempDir())
	defer p.Close()
	e3, created, err := storage.LoadOrCreateEpoch(p, nil)
	if err != nil || !created || e3 == e1 {
		t.Fatalf("wiped dir: %#x, %t, %v; want a new epoch", e3, created, err)
	}
}

func TestEpochErrors(t *testing.T) {
	t.Run("corrupt", func(t *testing.T) {
		m := storage.NewMem()
		var b storage.Batch
		b.Set(storage.MetaKey("epoch"), []byte{1, 2, 3})
		_ = m.Apply(&b, true)
		if _, _, err := storage.LoadOrCreateEpoch(m, nil); !errors.Is(err, storage.ErrCorrupt) {
			t.Fatalf("err = %v, want ErrCorrupt", err)
		}
	})
	t.Run("zero source", func(t *testing.T) {
		if _, _, err := storage.LoadOrCreateEpoch(storage.NewMem(), bytes.NewReader(make([]byte, 64))); err == nil {
			t.Fatal("a source of zeros produced an epoch")
		}
	})
	t.Run("short source", func(t *testing.T) {
		if _, _, err := storage.LoadOrCreateEpoch(storage.NewMem(), bytes.NewReader([]byte{1, 2})); err == nil {
			t.Fatal("a 2-byte source produced an epoch")
		}
	})
	t.Run("write fails", func(t *testing.T) {
		f := storage.NewFaulty(storage.NewMem())
		f.FailWrites(storage.ErrInjected)
		_, created, err := storage.LoadOrCreateEpoch(f, nil)
		if !errors.Is(err, storage.ErrInjected) || created {
			t.Fatalf("= %t, %v; want ErrInjected, not created", created, err)
		}
	})
	t.Run("read fails", func(t *testing.T) {
		f := storage.NewFaulty(storage.NewMem())
		_, _, _ = storage.LoadOrCreateEpoch(f, nil)
		f.FailReads(storage.ErrInjected)
		// A read error must not be mistaken for "no epoch yet", or the node
		// would draw a new one and abandon its actor ID for no reason.
		if _, created, err := storage.LoadOrCreateEpoch(f, nil); !errors.Is(err, storage.ErrInjected) || created {
			t.Fatalf("= %t, %v; want ErrInjected, not created", created, err)
		}
	})
}

func TestStartEpochIsNewAfterACrashAndKeptAfterACleanStop(t *testing.T) {
	e := storage.NewMem()
	first, reason, err := storage.StartEpoch(e, nil)
	if err != nil || reason != storage.EpochNew {
		t.Fatalf("first start: %v %q", err, reason)
	}
	if err := storage.MarkClean(e); err != nil {
		t.Fatal(err)
	}
	again, reason, err := storage.StartEpoch(e, nil)
	if err != nil || reason != storage.EpochKept || again != first {
		t.Fatalf("after a clean stop: epoch %x (was %x), %q, %v", again, first, reason, err)
	}
	// No MarkClean: the process died.
	crashed, reason, err := storage.StartEpoch(e, nil)
	if err != nil || reason != storage.EpochUnclean || crashed == again {
		t.Fatalf("after a crash: epoch %x (was %x), %q, %v", crashed, again, reason, err)
	}
	e.Crash() // nothing unsynced survives, and StartEpoch synced what it wrote
	if _, reason, _ := storage.StartEpoch(e, nil); reason != storage.EpochUnclean {
		t.Fatalf("the in-progress marker was not durable: %q", reason)
	}
}
