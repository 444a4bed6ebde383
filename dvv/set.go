package dvv

import "slices"

// Entry is one actor's part of a Set: the actor has coordinated Counter
// events, Values holds the values of its dots Counter, Counter-1, ...,
// Counter-len(Values)+1 (newest first), and every older dot of this actor
// has been superseded. Invariant: len(Values) <= Counter.
type Entry[V any] struct {
	Actor   string
	Counter uint64
	Values  []V
}

// Set is a dotted version vector set: a causal history plus the values
// (siblings) that nothing in that history has superseded. Entries are sorted
// by Actor. The zero value is the empty set: no history, no values.
type Set[V any] struct {
	Entries []Entry[V]
}

// Pending is a client write before a coordinator has stamped it with a dot:
// the context the client read plus the value it wants to store
// (dvvset:new(VV, V); this port has no anonymous values, so the pending value
// lives here until Update gives it a dot).
type Pending[V any] struct {
	Context VV
	Value   V
}

// New makes the clock a client write carries to its coordinator: the causal
// history of ctx, with no values of its own, plus the pending value.
func New[V any](ctx VV, v V) Pending[V] {
	return Pending[V]{Context: normalize(ctx), Value: v}
}

// Update stamps p at a coordinator: Update(local, p.Context, p.Value, actor).
func (p Pending[V]) Update(local Set[V], actor string) Set[V] {
	return Update(local, p.Context, p.Value, actor)
}

// Update stamps a client write at a coordinator (dvvset:update(New(ctx, v),
// local, actor)). It syncs the client's context with the coordinator's local
// set, which discards exactly the local values the client had seen, then adds
// v under a new dot for actor whose counter exceeds both the context's and
// the local counter of actor. Local values the context does not cover were
// written concurrently with this write and survive as siblings.
//
// Update panics if actor's counter, in local or ctx, is already MaxCounter:
// the new dot would exceed what decoders accept, and the stored object could
// never be read back. Callers check Exhausted first and stamp with another
// actor then.
func Update[V any](local Set[V], ctx VV, v V, actor string) Set[V] {
	return UpdateAt(local, ctx, v, actor, 0)
}

// UpdateAt is Update with a floor for the counter of an actor that neither
// the local set nor the context knows: its first dot is max(1, floor)
// instead of 1. Dots are only unique while the coordinator remembers the
// key; once a tombstone is reaped (the key forgotten everywhere) the next
// write would start again at 1 and reuse a dot that a context read before
// the delete still covers, so that context would silently supersede the
// new write. A coordinator that passes a floor that only grows (its clock
// in microseconds) never reuses such a dot. Counters of a known actor
// advance by one as usual: the values of an entry have consecutive dots.
func UpdateAt[V any](local Set[V], ctx VV, v V, actor string, floor uint64) Set[V] {
	ctx = normalize(ctx)
	le := local.Entries
	// One extra slot for the new actor entry when neither side has it.
	out := make([]Entry[V], 0, len(le)+len(ctx)+1)
	i, j := 0, 0
	for i < len(ctx) || j < len(le) {
		switch {
		case j == len(le) || (i < len(ctx) && ctx[i].Actor < le[j].Actor):
			out = append(out, Entry[V]{Actor: ctx[i].Actor, Counter: ctx[i].Counter})
			i++
		case i == len(ctx) || le[j].Actor < ctx[i].Actor:
			out = append(out, le[j])
			j++
		default:
			out = append(out, mergeEntry(Entry[V]{Actor: ctx[i].Actor, Counter: ctx[i].Counter}, le[j]))
			i++
			j++
		}
	}
	return Set[V]{Entries: event(out, actor, v, floor)}
}

