package object

import "github.com/dynago/dynago/dvv"

// Sibling is one version of a key's value: a value or, when Deleted, a
// tombstone (whose Value is always empty).
type Sibling struct {
	Value   []byte
	Deleted bool
	// Timestamp is unix milliseconds at the coordinator that stamped the
	// write; it times tombstone grace periods and orders LWW, never
	// causality.
	Timestamp int64
}

// Object is what a replica stores for one key. The zero value is the empty
// object: nothing stored, no history.
type Object struct {
	Clock dvv.Set[Sibling]
}

// Siblings returns every sibling, tombstones included, in the clock's
// deterministic order.
func (o Object) Siblings() []Sibling { return o.Clock.Values() }

// Live returns the siblings that are values, not tombstones.
func (o Object) Live() []Sibling {
	out := make([]Sibling, 0, o.Clock.Size())
	for _, e := range o.Clock.Entries {
		for _, s := range e.Values {
			if !s.Deleted {
				out = append(out, s)
			}
		}
	}
	return out
}

// IsTombstone reports whether the object has siblings and all of them are
// tombstones: the key was deleted and no concurrent write survived.
func (o Object) IsTombstone() bool {
	n := 0
	for _, e := range o.Clock.Entries {
		for _, s := range e.Values {
			if !s.Deleted {
				return false
			}
			n++
		}
	}
	return n > 0
}

// Context returns the encoded causal history to hand to clients
// (dvv.EncodeContext of the clock's join); nil for an object without
// history.
func (o Object) Context() []byte { return o.Clock.Context() }

// ContextLen returns len(o.Context()) without encoding it.
func (o Object) ContextLen() int { return o.Clock.ContextLen() }

// Empty reports whether the object has no history at all, as for a key
// never written. An object whose history superseded all its siblings is not
// empty: its history still matters to later writes.
func (o Object) Empty() bool { return len(o.Clock.Entries) == 0 }

// Merge combines two replicas' copies of a key (dvv.Sync): the history of
// both, and every sibling neither history superseded.
func Merge(a, b Object) Object { return Object{Clock: dvv.Sync(a.Clock, b.Clock)} }

// Update stamps a client write (a value or, with s.Deleted, a delete) at
// its coordinator, whose local copy is local and whose actor is actor: the
// siblings ctx covers are replaced by s, the others stay (dvv.Update). A
// tombstone's value bytes are dropped.
func Update(local Object, ctx dvv.VV, s Sibling, actor string) Object {
	return UpdateAt(local, ctx, s, actor, 0)
}

// UpdateAt is Update with a floor for a new actor's first counter; see
// dvv.UpdateAt. Coordinators pass their clock in microseconds so that a
// key written again after its tombstone was reaped never reuses a dot.
func UpdateAt(local Object, ctx dvv.VV, s Sibling, actor string, floor uint64) Object {
	if s.Deleted {
		s.Value = nil
	}
	return Object{Clock: dvv.UpdateAt(local.Clock, ctx, s, actor, floor)}
}

// LWW keeps only the sibling with the newest Timestamp (ties broken by dot)
// with the same history, for clusters that explicitly chose last-write-wins
// and accept that it loses concurrent writes; see dvv.LWW.
func LWW(o Object) Object {
	return Object{Clock: dvv.LWW(o.Clock, func(a, b Sibling) bool { return a.Timestamp > b.Timestamp })}
}
