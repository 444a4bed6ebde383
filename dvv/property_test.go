package dvv

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// bits is a set of small non-negative ints (value ids) for the model.
type bits []uint64

func (b bits) has(i int) bool { return i/64 < len(b) && b[i/64]&(1<<(i%64)) != 0 }

func (b bits) with(i int) bits {
	out := b.union(nil)
	for len(out) <= i/64 {
		out = append(out, 0)
	}
	out[i/64] |= 1 << (i % 64)
	return out
}

// union returns a new set; neither argument is modified.
func (b bits) union(o bits) bits {
	out := make(bits, max(len(b), len(o)))
	copy(out, b)
	for i, w := range o {
		out[i] |= w
	}
	return out
}

func (b bits) minus(o bits) []int {
	var out []int
	for i, w := range b {
		if i < len(o) {
			w &^= o[i]
		}
		for k := range 64 {
			if w&(1<<k) != 0 {
				out = append(out, i*64+k)
			}
		}
	}
	return out
}

// knowledge is what the model knows about a causal history: every value it
// has seen, and every value superseded by a write it has seen (the union of
// those writes' covered sets). Its live values are seen minus dead.
type knowledge struct{ seen, dead bits }

func (k knowledge) union(o knowledge) knowledge {
	return knowledge{seen: k.seen.union(o.seen), dead: k.dead.union(o.dead)}
}

type replica struct {
	actor string
	set   Set[int]
	know  knowledge
}

type client struct {
	ctx  VV
	know knowledge
}

// world models replicas and clients doing random writes and syncs, keeping
// the ground truth independently of dots: each write remembers exactly the
// values its client had seen (covered[w]).
type world struct {
	t        *testing.T
	rng      *rand.Rand
	replicas []replica
	clients  []client
	covered  []bits
	pool     []Set[int] // snapshots for the algebraic properties
}

