package object

import (
	"bytes"
	"slices"
	"testing"

	"github.com/dynago/dynago/dvv"
)

func val(s string, ts int64) Sibling { return Sibling{Value: []byte(s), Timestamp: ts} }
func tomb(ts int64) Sibling          { return Sibling{Deleted: true, Timestamp: ts} }

func values(sibs []Sibling) []string {
	out := make([]string, len(sibs))
	for i, s := range sibs {
		out[i] = string(s.Value)
		if s.Deleted {
			out[i] = "<tombstone>"
		}
	}
	return out
}

func TestTombstoneCoveringValueLeavesOnlyTombstone(t *testing.T) {
	// n1 coordinates a write; a client reads it and deletes through n2.
	var n1, n2 Object
	n1 = Update(n1, nil, val("v1", 100), "n1")
	read, err := dvv.DecodeContext(n1.Context())
	if err != nil {
		t.Fatal(err)
	}
	n2 = Update(n2, read, tomb(200), "n2")
	for _, merged := range []Object{Merge(n1, n2), Merge(n2, n1)} {
		if got := values(merged.Siblings()); !slices.Equal(got, []string{"<tombstone>"}) {
			t.Errorf("siblings after merge = %v, want only the tombstone", got)
		}
		if !merged.IsTombstone() {
			t.Error("IsTombstone = false after a delete that saw the only value")
		}
		if live := merged.Live(); len(live) != 0 {
			t.Errorf("Live = %v, want none", values(live))
		}
		if merged.Empty() {
			t.Error("Empty = true for a deleted key: its history must be kept")
		}
		// The tombstone's context covers the deleted value's history, so a
		// write with it supersedes the tombstone too.
		next := Update(merged, mustDecode(t, merged.Context()), val("v2", 300), "n1")
		if got := values(next.Siblings()); !slices.Equal(got, []string{"v2"}) {
			t.Errorf("write after delete with the tombstone's context: siblings %v, want [v2]", got)
		}
	}
}

func TestConcurrentDeleteKeepsValue(t *testing.T) {
	var n1, n2 Object
	n1 = Update(n1, nil, val("v1", 100), "n1")
	n2 = Update(n2, nil, tomb(200), "n2") // delete that never saw v1
	merged := Merge(n1, n2)
	if merged.IsTombstone() {
		t.Error("IsTombstone = true, but a value the delete never saw survives")
	}
	if got := values(merged.Live()); !slices.Equal(got, []string{"v1"}) {
		t.Errorf("Live = %v, want [v1]", got)
	}
	if got := len(merged.Siblings()); got != 2 {
		t.Errorf("%d siblings, want the value and the tombstone", got)
	}
}

func TestObjectAccessors(t *testing.T) {
	var empty Object
	if !empty.Empty() || empty.IsTombstone() || len(empty.Siblings()) != 0 || len(empty.Live()) != 0 {
		t.Errorf("zero Object: Empty=%v IsTombstone=%v Siblings=%v", empty.Empty(), empty.IsTombstone(), empty.Siblings())
	}
	if ctx := empty.Context(); len(ctx) != 0 {
		t.Errorf("empty object's context = %x, want none", ctx)
	}
	o := Update(Object{}, nil, val("a", 1), "n1")
	o = Update(o, nil, val("b", 2), "n2")
	if o.Empty() || o.IsTombstone() {
		t.Errorf("two values: Empty=%v IsTombstone=%v", o.Empty(), o.IsTombstone())
	}
	if got := values(o.Live()); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Live = %v, want [a b]", got)
	}
	ctx := mustDecode(t, o.Context())
	if want := (dvv.VV{{Actor: "n1", Counter: 1}, {Actor: "n2", Counter: 1}}); !slices.Equal(ctx, want) {
		t.Errorf("context = %v, want %v", ctx, want)
	}
	// Update drops a tombstone's bytes: they mean nothing.
	d := Update(Object{}, nil, Sibling{Value: []byte("junk"), Deleted: true}, "n1")
	if s := d.Siblings(); len(s) != 1 || s[0].Value != nil {
		t.Errorf("tombstone stored as %+v, want no value bytes", s)
	}
}

func TestLWWKeepsNewestTimestamp(t *testing.T) {
	o := Update(Object{}, nil, val("old", 100), "n1")
	o = Merge(o, Update(Object{}, nil, val("new", 300), "n2"))
	o = Merge(o, Update(Object{}, nil, tomb(200), "n3"))
	got := LWW(o)
	if vals := values(got.Siblings()); !slices.Equal(vals, []string{"new"}) {
		t.Errorf("LWW siblings = %v, want [new]", vals)
	}
	if !slices.Equal(got.Clock.Join(), o.Clock.Join()) {
		t.Errorf("LWW changed the history: %v, want %v", got.Clock.Join(), o.Clock.Join())
	}
}

func mustDecode(t *testing.T, ctx []byte) dvv.VV {
	t.Helper()
	v, err := dvv.DecodeContext(ctx)
	if err != nil {
		t.Fatalf("DecodeContext(%x): %v", ctx, err)
	}
	return v
}

func TestHash(t *testing.T) {
	a := Update(Object{}, nil, val("x", 1), "n1")
	b := Update(Object{}, nil, val("x", 1), "n1")
	c := Update(Object{}, nil, val("y", 1), "n1")
	if Hash(Encode(a)) != Hash(Encode(b)) {
		t.Error("equal objects hash differently")
	}
	if Hash(Encode(a)) == Hash(Encode(c)) {
		t.Error("objects with different values hash equally")
	}
	// Merges in either order give the same bytes, hence the same hash.
	d := Update(Object{}, nil, val("z", 2), "n2")
	if !bytes.Equal(Encode(Merge(a, d)), Encode(Merge(d, a))) {
		t.Error("Merge(a, d) and Merge(d, a) encode differently")
	}
}
