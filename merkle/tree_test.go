package merkle

import (
	"encoding/binary"

	"errors"
	"fmt"
	"github.com/cespare/xxhash/v2"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/dynago/dynago/ring"
)

func mustNew(t testing.TB, cfg Config) *Tree {
	t.Helper()
	tr, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return tr
}

func key(i int) []byte { return fmt.Appendf(nil, "key-%06d", i) }

// version returns a stand-in for object.Hash of the i-th write of a key:
// any non-zero 64-bit value will do.
func version(r *rand.Rand) uint64 {
	for {
		if v := r.Uint64(); v != 0 {
			return v
		}
	}
}

func TestConfigDefaultsAndShape(t *testing.T) {
	for _, tc := range []struct {
		cfg    Config
		want   Config
		widths []int // nodes per level, root first
	}{
		{Config{}, Config{1024, 16}, []int{1, 4, 64, 1024}},
		{Config{Leaves: 256}, Config{256, 16}, []int{1, 16, 256}},
		{Config{Leaves: 4096, Fanout: 16}, Config{4096, 16}, []int{1, 16, 256, 4096}},
		{Config{Leaves: 16, Fanout: 16}, Config{16, 16}, []int{1, 16}},
		{Config{Leaves: 2, Fanout: 2}, Config{2, 2}, []int{1, 2}},
		{Config{Leaves: 32, Fanout: 4}, Config{32, 4}, []int{1, 2, 8, 32}},
		{Config{Leaves: 8, Fanout: 2}, Config{8, 2}, []int{1, 2, 4, 8}},
	} {
		tr := mustNew(t, tc.cfg)
		if tr.Config() != tc.want {
			t.Errorf("New(%+v).Config() = %+v, want %+v", tc.cfg, tr.Config(), tc.want)
		}
		if tr.Depth() != len(tc.widths)-1 {
			t.Errorf("%+v: Depth() = %d, want %d", tc.cfg, tr.Depth(), len(tc.widths)-1)
		}
		for l, w := range tc.widths {
			if got := tr.Width(l); got != w {
				t.Errorf("%+v: Width(%d) = %d, want %d", tc.cfg, l, got, w)
			}
			if l < tr.Depth() {
				if got, want := len(tr.Level(l, 0)), tc.widths[l+1]/w; got != want {
					t.Errorf("%+v: len(Level(%d, 0)) = %d, want %d", tc.cfg, l, got, want)
				}
			}
		}
	}
}

func TestConfigRejectsBadShapes(t *testing.T) {
	for _, cfg := range []Config{
		{Leaves: 1000},
		{Leaves: -4},
		{Fanout: 1},
		{Fanout: 3},
		{Fanout: -16},
		{Fanout: 2 * MaxFanout, Leaves: 4 * MaxFanout},
		{Leaves: 8, Fanout: 16},
		{Leaves: 2 * MaxLeaves},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v) error = %v, want ErrConfig", cfg, err)
		}
	}
}

// TestHashesAreStable pins the bucket and contribution functions: they are
// part of the protocol between replicas, so a change would make replicas
// running different builds see every bucket as different.
func TestHashesAreStable(t *testing.T) {
	tr := mustNew(t, Config{})
	for k, want := range map[string]int{"": 307, "a": 11, "user:42": 92, "key-000001": 842} {
		if got := tr.Bucket([]byte(k)); got != want {
			t.Errorf("Bucket(%q) = %d, want %d", k, got, want)
		}
	}
	if got, want := contribution(keyHash([]byte("user:42")), 7), uint64(0xce608316eb9fe3b3); got != want {
		t.Errorf("contribution(user:42, 7) = %#x, want %#x", got, want)
	}
	tr.Update([]byte("a"), 0, 1)
	tr.Update([]byte("b"), 0, 2)
	if got, want := tr.Root(), uint64(0x1e59260d941ca101); got != want {
		t.Errorf("Root() of {a:1, b:2} = %#x, want %#x", got, want)
	}
}

