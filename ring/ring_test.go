package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
)

// prefixHash reads a key's first 8 bytes as a big-endian position, so tests
// can place keys exactly (see keyAt).
func prefixHash(key []byte) uint64 {
	var b [8]byte
	copy(b[:], key)
	return binary.BigEndian.Uint64(b[:])
}

// keyAt is a key that prefixHash puts at pos.
func keyAt(pos uint64) []byte { return binary.BigEndian.AppendUint64(nil, pos) }

// ids splits "a b c" into node IDs.
func ids(s string) []NodeID {
	var out []NodeID
	for _, f := range strings.Fields(s) {
		out = append(out, NodeID(f))
	}
	return out
}

func nodeNames(m int) []NodeID {
	out := make([]NodeID, m)
	for i := range out {
		out[i] = NodeID(fmt.Sprintf("n%02d", i))
	}
	return out
}

func TestDefaultHashIsStable(t *testing.T) {
	// Changing any of these moves every stored key to another partition.
	for _, tc := range []struct {
		key  string
		want uint64
	}{
		{"", 0xef46db3751d8e999}, // published xxh64 test vectors
		{"abc", 0x44bc2cf5ad770999},
		{"a", 0xd24ec4f1a98c6e5b},
		{"dynago", 0x4acffae293080671},
		{"user:42", 0xdc1fea7da8d2d1c2},
	} {
		if got := DefaultHash([]byte(tc.key)); got != tc.want {
			t.Errorf("DefaultHash(%q) = %#x, want %#x", tc.key, got, tc.want)
		}
	}
}

func TestPartitionOf(t *testing.T) {
	for _, tc := range []struct {
		q    int
		pos  uint64
		want int
	}{
		{1, 0, 0},
		{1, math.MaxUint64, 0},
		{4, 0, 0},
		{4, 1<<62 - 1, 0},
		{4, 1 << 62, 1},
		{4, 1<<63 - 1, 1},
		{4, 1 << 63, 2},
		{4, math.MaxUint64, 3},
		{64, 5 << 58, 5},
		{64, 6<<58 - 1, 5},
		{65536, 1<<48 - 1, 0},
		{65536, 1 << 48, 1},
		{65536, math.MaxUint64, 65535},
	} {
		r, err := New(Config{Partitions: tc.q, N: 1, Hash: prefixHash}, ids("a"))
		if err != nil {
			t.Fatal(err)
		}
		if got := r.PartitionOf(keyAt(tc.pos)); got != tc.want {
			t.Errorf("Q=%d: PartitionOf(%#x) = %d, want %d", tc.q, tc.pos, got, tc.want)
		}
	}
}

func TestNilHashMeansDefaultHash(t *testing.T) {
	r, err := New(Config{Partitions: 256, N: 3}, ids("a b c"))
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("user:42")
	if got, want := r.PartitionOf(key), int(DefaultHash(key)>>56); got != want {
		t.Errorf("PartitionOf = %d, want %d", got, want)
	}
}

