package storage_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/dynago/dynago/storage"
	"github.com/dynago/dynago/storage/pebbledb"
)

// engineCase opens a fresh, empty engine of one kind. Every engine must pass
// the same conformance suite: the protocol core and the simulator rely on
// Mem and Faulty behaving exactly like Pebble.
type engineCase struct {
	name string
	open func(t *testing.T) storage.Engine
}

// openTestPebble opens the daemon's engine with small caches. The suite is
// an external test so that it can include pebbledb, which imports storage,
// while the storage package itself stays free of the engine.
func openTestPebble(t testing.TB, dir string) *pebbledb.DB {
	t.Helper()
	p, err := pebbledb.Open(dir, pebbledb.Options{CacheSize: 8 << 20, MemTableSize: 1 << 20, Logger: quietLogger})
	if err != nil {
		t.Fatalf("pebbledb.Open: %v", err)
	}
	return p
}

// quietLogger keeps pebble's routine lines ("Found 0 WALs") out of test
// output.
var quietLogger = slog.New(slog.DiscardHandler)

func engineCases() []engineCase {
	return []engineCase{
		{"pebble", func(t *testing.T) storage.Engine { return openTestPebble(t, t.TempDir()) }},
		{"mem", func(t *testing.T) storage.Engine { return storage.NewMem() }},
		{"faulty-mem", func(t *testing.T) storage.Engine { return storage.NewFaulty(storage.NewMem()) }},
		{"faulty-pebble", func(t *testing.T) storage.Engine { return storage.NewFaulty(openTestPebble(t, t.TempDir())) }},
	}
}

// forEachEngine runs fn against a fresh engine of every kind, closing it
// afterwards unless fn did.
func forEachEngine(t *testing.T, fn func(t *testing.T, e storage.Engine)) {
	for _, c := range engineCases() {
		t.Run(c.name, func(t *testing.T) {
			e := c.open(t)
			t.Cleanup(func() { _ = e.Close() })
			fn(t, e)
		})
	}
}

func apply(t testing.TB, e storage.Engine, sync bool, ops ...string) {
	t.Helper()
	var b storage.Batch
	for i := 0; i < len(ops); i += 2 {
		if ops[i+1] == "<del>" {
			b.Delete([]byte(ops[i]))
		} else {
			b.Set([]byte(ops[i]), []byte(ops[i+1]))
		}
	}
	if err := e.Apply(&b, sync); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func mustGet(t testing.TB, e storage.Engine, key string) string {
	t.Helper()
	v, err := e.Get([]byte(key))
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return string(v)
}

func wantMissing(t testing.TB, e storage.Engine, key string) {
	t.Helper()
	if v, err := e.Get([]byte(key)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, v, err)
	}
}

// scanAll returns "k=v" for every key in [lower, upper).
func scanAll(t testing.TB, e storage.Engine, lower, upper []byte) []string {
	t.Helper()
	var out []string
	err := e.Scan(lower, upper, func(k, v []byte) error {
		out = append(out, string(k)+"="+string(v))
		return nil
	})
	if err != nil {
		t.Fatalf("Scan(%q, %q): %v", lower, upper, err)
	}
	return out
}

func TestEngineGetSetDelete(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e storage.Engine) {
		wantMissing(t, e, "a")

		apply(t, e, false, "a", "1", "b", "2")
		if got := mustGet(t, e, "a"); got != "1" {
			t.Fatalf("a = %q, want 1", got)
		}
		apply(t, e, false, "a", "3")
		if got := mustGet(t, e, "a"); got != "3" {
			t.Fatalf("overwritten a = %q, want 3", got)
		}
		apply(t, e, true, "a", "<del>", "never-existed", "<del>")
		wantMissing(t, e, "a")
		wantMissing(t, e, "never-existed")
		if got := mustGet(t, e, "b"); got != "2" {
			t.Fatalf("b = %q, want 2", got)
		}
		if err := e.Sync(); err != nil {
			t.Fatalf("Sync: %v", err)
		}
	})
}