// event records a new event of actor holding v in entries, which the caller
// owns (its Values slices may still be shared, so they are never appended
// to).
func event[V any](entries []Entry[V], actor string, v V, floor uint64) []Entry[V] {
	k, found := slices.BinarySearchFunc(entries, actor, func(e Entry[V], a string) int {
		switch {
		case e.Actor < a:
			return -1
		case e.Actor > a:
			return 1
		}
		return 0
	})
	if !found {
		return slices.Insert(entries, k, Entry[V]{Actor: actor, Counter: min(max(1, floor), MaxCounter), Values: []V{v}})
	}
	e := &entries[k]
	if e.Counter >= MaxCounter {
		panic("dvv: counter overflow for actor " + actor)
	}
	vals := make([]V, 0, len(e.Values)+1)
	vals = append(vals, v)
	e.Values = append(vals, e.Values...)
	e.Counter++
	return entries
}

// Exhausted reports whether actor has no counter left for a write stamped
// on top of local and ctx: one of them already holds MaxCounter for it. A
// client can send any counter up to MaxCounter in a context, so this is
// not only a theoretical limit: a coordinator that finds its actor
// exhausted for a key stamps the write with a fresh actor instead (as for
// a hinted write), which keeps the key writable.
func Exhausted[V any](local Set[V], ctx VV, actor string) bool {
	if normalize(ctx).Get(actor) >= MaxCounter {
		return true
	}
	for _, e := range local.Entries {
		if e.Actor == actor {
			return e.Counter >= MaxCounter
		}
	}
	return false
}

// Sync merges two replicas' sets (dvvset:sync): the result has seen both
// histories and keeps every value that neither history has superseded.
// Sync is commutative, associative and idempotent up to Equal.
func Sync[V any](a, b Set[V]) Set[V] {
	ae, be := a.Entries, b.Entries
	out := make([]Entry[V], 0, len(ae)+len(be))
	i, j := 0, 0
	for i < len(ae) && j < len(be) {
		switch {
		case ae[i].Actor < be[j].Actor:
			out = append(out, ae[i])
			i++
		case ae[i].Actor > be[j].Actor:
			out = append(out, be[j])
			j++
		default:
			out = append(out, mergeEntry(ae[i], be[j]))
			i++
			j++
		}
	}
	out = append(out, ae[i:]...)
	out = append(out, be[j:]...)
	return Set[V]{Entries: out}
}

// mergeEntry merges two entries of the same actor (dvvset's merge/5). A dot
// of this actor is superseded once either side has dropped it, i.e. once it
// is at or below either side's floor (Counter - len(Values)); so the result
// takes the larger counter and keeps that side's values above both floors.
func mergeEntry[V any](x, y Entry[V]) Entry[V] {
	if x.Counter < y.Counter {
		x, y = y, x
	}
	floor := max(entryFloor(x), entryFloor(y))
	keep := x.Counter - floor // <= len(x.Values) because floor >= entryFloor(x)
	if keep == 0 {
		return Entry[V]{Actor: x.Actor, Counter: x.Counter}
	}
	// The capacity limit stops a caller's append to one set's values from
	// writing into another set that shares the backing array.
	return Entry[V]{Actor: x.Actor, Counter: x.Counter, Values: x.Values[:keep:keep]}
}

// entryFloor is the newest dot of e known to be superseded. A malformed
// entry holding more values than its counter is treated as holding only the
// newest Counter of them, so arithmetic never wraps.
func entryFloor[V any](e Entry[V]) uint64 {
	n := uint64(len(e.Values))
	if n > e.Counter {
		return 0
	}
	return e.Counter - n
}

// Join returns the set's causal history as a version vector (dvvset:join):
// the context to hand to clients with the values. Entries with a zero
// counter (possible only in hand-built sets) are left out so that the result
// holds the VV invariant.
func (s Set[V]) Join() VV {
	out := make(VV, 0, len(s.Entries))
	for _, e := range s.Entries {
		if e.Counter > 0 {
			out = append(out, Dot{Actor: e.Actor, Counter: e.Counter})
		}
	}
	return out
}

// Values returns all sibling values, by actor and newest first within an
// actor, in a new slice.
func (s Set[V]) Values() []V {
	out := make([]V, 0, s.Size())
	for _, e := range s.Entries {
		out = append(out, e.Values...)
	}
	return out
}

