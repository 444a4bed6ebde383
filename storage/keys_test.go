package storage_test

import (
	"bytes"
	"math"
	"slices"
	"testing"

	"github.com/dynago/dynago/storage"
)

var layoutUserKeys = [][]byte{nil, {}, []byte("k"), {0}, {0xff}, {0xff, 0xff, 0xff, 0xff, 0xff}, []byte("user/key")}

var layoutPartitions = []int{0, 1, 255, 256, 65535, 65536, math.MaxUint32 - 1, math.MaxUint32}

func TestObjectKeyRoundTrip(t *testing.T) {
	for _, p := range layoutPartitions {
		for _, uk := range layoutUserKeys {
			k := storage.ObjectKey(p, uk)
			gp, guk, ok := storage.ParseObjectKey(k)
			if !ok || gp != p || !bytes.Equal(guk, uk) {
				t.Errorf("ParseObjectKey(ObjectKey(%d, %q)) = %d, %q, %t", p, uk, gp, guk, ok)
			}
			if _, _, _, ok := storage.ParseHintKey(k); ok {
				t.Errorf("object key %x parses as a hint", k)
			}
		}
	}
	for _, bad := range [][]byte{nil, {'o'}, {'o', 0, 0, 0}, {'h', 0, 0, 0, 0}, storage.MetaKey("epoch")} {
		if _, _, ok := storage.ParseObjectKey(bad); ok {
			t.Errorf("ParseObjectKey(%x) accepted a non-object key", bad)
		}
	}
}