// TestPreferenceListExample spells out walks on small owner tables.
func TestPreferenceListExample(t *testing.T) {
	for _, tc := range []struct {
		owners    string
		n, p      int
		pref, fbk string
	}{
		// A walk skips nodes already listed (the second a at 2).
		{"a b a c d a b c", 3, 0, "a b c", "d"},
		{"a b a c d a b c", 3, 1, "b a c", "d"},
		{"a b a c d a b c", 3, 2, "a c d", "b"},
		{"a b a c d a b c", 3, 4, "d a b", "c"},
		// Walks wrap around the end of the ring.
		{"a b a c d a b c", 3, 6, "b c a", "d"},
		{"a b a c d a b c", 3, 7, "c a b", "d"},
		{"a b a c d a b c", 1, 7, "c", "a b d"},
		// Fewer members than N: everybody is in the preference list.
		{"a b a c d a b c", 6, 3, "c d a b", ""},
		// Lopsided table: the walk goes as far as it must.
		{"a a a a a a a b", 2, 0, "a b", ""},
		{"a a a a a a a b", 1, 1, "a", "b"},
		{"a a a a a a a b", 1, 7, "b", "a"},
	} {
		owners := ids(tc.owners)
		r, err := FromOwners(Config{Partitions: len(owners), N: tc.n}, 1, owners)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("owners=%q N=%d p=%d", tc.owners, tc.n, tc.p)
		if got := r.PreferenceList(tc.p); !slices.Equal(got, ids(tc.pref)) {
			t.Errorf("%s: PreferenceList = %v, want %v", name, got, ids(tc.pref))
		}
		if got := r.Fallbacks(tc.p); !slices.Equal(got, ids(tc.fbk)) {
			t.Errorf("%s: Fallbacks = %v, want %v", name, got, ids(tc.fbk))
		}
		if got, want := r.WalkOrder(tc.p), ids(tc.pref+" "+tc.fbk); !slices.Equal(got, want) {
			t.Errorf("%s: WalkOrder = %v, want %v", name, got, want)
		}
	}
}

func TestPartitionsOfExample(t *testing.T) {
	owners := ids("a b a c d a b c")
	r, err := FromOwners(Config{Partitions: 8, N: 3}, 1, owners)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   NodeID
		want []int
	}{
		{"a", []int{0, 1, 2, 3, 4, 5, 6, 7}},
		{"b", []int{0, 1, 4, 5, 6, 7}},
		{"c", []int{0, 1, 2, 3, 5, 6, 7}},
		{"d", []int{2, 3, 4}},
		{"e", nil},
	} {
		if got := r.PartitionsOf(tc.id); !slices.Equal(got, tc.want) {
			t.Errorf("PartitionsOf(%s) = %v, want %v", tc.id, got, tc.want)
		}
	}
	if got, want := r.PartitionCounts(), map[NodeID]int{"a": 3, "b": 2, "c": 2, "d": 1}; !equalCounts(got, want) {
		t.Errorf("PartitionCounts = %v, want %v", got, want)
	}
}

func equalCounts(a, b map[NodeID]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// referenceWalk is the definition of a walk, written the slow, obvious way.
func referenceWalk(owners []NodeID, members, p int) []NodeID {
	var walk []NodeID
	for i := 0; len(walk) < members; i++ {
		if o := owners[(p+i)%len(owners)]; !slices.Contains(walk, o) {
			walk = append(walk, o)
		}
	}
	return walk
}

// TestWalksMatchReference checks every partition's preference list,
// fallbacks and walk order against referenceWalk, on claimed, lopsided and
// random owner tables, including one too large for the precomputed walk
// table.
func TestWalksMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randomOwners := func(q, m int) []NodeID {
		names := nodeNames(m)
		out := make([]NodeID, q)
		for p := range out {
			out[p] = names[rng.IntN(m)]
		}
		return out
	}
	lopsided := make([]NodeID, 512)
	for p := range lopsided {
		lopsided[p] = "big"
	}
	lopsided[100], lopsided[400] = "small1", "small2"

	for _, tc := range []struct {
		name   string
		n      int
		owners []NodeID
		stride int  // check every stride-th partition, to bound time
		onCall bool // too large for the walk table: fallbacks computed per call
	}{
		{"claim Q=64 M=5", 3, Claim(64, nodeNames(5), 3), 1, false},
		{"claim Q=256 M=7 N=4", 4, Claim(256, nodeNames(7), 4), 1, false},
		{"claim Q=8 M=3 N=5", 5, Claim(8, nodeNames(3), 5), 1, false},
		{"claim Q=16 M=1", 3, Claim(16, nodeNames(1), 3), 1, false},
		{"lopsided", 2, lopsided, 1, false},
		{"random Q=1024 M=10", 3, randomOwners(1024, 10), 1, false},
		{"random Q=256 M=40 N=1", 1, randomOwners(256, 40), 1, false},
		{"beyond walk table Q=65536 M=20", 3, Claim(65536, nodeNames(20), 3), 13, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := FromOwners(Config{Partitions: len(tc.owners), N: tc.n}, 1, tc.owners)
			if err != nil {
				t.Fatal(err)
			}
			m := len(r.Members())
			np := min(tc.n, m)
			if onCall := r.width < m; onCall != tc.onCall {
				t.Fatalf("fallbacks computed per call = %v, want %v", onCall, tc.onCall)
			}
			for p := 0; p < len(tc.owners); p += tc.stride {
				want := referenceWalk(tc.owners, m, p)
				pref := r.PreferenceList(p)
				if !slices.Equal(pref, want[:np]) {
					t.Fatalf("p=%d: PreferenceList = %v, want %v", p, pref, want[:np])
				}
				if pref[0] != r.Owner(p) {
					t.Fatalf("p=%d: preference list starts with %s, owner is %s", p, pref[0], r.Owner(p))
				}
				if got := r.Fallbacks(p); !slices.Equal(got, want[np:]) {
					t.Fatalf("p=%d: Fallbacks = %v, want %v", p, got, want[np:])
				}
				if got := r.WalkOrder(p); !slices.Equal(got, want) {
					t.Fatalf("p=%d: WalkOrder = %v, want %v", p, got, want)
				}
			}
		})
	}
}