// TestBucketsSpreadOneRingPartition checks that the keys of a single ring
// partition (equal top bits of the ring hash) use all buckets evenly: a
// bucket function correlated with the ring's would leave most buckets of a
// partition's tree empty and make every bucket scan expensive.
func TestBucketsSpreadOneRingPartition(t *testing.T) {
	rg, err := ring.New(ring.Config{Partitions: 16, N: 1}, []ring.NodeID{"n1"})
	if err != nil {
		t.Fatal(err)
	}
	tr := mustNew(t, Config{})
	counts := make([]int, tr.Config().Leaves)
	n := 0
	for i := 0; n < 16*len(counts); i++ {
		k := key(i)
		if rg.PartitionOf(k) != 3 {
			continue
		}
		counts[tr.Bucket(k)]++
		n++
	}
	// 16 keys per bucket on average; for a uniform spread the chance of any
	// bucket outside [1, 40] is below 1e-4.
	if lo, hi := slices.Min(counts), slices.Max(counts); lo < 1 || hi > 40 {
		t.Errorf("keys of one partition per bucket: min %d, max %d; want within [1, 40]", lo, hi)
	}
}

func TestEmptyTreesAgree(t *testing.T) {
	a, b := mustNew(t, Config{}), mustNew(t, Config{})
	if a.Root() != 0 || b.Root() != 0 {
		t.Fatalf("empty roots = %#x, %#x, want 0", a.Root(), b.Root())
	}
	if d := Diff(a, b); len(d) != 0 {
		t.Errorf("Diff of empty trees = %v, want none", d)
	}
	a.Update([]byte("k"), 0, 5)
	if a.Root() == 0 {
		t.Fatal("root of a non-empty tree is 0")
	}
	a.Update([]byte("k"), 5, 0)
	if a.Root() != 0 || a.Keys() != 0 {
		t.Errorf("after insert and delete: Root() = %#x, Keys() = %d, want 0, 0", a.Root(), a.Keys())
	}
}

// insertAll applies every key of m at its version, in the order of perm,
// through a random number of intermediate versions, as a replica's writes
// would.
func insertAll(tr *Tree, m map[int]uint64, order []int, r *rand.Rand) {
	for _, k := range order {
		v, ok := m[k]
		if !ok {
			continue
		}
		cur := uint64(0)
		for range r.IntN(3) {
			next := version(r)
			tr.Update(key(k), cur, next)
			cur = next
		}
		tr.Update(key(k), cur, v)
	}
}

func TestInsertionOrderDoesNotMatter(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	m := map[int]uint64{}
	for i := range 5000 {
		m[i] = version(r)
	}
	order := make([]int, len(m))
	for i := range order {
		order[i] = i
	}
	a, b := mustNew(t, Config{}), mustNew(t, Config{})
	insertAll(a, m, order, r)
	r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	insertAll(b, m, order, r)
	if a.Root() != b.Root() {
		t.Errorf("roots differ after the same writes in different orders: %#x vs %#x", a.Root(), b.Root())
	}
	if a.Keys() != 5000 || b.Keys() != 5000 {
		t.Errorf("Keys() = %d, %d, want 5000", a.Keys(), b.Keys())
	}
	if d := Diff(a, b); len(d) != 0 {
		t.Errorf("Diff = %v, want none", d)
	}
}

func TestSingleDifferenceFindsItsBucket(t *testing.T) {
	const n = 2000
	build := func() *Tree {
		tr := mustNew(t, Config{})
		for i := range n {
			tr.Update(key(i), 0, uint64(i)+1)
		}
		return tr
	}
	k := key(1234)
	extra := []byte("extra-key")
	for name, change := range map[string]func(*Tree){
		"other version": func(tr *Tree) { tr.Update(k, 1235, 99999) },
		"missing key":   func(tr *Tree) { tr.Update(k, 1235, 0) },
		"extra key":     func(tr *Tree) { tr.Update(extra, 0, 7) },
	} {
		t.Run(name, func(t *testing.T) {
			a, b := build(), build()
			change(b)
			if a.Root() == b.Root() {
				t.Fatal("roots equal despite a difference")
			}
			want := []int{a.Bucket(k)}
			if name == "extra key" {
				want = []int{a.Bucket(extra)}
			}
			if got := Diff(a, b); !slices.Equal(got, want) {
				t.Errorf("Diff(a, b) = %v, want %v", got, want)
			}
			if got := Diff(b, a); !slices.Equal(got, want) {
				t.Errorf("Diff(b, a) = %v, want %v", got, want)
			}
		})
	}
}