func TestEngineEmptyAndBinaryValues(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e storage.Engine) {
		var b storage.Batch
		b.Set([]byte("empty"), nil)
		bin := []byte{0, 0xff, 0, 1}
		b.Set([]byte{0xff, 0}, bin)
		b.Set(nil, []byte("empty key"))
		if err := e.Apply(&b, false); err != nil {
			t.Fatal(err)
		}
		v, err := e.Get([]byte("empty"))
		if err != nil || len(v) != 0 {
			t.Fatalf("empty value: %q, %v; want an empty value, not a delete", v, err)
		}
		if v, err := e.Get([]byte{0xff, 0}); err != nil || !bytes.Equal(v, bin) {
			t.Fatalf("binary value: %x, %v", v, err)
		}
		if v, err := e.Get(nil); err != nil || string(v) != "empty key" {
			t.Fatalf("empty key: %q, %v", v, err)
		}
	})
}

// The engine must own its data: neither the caller's buffers after Set nor
// the slice returned by Get may alias it.
func TestEngineCopies(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e storage.Engine) {
		key, val := []byte("k"), []byte("value")
		var b storage.Batch
		b.Set(key, val)
		key[0], val[0] = 'X', 'X'
		if err := e.Apply(&b, false); err != nil {
			t.Fatal(err)
		}
		b.Reset()
		b.Set([]byte("k"), []byte("other")) // reuses b's memory
		got, err := e.Get([]byte("k"))
		if err != nil || string(got) != "value" {
			t.Fatalf("Get = %q, %v; want the value as it was at Set", got, err)
		}
		got[0] = 'Y'
		if again := mustGet(t, e, "k"); again != "value" {
			t.Fatalf("modifying Get's result changed the stored value to %q", again)
		}
	})
}

func TestEngineBatchOrder(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e storage.Engine) {
		apply(t, e, false, "k", "1", "k", "<del>", "k", "2", "j", "1", "j", "<del>")
		if got := mustGet(t, e, "k"); got != "2" {
			t.Fatalf("k = %q: the last operation in a batch must win", got)
		}
		wantMissing(t, e, "j")
	})
}

func TestEngineScanBounds(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e storage.Engine) {
		apply(t, e, false, "a", "1", "b", "2", "ba", "3", "c", "4", "\xff", "5", "\x00", "0")
		for _, tc := range []struct {
			lower, upper []byte
			want         []string
		}{
			{nil, nil, []string{"\x00=0", "a=1", "b=2", "ba=3", "c=4", "\xff=5"}},
			{[]byte("b"), []byte("c"), []string{"b=2", "ba=3"}},
			{[]byte("b"), nil, []string{"b=2", "ba=3", "c=4", "\xff=5"}},
			{nil, []byte("b"), []string{"\x00=0", "a=1"}},
			{[]byte("bb"), []byte("bz"), nil},
			{[]byte("b"), []byte("b"), nil},
			{[]byte("c"), []byte("a"), nil},
			{[]byte("a"), []byte("a\x00"), []string{"a=1"}},
		} {
			if got := scanAll(t, e, tc.lower, tc.upper); !slices.Equal(got, tc.want) {
				t.Errorf("Scan(%q, %q) = %q, want %q", tc.lower, tc.upper, got, tc.want)
			}
		}
	})
}

func TestEngineScanStopsOnError(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e storage.Engine) {
		apply(t, e, false, "a", "1", "b", "2", "c", "3")
		stop := errors.New("stop here")
		var seen []string
		err := e.Scan(nil, nil, func(k, _ []byte) error {
			seen = append(seen, string(k))
			if string(k) == "b" {
				return stop
			}
			return nil
		})
		if err != stop {
			t.Fatalf("Scan returned %v, want fn's error as is", err)
		}
		if !slices.Equal(seen, []string{"a", "b"}) {
			t.Fatalf("Scan visited %q after fn failed, want [a b]", seen)
		}
	})
}

