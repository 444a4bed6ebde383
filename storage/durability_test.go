package storage_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/dynago/dynago/storage"
)

func TestPebbleReopenKeepsWrites(t *testing.T) {
	dir := t.TempDir()
	p := openTestPebble(t, dir)
	apply(t, p, true, "synced", "1")
	apply(t, p, false, "unsynced", "2", "gone", "x")
	apply(t, p, false, "gone", "<del>")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p = openTestPebble(t, dir)
	defer p.Close()
	if got := scanAll(t, p, nil, nil); !slices.Equal(got, []string{"synced=1", "unsynced=2"}) {
		t.Fatalf("after reopen: %q; a clean close must keep every applied write", got)
	}
}

// crasher is an engine that can simulate a power loss.
type crasher interface {
	storage.Engine
	crash(t *testing.T)
}

type memCrasher struct{ *storage.Mem }

func (m memCrasher) crash(*testing.T) { m.Crash() }

type faultyCrasher struct{ *storage.Faulty }

func (f faultyCrasher) crash(t *testing.T) {
	if err := f.Crash(); err != nil {
		t.Fatalf("Crash: %v", err)
	}
}

func crashers() []struct {
	name string
	open func(t *testing.T) crasher
} {
	return []struct {
		name string
		open func(t *testing.T) crasher
	}{
		{"mem", func(*testing.T) crasher { return memCrasher{storage.NewMem()} }},
		{"faulty-mem", func(*testing.T) crasher { return faultyCrasher{storage.NewFaulty(storage.NewMem())} }},
		{"faulty-pebble", func(t *testing.T) crasher { return faultyCrasher{storage.NewFaulty(openTestPebble(t, t.TempDir()))} }},
	}
}

func forEachCrasher(t *testing.T, fn func(t *testing.T, e crasher)) {
	for _, c := range crashers() {
		t.Run(c.name, func(t *testing.T) {
			e := c.open(t)
			t.Cleanup(func() { _ = e.Close() })
			fn(t, e)
		})
	}
}

func TestCrashDropsOnlyUnsyncedWrites(t *testing.T) {
	forEachCrasher(t, func(t *testing.T, e crasher) {
		apply(t, e, true, "kept", "1", "overwritten", "old", "deleted", "old")
		apply(t, e, false, "overwritten", "new1", "deleted", "<del>", "added", "new")
		apply(t, e, false, "overwritten", "new2", "added", "<del>", "added2", "new")
		e.crash(t)
		want := []string{"deleted=old", "kept=1", "overwritten=old"}
		if got := scanAll(t, e, nil, nil); !slices.Equal(got, want) {
			t.Fatalf("after crash: %q, want the last synced state %q", got, want)
		}
		// The engine is usable after the crash, like a restarted node.
		apply(t, e, false, "after", "crash")
		if got := mustGet(t, e, "after"); got != "crash" {
			t.Fatalf("after = %q", got)
		}
	})
}

func TestCrashKeepsSyncedWrites(t *testing.T) {
	forEachCrasher(t, func(t *testing.T, e crasher) {
		apply(t, e, false, "a", "1")
		if err := e.Sync(); err != nil {
			t.Fatal(err)
		}
		apply(t, e, false, "b", "2")
		// A synced apply covers the unsynced one before it, as a WAL sync
		// does.
		apply(t, e, true, "c", "3")
		apply(t, e, false, "a", "<del>", "d", "4")
		e.crash(t)
		want := []string{"a=1", "b=2", "c=3"}
		if got := scanAll(t, e, nil, nil); !slices.Equal(got, want) {
			t.Fatalf("after crash: %q, want %q", got, want)
		}
		// Nothing is left to drop after a crash.
		e.crash(t)
		if got := scanAll(t, e, nil, nil); !slices.Equal(got, want) {
			t.Fatalf("after second crash: %q, want %q", got, want)
		}
	})
}

func TestMemCloseIsDurableAndCrashRestarts(t *testing.T) {
	m := storage.NewMem()
	apply(t, m, false, "a", "1")
	if m.Unsynced() != 1 {
		t.Fatalf("Unsynced = %d, want 1", m.Unsynced())
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m.Crash() // power loss after a clean shutdown, then restart
	if got := mustGet(t, m, "a"); got != "1" {
		t.Fatalf("a = %q: a clean Close must make writes durable", got)
	}
	if m.Unsynced() != 0 || m.Len() != 1 {
		t.Fatalf("Unsynced, Len = %d, %d; want 0, 1", m.Unsynced(), m.Len())
	}
}

func TestMemWipe(t *testing.T) {
	m := storage.NewMem()
	apply(t, m, true, "synced", "1")
	apply(t, m, false, "unsynced", "2")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m.Wipe()
	if got := scanAll(t, m, nil, nil); len(got) != 0 {
		t.Fatalf("after Wipe: %q, want nothing", got)
	}
	apply(t, m, false, "fresh", "1")
	m.Crash()
	wantMissing(t, m, "fresh")
}

func TestFaultyFailWrites(t *testing.T) {
	inners := map[string]func(t *testing.T) storage.Engine{
		"mem":    func(*testing.T) storage.Engine { return storage.NewMem() },
		"pebble": func(t *testing.T) storage.Engine { return openTestPebble(t, t.TempDir()) },
	}
	for name, open := range inners {
		t.Run(name, func(t *testing.T) {
			f := faultyCrasher{storage.NewFaulty(open(t))}
			defer f.Close()
			testFaultyFailWrites(t, f)
		})
	}
}

func testFaultyFailWrites(t *testing.T, f faultyCrasher) {
	apply(t, f, true, "a", "1")
	apply(t, f, false, "b", "2") // applied, not yet synced
	f.FailWrites(storage.ErrInjected)
	var batch storage.Batch
	batch.Set([]byte("c"), []byte("3"))
	if err := f.Apply(&batch, true); !errors.Is(err, storage.ErrInjected) {
		t.Fatalf("Apply = %v, want ErrInjected", err)
	}
	if err := f.Sync(); !errors.Is(err, storage.ErrInjected) {
		t.Fatalf("Sync = %v, want ErrInjected", err)
	}
	wantMissing(t, f, "c")
	// The failed sync made nothing durable: the crash drops b.
	f.crash(t)
	if got := scanAll(t, f, nil, nil); !slices.Equal(got, []string{"a=1"}) {
		t.Fatalf("after crash: %q, want [a=1]", got)
	}
	f.FailWrites(nil)
	apply(t, f, true, "c", "3")
	if got := mustGet(t, f, "c"); got != "3" {
		t.Fatalf("c = %q after failures stopped", got)
	}
}

func TestFaultyFailReads(t *testing.T) {
	f := storage.NewFaulty(storage.NewMem())
	apply(t, f, false, "a", "1")
	f.FailReads(storage.ErrInjected)
	if _, err := f.Get([]byte("a")); !errors.Is(err, storage.ErrInjected) {
		t.Fatalf("Get = %v, want ErrInjected", err)
	}
	if err := f.Scan(nil, nil, func(_, _ []byte) error { return nil }); !errors.Is(err, storage.ErrInjected) {
		t.Fatalf("Scan = %v, want ErrInjected", err)
	}
	// Reads failing does not stop writes.
	apply(t, f, false, "b", "2")
	f.FailReads(nil)
	if got := mustGet(t, f, "b"); got != "2" {
		t.Fatalf("b = %q", got)
	}
}