func newWorld(t *testing.T, seed uint64, nReplicas, nClients int) *world {
	w := &world{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	for i := range nReplicas {
		w.replicas = append(w.replicas, replica{actor: fmt.Sprintf("n%d#%d", i, seed%7)})
	}
	w.clients = make([]client, nClients)
	return w
}

// write has client c write a new value through coordinator r, with the
// context from its previous reply, a blind write, or a fresh read of one or
// two replicas. It returns the value id.
func (w *world) write(c, r int) int {
	cl := &w.clients[c]
	switch w.rng.IntN(6) {
	case 0:
		cl.ctx, cl.know = nil, knowledge{}
	case 1:
		src := &w.replicas[w.rng.IntN(len(w.replicas))]
		cl.ctx, cl.know = src.set.Join(), src.know
	case 2:
		// A quorum read merges two replicas' answers.
		a, b := &w.replicas[w.rng.IntN(len(w.replicas))], &w.replicas[w.rng.IntN(len(w.replicas))]
		merged := Sync(a.set, b.set)
		w.pool = append(w.pool, merged)
		cl.ctx, cl.know = merged.Join(), a.know.union(b.know)
	}
	id := len(w.covered)
	w.covered = append(w.covered, cl.know.seen)
	rep := &w.replicas[r]
	before := rep.set
	rep.set = Update(rep.set, cl.ctx, id, rep.actor)
	rep.know = rep.know.union(cl.know).union(knowledge{seen: bits{}.with(id), dead: cl.know.seen})
	if !before.Less(rep.set) {
		w.t.Fatalf("update did not advance the coordinator's history: %s -> %s", show(before), show(rep.set))
	}
	if !rep.set.Join().Descends(cl.ctx) {
		w.t.Fatalf("update result %v does not descend the client's context %v", rep.set.Join(), cl.ctx)
	}
	cl.ctx, cl.know = rep.set.Join(), rep.know
	w.check(rep)
	return id
}

// sync moves one replica's state into another's (one direction, as a
// read repair or hinted handoff would), in a random argument order.
func (w *world) sync(from, to int) {
	src, dst := &w.replicas[from], &w.replicas[to]
	if w.rng.IntN(2) == 0 {
		dst.set = Sync(dst.set, src.set)
	} else {
		dst.set = Sync(src.set, dst.set)
	}
	dst.know = dst.know.union(src.know)
	w.check(dst)
}

// check asserts that a replica holds exactly the values it has seen that
// no write it has seen had covered.
func (w *world) check(r *replica) {
	w.t.Helper()
	got := r.set.Values()
	slices.Sort(got)
	want := r.know.seen.minus(r.know.dead)
	if !slices.Equal(got, want) {
		w.t.Fatalf("replica %s holds %v, ground truth %v (set %s)", r.actor, got, want, show(r.set))
	}
	for _, e := range r.set.Entries {
		if uint64(len(e.Values)) > e.Counter || e.Counter == 0 {
			w.t.Fatalf("replica %s: malformed entry %s:%d%v", r.actor, e.Actor, e.Counter, e.Values)
		}
	}
}

// run does ops random writes and syncs, snapshotting replica states.
func (w *world) run(ops int) {
	for range ops {
		if w.rng.IntN(3) == 0 {
			w.sync(w.rng.IntN(len(w.replicas)), w.rng.IntN(len(w.replicas)))
		} else {
			w.write(w.rng.IntN(len(w.clients)), w.rng.IntN(len(w.replicas)))
		}
		if w.rng.IntN(4) == 0 {
			w.pool = append(w.pool, w.replicas[w.rng.IntN(len(w.replicas))].set)
		}
	}
}

// syncAll folds every replica into one set and gives it to all of them.
func (w *world) syncAll() Set[int] {
	var all Set[int]
	for _, r := range w.replicas {
		all = Sync(all, r.set)
	}
	for i := range w.replicas {
		w.replicas[i].set = all
	}
	return all
}

func TestSurvivorsMatchGroundTruth(t *testing.T) {
	for seed := range uint64(40) {
		w := newWorld(t, seed, 3+int(seed%3), 1+int(seed%5))
		w.run(200)
		all := w.syncAll()
		got := all.Values()
		slices.Sort(got)
		// Ground truth straight from the writes: a value survives exactly
		// when no write's context covered it.
		var want []int
		for v := range w.covered {
			alive := true
			for _, cov := range w.covered {
				if cov.has(v) {
					alive = false
					break
				}
			}
			if alive {
				want = append(want, v)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("seed %d: after syncing all replicas the siblings are %v, want %v", seed, got, want)
		}
	}
}

// sameValues compares two sets' values as multisets.
func sameValues(a, b Set[int]) bool {
	x, y := a.Values(), b.Values()
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

func TestSyncAlgebra(t *testing.T) {
	for seed := range uint64(10) {
		w := newWorld(t, 1000+seed, 3, 4)
		w.run(150)
		pool := append(w.pool, Set[int]{})
		rng := rand.New(rand.NewPCG(seed, 7))
		eq := func(what string, x, y Set[int]) {
			t.Helper()
			if !x.Equal(y) || !sameValues(x, y) {
				t.Fatalf("seed %d: %s: %s != %s", seed, what, show(x), show(y))
			}
		}
		for range 500 {
			a, b, c := pool[rng.IntN(len(pool))], pool[rng.IntN(len(pool))], pool[rng.IntN(len(pool))]
			ab := Sync(a, b)
			eq("commutative", ab, Sync(b, a))
			eq("associative", Sync(ab, c), Sync(a, Sync(b, c)))
			eq("idempotent", Sync(a, a), a)
			eq("absorbing", Sync(ab, b), ab)
			if got, want := ab.Join(), Merge(a.Join(), b.Join()); !slices.Equal(got, want) {
				t.Fatalf("seed %d: join(sync) = %v, want merge of joins %v", seed, got, want)
			}
			if a.Less(b) {
				eq("sync with a dominating set", ab, b)
				if b.Less(a) {
					t.Fatalf("seed %d: less is not antisymmetric: %s, %s", seed, show(a), show(b))
				}
			}
			if a.Less(ab) != !ab.Equal(a) {
				t.Fatalf("seed %d: %s < sync = %v but equal = %v", seed, show(a), a.Less(ab), ab.Equal(a))
			}
		}
	}
}

func TestSequentialWriterSeesOneValue(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 2000))
		const nodes = 3
		replicas := make([]Set[int], nodes)
		var ctx VV
		last := -1
		for id := range 100 {
			switch rng.IntN(4) {
			case 0:
				a, b := rng.IntN(nodes), rng.IntN(nodes)
				replicas[b] = Sync(replicas[b], replicas[a])
			case 1:
				// Read all replicas (R = N) and write with that context.
				var read Set[int]
				for _, s := range replicas {
					read = Sync(read, s)
				}
				if got := read.Values(); last >= 0 && !slices.Equal(got, []int{last}) {
					t.Fatalf("seed %d: read %v, want [%d]", seed, got, last)
				}
				ctx = read.Join()
			}
			r := rng.IntN(nodes)
			replicas[r] = Update(replicas[r], ctx, id, fmt.Sprintf("node%d", r))
			if got := replicas[r].Values(); !slices.Equal(got, []int{id}) {
				t.Fatalf("seed %d: reply to write %d holds %v, want only [%d]", seed, id, got, id)
			}
			ctx, last = replicas[r].Join(), id
			for i, s := range replicas {
				if s.Size() > 1 {
					t.Fatalf("seed %d: node%d holds siblings %v of a single sequential writer", seed, i, s.Values())
				}
			}
		}
		var all Set[int]
		for _, s := range replicas {
			all = Sync(s, all)
		}
		if got := all.Values(); !slices.Equal(got, []int{last}) {
			t.Fatalf("seed %d: converged to %v, want [%d]", seed, got, last)
		}
	}
}