// Scan sees the state at its start, and fn may write to the engine (handoff
// deletes hints while it scans them) without deadlocking.
func TestEngineScanSnapshot(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e storage.Engine) {
		apply(t, e, false, "a", "1", "b", "2")
		var seen []string
		err := e.Scan(nil, nil, func(k, v []byte) error {
			seen = append(seen, string(k)+"="+string(v))
			if string(k) == "a" {
				apply(t, e, false, "b", "changed", "c", "new", "a", "<del>")
				if got := mustGet(t, e, "c"); got != "new" {
					t.Errorf("Get inside Scan = %q, want the new write", got)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(seen, []string{"a=1", "b=2"}) {
			t.Fatalf("Scan saw %q, want the snapshot [a=1 b=2]", seen)
		}
		if got := scanAll(t, e, nil, nil); !slices.Equal(got, []string{"b=changed", "c=new"}) {
			t.Fatalf("after the scan: %q", got)
		}
	})
}

// A reader must never observe half of a batch: each batch sets every key to
// the same generation, and every snapshot must show one generation.
func TestEngineBatchAtomicity(t *testing.T) {
	const keys, gens = 16, 150
	forEachEngine(t, func(t *testing.T, e storage.Engine) {
		var wg sync.WaitGroup
		done := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done)
			var b storage.Batch
			for g := range gens {
				b.Reset()
				for k := range keys {
					b.Set(fmt.Appendf(nil, "key%02d", k), fmt.Appendf(nil, "gen%04d", g))
				}
				if err := e.Apply(&b, false); err != nil {
					t.Errorf("Apply: %v", err)
					return
				}
			}
		}()
		for finished := false; !finished; {
			select {
			case <-done:
				finished = true // one more scan of the final state
			default:
			}
			var first string
			n := 0
			err := e.Scan(nil, nil, func(_, v []byte) error {
				if n == 0 {
					first = string(v)
				} else if string(v) != first {
					return fmt.Errorf("torn batch: %q next to %q", v, first)
				}
				n++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if n != 0 && n != keys {
				t.Fatalf("scan saw %d keys, want 0 or %d", n, keys)
			}
		}
		wg.Wait()
	})
}

func TestEngineClosed(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e storage.Engine) {
		apply(t, e, false, "a", "1")
		if err := e.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		var b storage.Batch
		b.Set([]byte("b"), []byte("2"))
		checks := map[string]error{
			"Get":   func() error { _, err := e.Get([]byte("a")); return err }(),
			"Apply": e.Apply(&b, true),
			"Sync":  e.Sync(),
			"Scan":  e.Scan(nil, nil, func(_, _ []byte) error { return nil }),
			"Close": e.Close(),
		}
		for op, err := range checks {
			if !errors.Is(err, storage.ErrClosed) {
				t.Errorf("%s after Close = %v, want ErrClosed", op, err)
			}
		}
	})
}

func TestBatch(t *testing.T) {
	var b storage.Batch
	b.Set([]byte("a"), []byte("1"))
	b.Delete([]byte("b"))
	b.Set([]byte("c"), nil)
	if b.Len() != 3 || b.Size() != 4 {
		t.Fatalf("Len, Size = %d, %d; want 3, 4", b.Len(), b.Size())
	}
	var got []string
	_ = b.Each(func(k, v []byte, deleted bool) error {
		switch {
		case deleted:
			got = append(got, "del "+string(k))
		case v == nil:
			got = append(got, "set "+string(k)+" <nil>")
		default:
			got = append(got, "set "+string(k)+" "+string(v))
		}
		return nil
	})
	if want := []string{"set a 1", "del b", "set c "}; !slices.Equal(got, want) {
		t.Fatalf("Each = %q, want %q", got, want)
	}
	b.Reset()
	if b.Len() != 0 || b.Size() != 0 {
		t.Fatalf("after Reset: Len, Size = %d, %d", b.Len(), b.Size())
	}
}