// TestRemoveEqualsNeverInserted checks that an update to absent leaves no
// trace: every node of the tree, not only the root, equals that of a tree
// that never saw the key.
func TestRemoveEqualsNeverInserted(t *testing.T) {
	a, b := mustNew(t, Config{}), mustNew(t, Config{})
	for i := range 100 {
		a.Update(key(i), 0, uint64(i)+10)
		b.Update(key(i), 0, uint64(i)+10)
	}
	gone := []byte("deleted")
	a.Update(gone, 0, 1)
	a.Update(gone, 1, 2)
	a.Update(gone, 2, 0)
	if a.Keys() != 100 {
		t.Errorf("Keys() = %d, want 100", a.Keys())
	}
	assertSameTree(t, a, b)
}

func assertSameTree(t *testing.T, a, b *Tree) {
	t.Helper()
	if a.Root() != b.Root() {
		t.Fatalf("roots differ: %#x vs %#x", a.Root(), b.Root())
	}
	for l := range a.Depth() {
		for i := range a.Width(l) {
			if x, y := a.Level(l, i), b.Level(l, i); !slices.Equal(x, y) {
				t.Fatalf("Level(%d, %d) differs: %x vs %x", l, i, x, y)
			}
		}
	}
}

func TestUpdateToSameVersionIsNoOp(t *testing.T) {
	a := mustNew(t, Config{})
	a.Update([]byte("k"), 0, 0)
	a.Update([]byte("j"), 0, 3)
	root := a.Root()
	a.Update([]byte("j"), 3, 3)
	if a.Root() != root || a.Keys() != 1 {
		t.Errorf("after no-op updates: Root() changed = %v, Keys() = %d, want false, 1", a.Root() != root, a.Keys())
	}
}

func TestResetEmptiesTheTree(t *testing.T) {
	a := mustNew(t, Config{Leaves: 64, Fanout: 4})
	for i := range 300 {
		a.Update(key(i), 0, 1)
	}
	_ = a.Root()
	a.Update(key(0), 1, 2) // leave some interior nodes stale across Reset
	a.Reset()
	if a.Keys() != 0 {
		t.Errorf("Keys() after Reset = %d, want 0", a.Keys())
	}
	assertSameTree(t, a, mustNew(t, Config{Leaves: 64, Fanout: 4}))
	// The tree keeps working after a Reset.
	b := mustNew(t, Config{Leaves: 64, Fanout: 4})
	a.Update(key(5), 0, 9)
	b.Update(key(5), 0, 9)
	assertSameTree(t, a, b)
}

func TestLevelReturnsACopyAndRejectsBadAddresses(t *testing.T) {
	tr := mustNew(t, Config{})
	tr.Update([]byte("k"), 0, 1)
	root := tr.Root()
	got := tr.Level(0, 0)
	clear(got)
	if tr.Root() != root || slices.Equal(tr.Level(0, 0), got) {
		t.Error("modifying Level's result changed the tree")
	}
	for _, ref := range []NodeRef{{-1, 0}, {0, 1}, {0, -1}, {1, 4}, {tr.Depth(), 0}, {tr.Depth() + 1, 0}} {
		if c := tr.Level(ref.Level, ref.Index); c != nil {
			t.Errorf("Level(%d, %d) = %v, want nil", ref.Level, ref.Index, c)
		}
	}
}

func TestLevelAfterUpdateIsCurrent(t *testing.T) {
	// Reading a deep node first must refresh only what it needs and still
	// leave the root correct afterwards.
	a, b := mustNew(t, Config{}), mustNew(t, Config{})
	a.Update([]byte("x"), 0, 1)
	b.Update([]byte("x"), 0, 1)
	_ = a.Root()
	_ = b.Root()
	a.Update([]byte("y"), 0, 2)
	bk := a.Bucket([]byte("y"))
	parent := bk >> 4 // level Depth-1 node index of the bucket's parent
	_ = a.Level(a.Depth()-1, parent)
	b.Update([]byte("y"), 0, 2)
	assertSameTree(t, a, b)
}

func TestDiffPanicsOnDifferentShapes(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Diff of trees with different shapes did not panic")
		}
	}()
	Diff(mustNew(t, Config{}), mustNew(t, Config{Leaves: 2048}))
}

func TestContributionIsXXHash(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 1000 {
		kh, v := r.Uint64(), r.Uint64()
		b := binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, kh), v)
		if got, want := contribution(kh, v), xxhash.Sum64(b); got != want {
			t.Fatalf("contribution(%#x, %#x) = %#x, want xxhash %#x", kh, v, got, want)
		}
	}
}