func TestConcurrentBlindWritesAreSiblings(t *testing.T) {
	for n := 1; n <= 5; n++ {
		var replicas []Set[int]
		for i := range n {
			replicas = append(replicas, Update(Set[int]{}, nil, i, fmt.Sprintf("node%d", i)))
		}
		var all Set[int]
		for _, r := range replicas {
			all = Sync(all, r)
		}
		if got, want := all.Values(), []int{0, 1, 2, 3, 4}[:n]; !slices.Equal(got, want) {
			t.Errorf("%d blind writes at different coordinators: siblings %v, want %v", n, got, want)
		}
		// The same blind writes at a single coordinator are just as concurrent.
		var one Set[int]
		for i := range n {
			one = Update(one, nil, i, "node0")
		}
		if got := one.Size(); got != n {
			t.Errorf("%d blind writes at one coordinator: %d siblings (%v)", n, got, one.Values())
		}
	}
}

// TestSiblingsBoundedByWriters is Riak's "sibling explosion" scenario: k
// clients keep writing, each with the context of its own previous reply, and
// never read. Per-node vector clocks grow one sibling per write; a DVVSet
// keeps at most one per writer, whatever the interleaving and coordinators.
func TestSiblingsBoundedByWriters(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 3000))
		writers := 2 + int(seed%4)
		nodes := 1 + int(seed%3)
		replicas := make([]Set[int], nodes)
		ctx := make([]VV, writers)
		for id := range 300 {
			if nodes > 1 && rng.IntN(3) == 0 {
				a, b := rng.IntN(nodes), rng.IntN(nodes)
				replicas[b] = Sync(replicas[b], replicas[a])
			}
			c, r := rng.IntN(writers), rng.IntN(nodes)
			replicas[r] = Update(replicas[r], ctx[c], id, fmt.Sprintf("node%d", r))
			ctx[c] = replicas[r].Join()
			for i, s := range replicas {
				if s.Size() > writers {
					t.Fatalf("seed %d write %d: node%d holds %d siblings with %d writers: %v", seed, id, i, s.Size(), writers, s.Values())
				}
			}
		}
	}
}

// TestRoundRobinWritersKeepOneSiblingEach interleaves k writers strictly at
// one coordinator, each sending the context of its own previous reply: each
// write replaces only its writer's previous value, so after the first round
// there are always exactly k siblings, one per writer, however many rounds.
func TestRoundRobinWritersKeepOneSiblingEach(t *testing.T) {
	for k := 1; k <= 5; k++ {
		var s Set[int]
		ctx := make([]VV, k)
		for round := range 50 {
			for c := range k {
				s = Update(s, ctx[c], round*k+c, "node0")
				ctx[c] = s.Join()
			}
			got := s.Values()
			slices.Sort(got)
			want := make([]int, k)
			for c := range k {
				want[c] = round*k + c
			}
			if !slices.Equal(got, want) {
				t.Fatalf("k=%d round %d: siblings %v, want each writer's latest %v", k, round, got, want)
			}
		}
	}
}

// TestLWWConverges runs the random workload with LWW applied after every
// update and sync, timestamps taken from one clock that never runs
// backwards (so a write that saw another is also later by timestamp).
// Every replica then holds at most one value and all converge, in any sync
// order, to the last write.
func TestLWWConverges(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 4000))
		ts := make([]int, 0, 200)
		newer := func(a, b int) bool { return ts[a] > ts[b] }
		const nodes = 4
		replicas := make([]Set[int], nodes)
		var ctx VV
		now := 0
		for id := range 200 {
			if rng.IntN(2) == 0 {
				a, b := rng.IntN(nodes), rng.IntN(nodes)
				replicas[b] = LWW(Sync(replicas[b], replicas[a]), newer)
			}
			// Equal timestamps happen (coarse clocks); the dot breaks ties.
			now += rng.IntN(2)
			ts = append(ts, now)
			r := rng.IntN(nodes)
			if rng.IntN(2) == 0 {
				ctx = nil // blind
			}
			replicas[r] = LWW(Update(replicas[r], ctx, id, fmt.Sprintf("node%d", r)), newer)
			ctx = replicas[r].Join()
			for i, s := range replicas {
				if s.Size() > 1 {
					t.Fatalf("seed %d: node%d holds %v under LWW", seed, i, s.Values())
				}
			}
		}
		perm := rng.Perm(nodes)
		var fwd, shuffled Set[int]
		for i := range nodes {
			fwd = LWW(Sync(fwd, replicas[i]), newer)
			shuffled = LWW(Sync(replicas[perm[i]], shuffled), newer)
		}
		if !same(fwd, shuffled) {
			t.Fatalf("seed %d: LWW diverged by sync order: %s vs %s", seed, show(fwd), show(shuffled))
		}
		// The winner is the newest write by (timestamp, dot).
		vals := fwd.Values()
		if len(vals) != 1 || ts[vals[0]] != now {
			t.Fatalf("seed %d: converged to %v, want one value with the newest timestamp %d", seed, vals, now)
		}
	}
}