func TestPreferenceListAppendDoesNotCorruptRing(t *testing.T) {
	r, err := New(Config{Partitions: 8, N: 2}, ids("a b c d"))
	if err != nil {
		t.Fatal(err)
	}
	before0, before1 := slices.Clone(r.WalkOrder(0)), slices.Clone(r.WalkOrder(1))
	_ = append(r.PreferenceList(0), "intruder")
	_ = append(r.Fallbacks(0), "intruder")
	_ = append(r.WalkOrder(0), "intruder")
	if got := r.WalkOrder(0); !slices.Equal(got, before0) {
		t.Errorf("WalkOrder(0) = %v after appending to its lists, want %v", got, before0)
	}
	if got := r.WalkOrder(1); !slices.Equal(got, before1) {
		t.Errorf("WalkOrder(1) = %v after appending to partition 0's lists, want %v", got, before1)
	}
}

func TestNewUsesClaim(t *testing.T) {
	nodes := ids("n3 n1 n2 n5 n4")
	r, err := New(Config{Partitions: 64, N: 3}, nodes)
	if err != nil {
		t.Fatal(err)
	}
	if r.Version() != 1 || r.Partitions() != 64 || r.N() != 3 {
		t.Errorf("Version, Partitions, N = %d, %d, %d; want 1, 64, 3", r.Version(), r.Partitions(), r.N())
	}
	if got, want := r.Owners(), Claim(64, nodes, 3); !slices.Equal(got, want) {
		t.Errorf("Owners = %v, want Claim's %v", got, want)
	}
	if got, want := r.Members(), ids("n1 n2 n3 n4 n5"); !slices.Equal(got, want) {
		t.Errorf("Members = %v, want %v", got, want)
	}
	for _, id := range nodes {
		if !r.Contains(id) {
			t.Errorf("Contains(%s) = false", id)
		}
	}
	if r.Contains("n6") {
		t.Error("Contains(n6) = true for a node that is not in the ring")
	}
	counts := r.PartitionCounts()
	for _, id := range nodes {
		if c := counts[id]; c < 12 || c > 13 {
			t.Errorf("%s owns %d partitions, want 12 or 13 (64 over 5)", id, c)
		}
	}
	// Every node replicates the partitions it owns and the N-1 before them.
	total := 0
	for _, id := range nodes {
		ps := r.PartitionsOf(id)
		if !slices.IsSorted(ps) {
			t.Errorf("PartitionsOf(%s) = %v, not ascending", id, ps)
		}
		for _, p := range ps {
			if !slices.Contains(r.PreferenceList(p), id) {
				t.Errorf("PartitionsOf(%s) includes %d, whose preference list is %v", id, p, r.PreferenceList(p))
			}
		}
		total += len(ps)
	}
	if total != 64*3 {
		t.Errorf("replicas over all nodes = %d, want Q·N = %d", total, 64*3)
	}
}

