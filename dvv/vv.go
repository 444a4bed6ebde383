package dvv

import (
	"cmp"
	"slices"
)

// MaxCounter is the largest counter a dot may carry. Decoders reject larger
// counters so that a forged or corrupted context can never make a
// coordinator's next counter wrap around to zero (which would reuse dots and
// silently drop acknowledged writes). No actor can realistically create 2^63
// writes to one key.
const MaxCounter uint64 = 1<<63 - 1

// Dot names one write event: the Counter-th event coordinated by Actor.
type Dot struct {
	Actor   string
	Counter uint64
}

// VV is a version vector: for each actor, the number of its events seen.
// It is the causal context clients receive with a read and send back with a
// write. Invariant: sorted by Actor (bytewise), counters > 0, no duplicate
// actors. Join and DecodeContext only produce VVs that hold it; the methods
// below rely on it.
type VV []Dot

// Get returns the counter of actor in v, 0 when v has not seen actor.
func (v VV) Get(actor string) uint64 {
	i, ok := slices.BinarySearchFunc(v, actor, func(d Dot, a string) int {
		return cmp.Compare(d.Actor, a)
	})
	if !ok {
		return 0
	}
	return v[i].Counter
}

// Descends reports whether v has seen every event o has seen (v >= o
// pointwise). Every VV descends the empty VV, and itself.
func (v VV) Descends(o VV) bool {
	i := 0
	for _, d := range o {
		for i < len(v) && v[i].Actor < d.Actor {
			i++
		}
		if i == len(v) || v[i].Actor != d.Actor || v[i].Counter < d.Counter {
			return false
		}
		i++
	}
	return true
}

// Merge returns the pointwise maximum of a and b: the history of someone
// who has seen everything either has seen.
func Merge(a, b VV) VV {
	out := make(VV, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i].Actor < b[j].Actor:
			out = append(out, a[i])
			i++
		case a[i].Actor > b[j].Actor:
			out = append(out, b[j])
			j++
		default:
			out = append(out, Dot{Actor: a[i].Actor, Counter: max(a[i].Counter, b[j].Counter)})
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// normalize returns v when it already holds the VV invariant (the common
// case, checked in one pass without allocating), and otherwise a sorted copy
// without zero counters in which duplicate actors keep their largest
// counter. Functions taking a VV from outside the package (Update, New,
// EncodeContext) use it so that a hand-built context cannot corrupt a Set.
func normalize(v VV) VV {
	if isCanonical(v) {
		return v
	}
	out := make(VV, 0, len(v))
	for _, d := range v {
		if d.Counter > 0 {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b Dot) int {
		return cmp.Or(cmp.Compare(a.Actor, b.Actor), cmp.Compare(b.Counter, a.Counter))
	})
	// After sorting by actor then descending counter, the first dot of each
	// actor is the one to keep.
	return slices.CompactFunc(out, func(a, b Dot) bool { return a.Actor == b.Actor })
}

func isCanonical(v VV) bool {
	for i, d := range v {
		if d.Counter == 0 || (i > 0 && v[i-1].Actor >= d.Actor) {
			return false
		}
	}
	return true
}