// Size returns the number of sibling values.
func (s Set[V]) Size() int {
	n := 0
	for _, e := range s.Entries {
		n += len(e.Values)
	}
	return n
}

// Less reports whether s is strictly dominated by o (dvvset:less): o has
// seen everything s has and more, so every value of s is outdated. Only
// counters are compared, as in dvvset.
func (s Set[V]) Less(o Set[V]) bool {
	return greater(o.Entries, s.Entries)
}

// greater reports whether history a strictly contains history b.
func greater[V any](a, b []Entry[V]) bool {
	strict := false
	i, j := 0, 0
	for {
		if j == len(b) {
			return strict || i < len(a)
		}
		if i == len(a) {
			return false
		}
		switch {
		case a[i].Actor == b[j].Actor:
			if a[i].Counter < b[j].Counter {
				return false
			}
			if a[i].Counter > b[j].Counter {
				strict = true
			}
			i++
			j++
		case a[i].Actor < b[j].Actor:
			strict = true
			i++
		default:
			return false
		}
	}
}

// Equal reports whether s and o have the same causal history and hold values
// at the same dots (dvvset:equal). The values themselves are not compared:
// a dot names one write, so equal dots mean equal values.
func (s Set[V]) Equal(o Set[V]) bool {
	if len(s.Entries) != len(o.Entries) {
		return false
	}
	for i, e := range s.Entries {
		f := o.Entries[i]
		if e.Actor != f.Actor || e.Counter != f.Counter || len(e.Values) != len(f.Values) {
			return false
		}
	}
	return true
}

// Map returns a set with the same dots whose values are f applied to s's
// values. s is left unchanged.
func (s Set[V]) Map(f func(V) V) Set[V] {
	out := make([]Entry[V], len(s.Entries))
	for i, e := range s.Entries {
		out[i] = Entry[V]{Actor: e.Actor, Counter: e.Counter}
		if len(e.Values) > 0 {
			vals := make([]V, len(e.Values))
			for k, v := range e.Values {
				vals[k] = f(v)
			}
			out[i].Values = vals
		}
	}
	return Set[V]{Entries: out}
}

// LWW returns a set with the same causal history holding only the newest
// value (dvvset:lww), for clusters that explicitly chose last-write-wins.
// newer(a, b) reports whether a is newer than b and must be a strict weak
// order; values neither newer than the other are ordered by dot (larger
// counter, then larger actor), so every replica picks the same winner.
//
// As in dvvset, only each actor's newest value competes: an older value of
// the same actor was written by that coordinator before its newest one, and
// keeping the winner at its own dot (which a Set can only do for the newest)
// keeps every dot naming exactly one value, so LWW results still sync
// consistently. A set without values is returned with the same history.
//
// LWW loses writes by design, and more than timestamps alone suggest when
// they disagree with causality: a value dropped here counts as superseded
// everywhere, so if its conqueror is later superseded by a causally newer
// write with an older timestamp (clock skew), replicas that resolved in
// different orders can sync to a set with no value at all. Replicas converge
// to the newest write whenever a write that saw another also has a later
// timestamp; to never drop a value, apply LWW only when presenting values
// rather than to what is stored.
func LWW[V any](s Set[V], newer func(a, b V) bool) Set[V] {
	best := -1
	for i, e := range s.Entries {
		if len(e.Values) == 0 {
			continue
		}
		if best < 0 {
			best = i
			continue
		}
		b := s.Entries[best]
		cand, champ := e.Values[0], b.Values[0]
		switch {
		case newer(cand, champ):
			best = i
		case newer(champ, cand):
		case e.Counter > b.Counter || (e.Counter == b.Counter && e.Actor > b.Actor):
			best = i
		}
	}
	out := make([]Entry[V], len(s.Entries))
	for i, e := range s.Entries {
		out[i] = Entry[V]{Actor: e.Actor, Counter: e.Counter}
		if i == best {
			out[i].Values = []V{e.Values[0]}
		}
	}
	return Set[V]{Entries: out}
}
