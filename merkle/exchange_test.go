package merkle

import (
	"errors"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// remote plays the other replica over a network: it answers requests with
// Level and counts the nodes it was asked about.
type remote struct {
	tree  *Tree
	asked []NodeRef
}

func (r *remote) answer(ref NodeRef) []uint64 {
	r.asked = append(r.asked, ref)
	return r.tree.Level(ref.Level, ref.Index)
}

// run drives an exchange to completion, delivering every answer.
func run(t *testing.T, local *Tree, r *remote) []int {
	t.Helper()
	e := NewExchange(local)
	for rounds := 0; !e.Done(); rounds++ {
		if rounds > local.Depth() {
			t.Fatalf("exchange still running after %d rounds", rounds)
		}
		for _, ref := range e.Want() {
			if err := e.Receive(ref, r.answer(ref)); err != nil {
				t.Fatalf("Receive(%+v): %v", ref, err)
			}
		}
	}
	return e.Buckets()
}

// nodeHash returns the hash of a node as its parent reports it.
func nodeHash(tr *Tree, ref NodeRef) uint64 {
	if ref.Level == 0 {
		return tr.Root()
	}
	k := tr.Width(ref.Level) / tr.Width(ref.Level-1)
	return tr.Level(ref.Level-1, ref.Index/k)[ref.Index%k]
}

func TestExchangeOneDifferenceAsksDepthNodes(t *testing.T) {
	for _, cfg := range []Config{{}, {Leaves: 4096}, {Leaves: 16}, {Leaves: 64, Fanout: 2}} {
		a, b := mustNew(t, cfg), mustNew(t, cfg)
		for i := range 3000 {
			a.Update(key(i), 0, uint64(i)+1)
			b.Update(key(i), 0, uint64(i)+1)
		}
		k := key(777)
		b.Update(k, 778, 1)
		r := &remote{tree: b}
		got := run(t, a, r)
		if want := []int{a.Bucket(k)}; !slices.Equal(got, want) {
			t.Errorf("%+v: Buckets() = %v, want %v", cfg, got, want)
		}
		if len(r.asked) > a.Depth() {
			t.Errorf("%+v: asked about %d nodes %v for one differing key, want at most Depth = %d", cfg, len(r.asked), r.asked, a.Depth())
		}
	}
}

func TestExchangeOfEqualTreesAsksOnlyTheRoot(t *testing.T) {
	a, b := mustNew(t, Config{}), mustNew(t, Config{})
	for i := range 100 {
		a.Update(key(i), 0, 1)
		b.Update(key(i), 0, 1)
	}
	r := &remote{tree: b}
	if got := run(t, a, r); len(got) != 0 {
		t.Errorf("Buckets() = %v, want none", got)
	}
	if want := []NodeRef{{0, 0}}; !slices.Equal(r.asked, want) {
		t.Errorf("asked %v, want %v", r.asked, want)
	}
}

func TestExchangeWithEmptyRemoteNeedsOneRequest(t *testing.T) {
	a, b := mustNew(t, Config{}), mustNew(t, Config{})
	want := map[int]bool{}
	for i := range 50 {
		a.Update(key(i), 0, 1)
		want[a.Bucket(key(i))] = true
	}
	r := &remote{tree: b}
	got := run(t, a, r)
	if !slices.Equal(got, slices.Sorted(maps.Keys(want))) {
		t.Errorf("Buckets() = %v, want %v", got, slices.Sorted(maps.Keys(want)))
	}
	if len(r.asked) != 1 {
		t.Errorf("asked about %v, want only the root: an empty remote subtree needs no descent", r.asked)
	}
	// The other way round the initiator must descend to learn which
	// buckets the remote fills.
	if got := run(t, b, &remote{tree: a}); !slices.Equal(got, slices.Sorted(maps.Keys(want))) {
		t.Errorf("empty initiator: Buckets() = %v, want %v", got, slices.Sorted(maps.Keys(want)))
	}
}

func TestExchangeRejectsBadAnswers(t *testing.T) {
	a := mustNew(t, Config{})
	a.Update([]byte("k"), 0, 1)

	e := NewExchange(a)
	if err := e.Receive(NodeRef{1, 0}, make([]uint64, 16)); !errors.Is(err, ErrNotWanted) {
		t.Errorf("answer for an unrequested node: %v, want ErrNotWanted", err)
	}
	other := mustNew(t, Config{Leaves: 2048})
	other.Update([]byte("k"), 0, 1)
	if err := e.Receive(NodeRef{0, 0}, other.Level(0, 0)); !errors.Is(err, ErrShape) {
		t.Errorf("answer from a tree of another shape: %v, want ErrShape", err)
	}
	if err := e.Receive(NodeRef{0, 0}, nil); !errors.Is(err, ErrShape) {
		t.Errorf("empty answer: %v, want ErrShape", err)
	}
	// Bad answers leave the request pending; a good one completes it, and
	// a duplicate of it is then unwanted.
	if got := e.Want(); !slices.Equal(got, []NodeRef{{0, 0}}) {
		t.Fatalf("Want() after bad answers = %v, want the root", got)
	}
	same := mustNew(t, Config{})
	same.Update([]byte("k"), 0, 1)
	if err := e.Receive(NodeRef{0, 0}, same.Level(0, 0)); err != nil {
		t.Fatalf("good answer: %v", err)
	}
	if !e.Done() || len(e.Buckets()) != 0 {
		t.Errorf("after matching root children: Done() = %v, Buckets() = %v; want true, none", e.Done(), e.Buckets())
	}
	if err := e.Receive(NodeRef{0, 0}, same.Level(0, 0)); !errors.Is(err, ErrNotWanted) {
		t.Errorf("duplicate answer: %v, want ErrNotWanted", err)
	}
}

// TestDiffMatchesBruteForce is the property test: two replicas built from
// a common key set with random differences (other version, missing on one
// side, extra on one side). Diff in both directions and an Exchange over a
// lossy, reordering, duplicating network must all return exactly the
// buckets holding a differing key, and the exchange must ask only about
// nodes whose hashes differ.
func TestDiffMatchesBruteForce(t *testing.T) {
	cfgs := []Config{{}, {Leaves: 64, Fanout: 4}, {Leaves: 16, Fanout: 16}, {Leaves: 4096}, {Leaves: 8, Fanout: 2}}
	for seed := range uint64(60) {
		r := rand.New(rand.NewPCG(seed, 0xd1ff))
		cfg := cfgs[seed%uint64(len(cfgs))]
		a, b := mustNew(t, cfg), mustNew(t, cfg)
		nKeys := r.IntN(3000)
		pDiff := []float64{0, 0.0005, 0.01, 0.2, 1}[r.IntN(5)]
		ma, mb := map[int]uint64{}, map[int]uint64{}
		want := map[int]bool{}
		for i := range nKeys {
			v := version(r)
			if r.Float64() >= pDiff {
				ma[i], mb[i] = v, v
				continue
			}
			switch r.IntN(3) {
			case 0:
				ma[i], mb[i] = v, version(r)
			case 1:
				ma[i] = v
			case 2:
				mb[i] = v
			}
			want[a.Bucket(key(i))] = true
		}
		order := r.Perm(nKeys)
		insertAll(a, ma, order, r)
		r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		insertAll(b, mb, order, r)
		if a.Keys() != len(ma) || b.Keys() != len(mb) {
			t.Fatalf("seed %d: Keys() = %d, %d, want %d, %d", seed, a.Keys(), b.Keys(), len(ma), len(mb))
		}

		wantList := slices.Sorted(maps.Keys(want))
		if got := Diff(a, b); !slices.Equal(got, wantList) {
			t.Fatalf("seed %d %+v: Diff(a, b) = %v, want %v", seed, cfg, got, wantList)
		}
		if got := Diff(b, a); !slices.Equal(got, wantList) {
			t.Fatalf("seed %d %+v: Diff(b, a) = %v, want %v", seed, cfg, got, wantList)
		}

		rem := &remote{tree: b}
		e := NewExchange(a)
		for rounds := 0; !e.Done(); rounds++ {
			if rounds > 100*a.Depth() {
				t.Fatalf("seed %d: exchange did not finish", seed)
			}
			for _, ref := range e.Want() {
				if r.IntN(4) == 0 {
					continue // lost: asked again next round
				}
				children := rem.answer(ref)
				if err := e.Receive(ref, children); err != nil {
					t.Fatalf("seed %d: Receive(%+v): %v", seed, ref, err)
				}
				if r.IntN(8) == 0 {
					if err := e.Receive(ref, children); !errors.Is(err, ErrNotWanted) {
						t.Fatalf("seed %d: duplicate answer: %v, want ErrNotWanted", seed, err)
					}
				}
			}
		}
		if got := e.Buckets(); !slices.Equal(got, wantList) {
			t.Fatalf("seed %d %+v: Exchange buckets = %v, want %v", seed, cfg, got, wantList)
		}
		for _, ref := range rem.asked {
			if nodeHash(a, ref) == nodeHash(b, ref) && !(ref.Level == 0 && len(wantList) == 0) {
				t.Fatalf("seed %d: exchange asked about %+v whose hashes are equal", seed, ref)
			}
		}
	}
}