// ObjectRange(p) must hold every key of p and no other key, whatever the
// user keys look like at the edges.
func TestObjectRange(t *testing.T) {
	m := storage.NewMem()
	var b storage.Batch
	for _, p := range layoutPartitions {
		for _, uk := range layoutUserKeys {
			b.Set(storage.ObjectKey(p, uk), nil)
			b.Set(storage.HintKey("n1", p, uk), nil)
		}
	}
	b.Set(storage.MetaKey("epoch"), nil)
	b.Set([]byte{0xff}, nil)
	if err := m.Apply(&b, false); err != nil {
		t.Fatal(err)
	}
	for _, p := range layoutPartitions {
		lower, upper := storage.ObjectRange(p)
		var got [][]byte
		err := m.Scan(lower, upper, func(k, _ []byte) error {
			got = append(got, bytes.Clone(k))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var want [][]byte
		for _, uk := range layoutUserKeys[1:] { // nil and {} are the same key
			want = append(want, storage.ObjectKey(p, uk))
		}
		slices.SortFunc(want, bytes.Compare)
		if !slices.EqualFunc(got, want, bytes.Equal) {
			t.Errorf("ObjectRange(%d) scanned %x, want %x", p, got, want)
		}
	}
}

func TestObjectKeysOrderByPartition(t *testing.T) {
	var keys [][]byte
	for i := len(layoutPartitions) - 1; i >= 0; i-- {
		for _, uk := range layoutUserKeys {
			keys = append(keys, storage.ObjectKey(layoutPartitions[i], uk))
		}
	}
	slices.SortFunc(keys, bytes.Compare)
	last := -1
	for _, k := range keys {
		p, _, _ := storage.ParseObjectKey(k)
		if p < last {
			t.Fatalf("partition %d sorts after partition %d", p, last)
		}
		last = p
	}
}

func TestHintKeyRoundTrip(t *testing.T) {
	targets := []string{"", "n1", "n10", string(make([]byte, 200)), "node-\xff"}
	for _, target := range targets {
		for _, p := range layoutPartitions {
			for _, uk := range layoutUserKeys {
				k := storage.HintKey(target, p, uk)
				gt, gp, guk, ok := storage.ParseHintKey(k)
				if !ok || gt != target || gp != p || !bytes.Equal(guk, uk) {
					t.Errorf("ParseHintKey(HintKey(%q, %d, %q)) = %q, %d, %q, %t", target, p, uk, gt, gp, guk, ok)
				}
				if _, _, ok := storage.ParseObjectKey(k); ok {
					t.Errorf("hint key %x parses as an object", k)
				}
			}
		}
	}
	for _, bad := range [][]byte{
		nil,
		{'h'},
		{'h', 2, 'n', '1', 0, 0, 0},             // partition cut short
		{'h', 5, 'n', '1', 0, 0, 0, 0},          // target longer than the key
		{'h', 0x82, 0x00, 'n', '1', 0, 0, 0, 0}, // non-canonical length
		{'h', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, // overflowing length
		storage.ObjectKey(1, []byte("k")),
	} {
		if _, _, _, ok := storage.ParseHintKey(bad); ok {
			t.Errorf("ParseHintKey(%x) accepted a malformed key", bad)
		}
	}
}

func TestHintRanges(t *testing.T) {
	m := storage.NewMem()
	var b storage.Batch
	for _, target := range []string{"n", "n1", "n10", "n2"} {
		for _, p := range []int{0, 7, math.MaxUint32} {
			b.Set(storage.HintKey(target, p, []byte("k")), []byte(target))
		}
	}
	b.Set(storage.ObjectKey(0, []byte("k")), []byte("object"))
	b.Set(storage.MetaKey("epoch"), []byte("meta"))
	if err := m.Apply(&b, false); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"n", "n1", "n10", "n2", "absent"} {
		lower, upper := storage.HintRange(target)
		n := 0
		err := m.Scan(lower, upper, func(k, v []byte) error {
			n++
			if gt, _, _, ok := storage.ParseHintKey(k); !ok || gt != target || string(v) != target {
				t.Errorf("HintRange(%q) holds %x (target %q)", target, k, gt)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := 3
		if target == "absent" {
			want = 0
		}
		if n != want {
			t.Errorf("HintRange(%q) holds %d hints, want %d", target, n, want)
		}
	}
	lower, upper := storage.AllHintsRange()
	n := 0
	_ = m.Scan(lower, upper, func(k, _ []byte) error {
		n++
		if _, _, _, ok := storage.ParseHintKey(k); !ok {
			t.Errorf("AllHintsRange holds non-hint %x", k)
		}
		return nil
	})
	if n != 12 {
		t.Errorf("AllHintsRange holds %d hints, want 12", n)
	}
	lower, upper = storage.MetaRange()
	if got := scanAll(t, m, lower, upper); !slices.Equal(got, []string{"mepoch=meta"}) {
		t.Errorf("MetaRange holds %q", got)
	}
}

func TestPartitionOutOfRangePanics(t *testing.T) {
	for _, p := range []int{-1, math.MaxUint32 + 1} {
		for name, fn := range map[string]func(){
			"ObjectKey":   func() { storage.ObjectKey(p, nil) },
			"ObjectRange": func() { storage.ObjectRange(p) },
			"HintKey":     func() { storage.HintKey("n1", p, nil) },
		} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s(%d) did not panic: it would file the key under another partition", name, p)
					}
				}()
				fn()
			}()
		}
	}
}

// Every accepted key is exactly the one built from its parts, so a scan of
// hints can never act on a key that HintKey would have spelled differently.
func FuzzParseHintKey(f *testing.F) {
	f.Add(storage.HintKey("n1", 3, []byte("key")))
	f.Add([]byte{'h', 0x82, 0x00, 'n', '1', 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, k []byte) {
		target, p, uk, ok := storage.ParseHintKey(k)
		if !ok {
			return
		}
		if again := storage.HintKey(target, p, uk); !bytes.Equal(again, k) {
			t.Fatalf("ParseHintKey(%x) = %q, %d, %q, which HintKey spells %x", k, target, p, uk, again)
		}
	})
}

func FuzzParseObjectKey(f *testing.F) {
	f.Add(storage.ObjectKey(3, []byte("key")))
	f.Fuzz(func(t *testing.T, k []byte) {
		p, uk, ok := storage.ParseObjectKey(k)
		if !ok {
			return
		}
		if again := storage.ObjectKey(p, uk); !bytes.Equal(again, k) {
			t.Fatalf("ParseObjectKey(%x) = %d, %q, which ObjectKey spells %x", k, p, uk, again)
		}
	})
}