func TestCopiesAreCopies(t *testing.T) {
	r, err := New(Config{Partitions: 8, N: 2}, ids("a b"))
	if err != nil {
		t.Fatal(err)
	}
	r.Owners()[0] = "x"
	r.Members()[0] = "x"
	if r.Owner(0) != "a" || r.Members()[0] != "a" {
		t.Errorf("mutating Owners()/Members() changed the ring: owner 0 = %s, members = %v", r.Owner(0), r.Members())
	}
}

func TestMoreNodesThanPartitions(t *testing.T) {
	r, err := New(Config{Partitions: 4, N: 3}, ids("f e d c b a"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Members(), ids("a b c d"); !slices.Equal(got, want) {
		t.Errorf("Members = %v, want the first 4 sorted nodes %v", got, want)
	}
	if r.Contains("e") || len(r.PartitionsOf("e")) != 0 {
		t.Error("node e owns nothing but is reported in the ring")
	}
	if got, want := r.PreferenceList(3), ids("d a b"); !slices.Equal(got, want) {
		t.Errorf("PreferenceList(3) = %v, want %v", got, want)
	}
}

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		nodes []NodeID
		want  error
	}{
		{"Q=0", Config{Partitions: 0, N: 3}, ids("a"), ErrBadPartitions},
		{"Q=3", Config{Partitions: 3, N: 3}, ids("a"), ErrBadPartitions},
		{"Q=-64", Config{Partitions: -64, N: 3}, ids("a"), ErrBadPartitions},
		{"Q=100000", Config{Partitions: 100000, N: 3}, ids("a"), ErrBadPartitions},
		{"Q=131072", Config{Partitions: 131072, N: 3}, ids("a"), ErrBadPartitions},
		{"nil nodes", Config{Partitions: 8, N: 3}, nil, ErrNoNodes},
		{"empty nodes", Config{Partitions: 8, N: 3}, []NodeID{}, ErrNoNodes},
		{"duplicate", Config{Partitions: 8, N: 3}, ids("a b a"), ErrDuplicateNode},
		{"empty id", Config{Partitions: 8, N: 3}, []NodeID{"a", ""}, ErrEmptyNodeID},
		{"N=0", Config{Partitions: 8, N: 0}, ids("a"), ErrBadN},
		{"N=-1", Config{Partitions: 8, N: -1}, ids("a"), ErrBadN},
	} {
		r, err := New(tc.cfg, tc.nodes)
		if !errors.Is(err, tc.want) || r != nil {
			t.Errorf("%s: New = %v, %v; want nil, %v", tc.name, r, err, tc.want)
		}
	}
	for _, q := range []int{1, 2, 1024, 65536} {
		if _, err := New(Config{Partitions: q, N: 3}, ids("a b c")); err != nil {
			t.Errorf("New with Q=%d: %v", q, err)
		}
	}
}

func TestFromOwners(t *testing.T) {
	cfg := Config{Partitions: 64, N: 3}
	orig, err := New(cfg, nodeNames(6))
	if err != nil {
		t.Fatal(err)
	}
	r, err := FromOwners(cfg, 7, orig.Owners())
	if err != nil {
		t.Fatal(err)
	}
	if r.Version() != 7 || !slices.Equal(r.Owners(), orig.Owners()) {
		t.Errorf("FromOwners round trip: version %d owners %v, want 7 and %v", r.Version(), r.Owners(), orig.Owners())
	}
	for p := range 64 {
		if !slices.Equal(r.WalkOrder(p), orig.WalkOrder(p)) {
			t.Fatalf("p=%d: WalkOrder %v after round trip, want %v", p, r.WalkOrder(p), orig.WalkOrder(p))
		}
	}

	owners := orig.Owners()
	input := slices.Clone(owners)
	r, _ = FromOwners(cfg, 2, input)
	input[0] = "changed"
	if r.Owner(0) != owners[0] {
		t.Error("FromOwners kept the caller's slice: changing it changed the ring")
	}

	for _, tc := range []struct {
		name   string
		cfg    Config
		owners []NodeID
		want   error
	}{
		{"short", cfg, owners[:63], ErrBadOwners},
		{"long", cfg, append(slices.Clone(owners), "a"), ErrBadOwners},
		{"nil", cfg, nil, ErrBadOwners},
		{"empty id", Config{Partitions: 2, N: 1}, []NodeID{"a", ""}, ErrEmptyNodeID},
		{"Q=3", Config{Partitions: 3, N: 1}, ids("a b c"), ErrBadPartitions},
		{"N=0", Config{Partitions: 2, N: 0}, ids("a b"), ErrBadN},
	} {
		r, err := FromOwners(tc.cfg, 1, tc.owners)
		if !errors.Is(err, tc.want) || r != nil {
			t.Errorf("%s: FromOwners = %v, %v; want nil, %v", tc.name, r, err, tc.want)
		}
	}
}

// TestKeyDistribution checks that DefaultHash spreads ordinary keys evenly
// over partitions, which is what makes equal partitions mean equal load.
func TestKeyDistribution(t *testing.T) {
	const q, keys = 64, 100_000
	r, err := New(Config{Partitions: q, N: 3}, ids("a b c"))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, kind := range []string{"sequential", "random"} {
		counts := make([]int, q)
		for i := range keys {
			key := fmt.Appendf(nil, "user:%d", i)
			if kind == "random" {
				key = binary.LittleEndian.AppendUint64(nil, rng.Uint64())
			}
			counts[r.PartitionOf(key)]++
		}
		mean := float64(keys) / q
		for p, c := range counts {
			if math.Abs(float64(c)-mean) > 0.2*mean {
				t.Errorf("%s keys: partition %d has %d keys, mean is %.0f (±20%% allowed)", kind, p, c, mean)
			}
		}
	}
}

// TestConcurrentReads lets the race detector check that reading a ring,
// including the walks computed on demand for large rings, writes nothing
// shared.
func TestConcurrentReads(t *testing.T) {
	small, err := New(Config{Partitions: 64, N: 3}, nodeNames(5))
	if err != nil {
		t.Fatal(err)
	}
	large, err := New(Config{Partitions: 65536, N: 3}, nodeNames(20))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for _, r := range []*Ring{small, large} {
				for i := range 200 {
					p := (g*7919 + i*104729) % r.Partitions()
					if w := r.WalkOrder(p); len(w) != len(r.Members()) || w[0] != r.Owner(p) {
						t.Errorf("WalkOrder(%d) = %v", p, w)
					}
					_ = r.Fallbacks(p)
					_ = r.PartitionOf(keyAt(uint64(i)))
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkPartitionOf(b *testing.B) {
	r, err := New(Config{Partitions: 256, N: 3}, nodeNames(8))
	if err != nil {
		b.Fatal(err)
	}
	key := []byte("user:0123456789ab")
	for b.Loop() {
		_ = r.PartitionOf(key)
	}
}

func BenchmarkPreferenceList(b *testing.B) {
	r, err := New(Config{Partitions: 256, N: 3}, nodeNames(8))
	if err != nil {
		b.Fatal(err)
	}
	key := []byte("user:0123456789ab")
	for b.Loop() {
		_ = r.PreferenceList(r.PartitionOf(key))
	}
}

func BenchmarkNew(b *testing.B) {
	for _, tc := range []struct{ q, m int }{{256, 8}, {1024, 64}, {65536, 64}} {
		nodes := nodeNames(tc.m)
		b.Run(fmt.Sprintf("Q=%d/M=%d", tc.q, tc.m), func(b *testing.B) {
			for b.Loop() {
				if _, err := New(Config{Partitions: tc.q, N: 3}, nodes); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
