package dvv

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// ent builds an Entry[string] for table tests; no values means nil Values.
func ent(actor string, counter uint64, vals ...string) Entry[string] {
	e := Entry[string]{Actor: actor, Counter: counter}
	if len(vals) > 0 {
		e.Values = vals
	}
	return e
}

func set(es ...Entry[string]) Set[string] { return Set[string]{Entries: es} }

// same reports whether a and b hold the same history and the same values at
// the same dots (Equal plus the values themselves).
func same[V comparable](a, b Set[V]) bool {
	return a.Equal(b) && slices.Equal(a.Values(), b.Values())
}

func show[V any](s Set[V]) string {
	var b strings.Builder
	b.WriteString("{")
	for i, e := range s.Entries {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s:%d%v", e.Actor, e.Counter, e.Values)
	}
	b.WriteString("}")
	return b.String()
}

func checkSet(t *testing.T, name string, got, want Set[string]) {
	t.Helper()
	if !same(got, want) {
		t.Errorf("%s = %s, want %s", name, show(got), show(want))
	}
}

// The tests below port dvvset.erl's EUnit examples. This port has no
// anonymous values, so update(new(V), I) is Update(Set{}, nil, V, I),
// update(new(join(C), V), L, I) is Update(L, C.Join(), V, I), and the
// examples that only exercise anonymous values are left out.

func TestJoinExample(t *testing.T) {
	var empty Set[string]
	a1 := Update(empty, nil, "v1", "a")
	b1 := Update(a1, a1.Join(), "v2", "b")
	if got := empty.Join(); len(got) != 0 {
		t.Errorf("join(empty) = %v, want []", got)
	}
	if got, want := a1.Join(), (VV{{"a", 1}}); !slices.Equal(got, want) {
		t.Errorf("join(A1) = %v, want %v", got, want)
	}
	if got, want := b1.Join(), (VV{{"a", 1}, {"b", 1}}); !slices.Equal(got, want) {
		t.Errorf("join(B1) = %v, want %v", got, want)
	}
}

func TestUpdateExample(t *testing.T) {
	a0 := Update(Set[string]{}, nil, "v1", "a")
	a1 := Update(a0, a0.Join(), "v2", "a")
	a2 := Update(a1, a1.Join(), "v3", "b")
	a3 := Update(a1, a0.Join(), "v4", "b")
	a4 := Update(a1, a0.Join(), "v5", "a")
	checkSet(t, "A0", a0, set(ent("a", 1, "v1")))
	checkSet(t, "A1", a1, set(ent("a", 2, "v2")))
	checkSet(t, "A2", a2, set(ent("a", 2), ent("b", 1, "v3")))
	checkSet(t, "A3", a3, set(ent("a", 2, "v2"), ent("b", 1, "v4")))
	checkSet(t, "A4", a4, set(ent("a", 3, "v5", "v2")))
	// New + Pending.Update is the two-step form of the same thing.
	checkSet(t, "new(join(A0), v5) at a", New(a0.Join(), "v5").Update(a1, "a"), a4)
}

func TestSyncExample(t *testing.T) {
	var empty Set[string]
	x := set(ent("x", 1))
	a := Update(empty, nil, "v1", "a")
	y := Update(empty, nil, "v2", "b")
	a1 := Update(empty, a.Join(), "v2", "a")
	a3 := Update(empty, a1.Join(), "v3", "b")
	a4 := Update(empty, a1.Join(), "v3", "c")
	w := set(ent("a", 1))
	z := set(ent("a", 2, "v2", "v1"))

	checkSet(t, "sync(W,Z)", Sync(w, z), set(ent("a", 2, "v2")))
	checkSet(t, "sync(A4,A3)", Sync(a4, a3), set(ent("a", 2), ent("b", 1, "v3"), ent("c", 1, "v3")))
	checkSet(t, "sync(X,A)", Sync(x, a), set(ent("a", 1, "v1"), ent("x", 1)))
	checkSet(t, "sync(A,Y)", Sync(a, y), set(ent("a", 1, "v1"), ent("b", 1, "v2")))
	for _, p := range [][2]Set[string]{{w, z}, {a, a1}, {a4, a3}, {x, a}, {a, y}} {
		checkSet(t, "sync commuted", Sync(p[1], p[0]), Sync(p[0], p[1]))
	}
	newer := func(l, r string) bool { return l > r }
	checkSet(t, "sync(A4, lww(A4))", Sync(a4, LWW(a4, newer)), LWW(a4, newer))
}

func TestSyncUpdateExample(t *testing.T) {
	a0 := Update(Set[string]{}, nil, "v1", "a") // Mary writes v1 without context
	vv1 := a0.Join()                            // Peter reads v1 with its context
	a1 := Update(a0, nil, "v2", "a")            // Mary writes v2 without context
	a2 := Update(a1, vv1, "v3", "a")            // Peter writes v3 with the context of v1
	if want := (VV{{"a", 1}}); !slices.Equal(vv1, want) {
		t.Errorf("VV1 = %v, want %v", vv1, want)
	}
	checkSet(t, "A0", a0, set(ent("a", 1, "v1")))
	checkSet(t, "A1", a1, set(ent("a", 2, "v2", "v1")))
	// v3 replaces v1, which Peter saw, and stays concurrent with v2.
	checkSet(t, "A2", a2, set(ent("a", 3, "v3", "v2")))
}

func TestEventExample(t *testing.T) {
	a := Update(Set[string]{}, nil, "v1", "a")
	checkSet(t, "event(A,a,v2)", Set[string]{Entries: event(slices.Clone(a.Entries), "a", "v2", 0)}, set(ent("a", 2, "v2", "v1")))
	checkSet(t, "event(A,b,v2)", Set[string]{Entries: event(slices.Clone(a.Entries), "b", "v2", 0)}, set(ent("a", 1, "v1"), ent("b", 1, "v2")))
}

func TestLWWExample(t *testing.T) {
	greater := func(a, b int) bool { return a > b }
	x := Set[int]{Entries: []Entry[int]{{"a", 4, []int{5, 2}}, {"b", 1, nil}, {"c", 1, []int{3}}}}
	got := LWW(x, greater)
	want := Set[int]{Entries: []Entry[int]{{"a", 4, []int{5}}, {"b", 1, nil}, {"c", 1, nil}}}
	if !same(got, want) {
		t.Errorf("lww(X) = %s, want %s", show(got), show(want))
	}

	type tv struct{ v, ts int }
	byTS := func(a, b tv) bool { return a.ts > b.ts }
	// Only each actor's newest value competes: {7, ...340} is older than
	// {5, ...345} at the same coordinator and loses regardless.
	s := Set[tv]{Entries: []Entry[tv]{{"a", 4, []tv{{5, 1002345}, {7, 1002340}}}, {"b", 1, []tv{{4, 1001340}}}}}
	gotTV := LWW(s, byTS)
	wantTV := Set[tv]{Entries: []Entry[tv]{{"a", 4, []tv{{5, 1002345}}}, {"b", 1, nil}}}
	if !same(gotTV, wantTV) {
		t.Errorf("lww(A) = %s, want %s", show(gotTV), show(wantTV))
	}
}

func TestLWWTieBrokenByDot(t *testing.T) {
	never := func(a, b string) bool { return false }
	tests := []struct {
		name    string
		in      Set[string]
		winner  string
		history VV
	}{
		{"same counter, larger actor wins", set(ent("a", 1, "x"), ent("b", 1, "y")), "y", VV{{"a", 1}, {"b", 1}}},
		{"larger counter wins", set(ent("a", 2, "x"), ent("b", 1, "y")), "x", VV{{"a", 2}, {"b", 1}}},
		{"single value", set(ent("a", 3), ent("c", 1, "z")), "z", VV{{"a", 3}, {"c", 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := LWW(tt.in, never)
			if vals := got.Values(); !slices.Equal(vals, []string{tt.winner}) {
				t.Errorf("values = %v, want [%s]", vals, tt.winner)
			}
			if h := got.Join(); !slices.Equal(h, tt.history) {
				t.Errorf("history = %v, want %v", h, tt.history)
			}
			// Reversing the entry order must not change the winner: the tie
			// rule depends on dots, not on iteration order.
			rev := Set[string]{Entries: slices.Clone(tt.in.Entries)}
			slices.Reverse(rev.Entries)
			if vals := LWW(rev, never).Values(); !slices.Equal(vals, []string{tt.winner}) {
				t.Errorf("reversed: values = %v, want [%s]", vals, tt.winner)
			}
		})
	}
	empty := set(ent("a", 2))
	if got := LWW(empty, never); !same(got, empty) {
		t.Errorf("lww of a set without values = %s, want %s", show(got), show(empty))
	}
}

func TestLessExample(t *testing.T) {
	var empty Set[string]
	// dvvset uses the list [a] as an actor; it sorts after every atom, which
	// "~a" reproduces for the atoms used here.
	a := Update(empty, nil, "v1", "~a")
	b := Update(empty, a.Join(), "v2", "a")
	b2 := Update(empty, a.Join(), "v2", "b")
	b3 := Update(empty, a.Join(), "v2", "z")
	c := Update(a, b.Join(), "v3", "c")
	d := Update(b2, c.Join(), "v4", "d")
	tests := []struct {
		name string
		x, y Set[string]
		want bool
	}{
		{"A<B", a, b, true},
		{"A<C", a, c, true},
		{"B<C", b, c, true},
		{"B<D", b, d, true},
		{"B2<D", b2, d, true},
		{"A<D", a, d, true},
		{"B2<C", b2, c, false},
		{"B<B2", b, b2, false},
		{"B2<B", b2, b, false},
		{"A<A", a, a, false},
		{"C<C", c, c, false},
		{"D<B2", d, b2, false},
		{"B3<D", b3, d, false},
		{"empty<A", empty, a, true},
		{"A<empty", a, empty, false},
		{"empty<empty", empty, empty, false},
	}
	for _, tt := range tests {
		if got := tt.x.Less(tt.y); got != tt.want {
			t.Errorf("less(%s) = %v, want %v (%s vs %s)", tt.name, got, tt.want, show(tt.x), show(tt.y))
		}
	}
}

func TestEqualExample(t *testing.T) {
	a := set(ent("a", 4, "v5", "v0"), ent("b", 0), ent("c", 1, "v3"))
	b := set(ent("a", 4, "v555", "v0"), ent("b", 0), ent("c", 1, "v3"))
	c := set(ent("a", 4, "v5", "v0"), ent("b", 0))
	d := set(ent("a", 4, "v5"), ent("b", 0), ent("c", 1, "v3"))
	if !a.Equal(b) || !b.Equal(a) {
		t.Error("equal(A,B) = false: only the histories and dots should be compared")
	}
	if a.Equal(c) || b.Equal(c) {
		t.Error("equal(A,C) = true, C lacks actor c")
	}
	if a.Equal(d) {
		t.Error("equal(A,D) = true, D holds a value at one dot of a fewer")
	}
}

func TestSizeValuesMapExample(t *testing.T) {
	a := set(ent("a", 4, "v0", "v5"), ent("b", 0), ent("c", 1, "v3"))
	if got := a.Size(); got != 3 {
		t.Errorf("size = %d, want 3", got)
	}
	if got, want := a.Values(), []string{"v0", "v5", "v3"}; !slices.Equal(got, want) {
		t.Errorf("values = %v, want %v", got, want)
	}
	n := Set[int]{Entries: []Entry[int]{{"a", 4, []int{5, 0}}, {"b", 0, nil}, {"c", 1, []int{2}}}}
	doubled := n.Map(func(x int) int { return x * 2 })
	want := Set[int]{Entries: []Entry[int]{{"a", 4, []int{10, 0}}, {"b", 0, nil}, {"c", 1, []int{4}}}}
	if !same(doubled, want) {
		t.Errorf("map(*2) = %s, want %s", show(doubled), show(want))
	}
	if got := n.Values(); !slices.Equal(got, []int{5, 0, 2}) {
		t.Errorf("map modified its receiver: values now %v", got)
	}
}

func TestUpdateNormalizesContext(t *testing.T) {
	local := set(ent("a", 2, "v2", "v1"), ent("b", 1, "w1"))
	// Unsorted, duplicated and zero dots mean the same as {a:1, b:1}.
	messy := VV{{"b", 1}, {"a", 1}, {"c", 0}, {"a", 0}}
	got := Update(local, messy, "v3", "a")
	want := Update(local, VV{{"a", 1}, {"b", 1}}, "v3", "a")
	checkSet(t, "update with messy context", got, want)
	checkSet(t, "update", want, set(ent("a", 3, "v3", "v2"), ent("b", 1)))
}

func TestOperationsDoNotModifyArguments(t *testing.T) {
	local := set(ent("a", 3, "v3", "v2"), ent("b", 1, "w1"))
	snapshot := set(ent("a", 3, "v3", "v2"), ent("b", 1, "w1"))
	other := set(ent("a", 3, "v3"), ent("c", 1, "x1"))
	_ = Update(local, VV{{"a", 2}}, "v4", "a")
	_ = Update(local, nil, "v4", "b")
	s := Sync(local, other)
	_ = LWW(local, func(a, b string) bool { return a > b })
	checkSet(t, "local after operations", local, snapshot)
	// Appending to a result's values must not write into an argument.
	for i := range s.Entries {
		s.Entries[i].Values = append(s.Entries[i].Values, "junk")
	}
	checkSet(t, "local after appending to a sync result", local, snapshot)
	checkSet(t, "other after appending to a sync result", other, set(ent("a", 3, "v3"), ent("c", 1, "x1")))
}

func TestUpdateCounterOverflowPanics(t *testing.T) {
	for _, c := range []uint64{MaxCounter, ^uint64(0)} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Update at counter %d did not panic; it would have stored a dot decoders reject", c)
				}
			}()
			Update(set(ent("a", c)), nil, "v", "a")
		}()
	}
}

// TestExhausted: a counter at MaxCounter, in the stored set or in a
// client's context, leaves the actor no dot; one below still has one, and
// other actors are unaffected.
func TestExhausted(t *testing.T) {
	for _, tc := range []struct {
		name  string
		local Set[string]
		ctx   VV
		want  bool
	}{
		{"empty", Set[string]{}, nil, false},
		{"local below", set(ent("a", MaxCounter-1, "v")), nil, false},
		{"local at max", set(ent("a", MaxCounter, "v")), nil, true},
		{"context at max", Set[string]{}, VV{{Actor: "a", Counter: MaxCounter}}, true},
		{"other actor at max", set(ent("b", MaxCounter, "v")), VV{{Actor: "c", Counter: MaxCounter}}, false},
	} {
		if got := Exhausted(tc.local, tc.ctx, "a"); got != tc.want {
			t.Errorf("%s: Exhausted = %v, want %v", tc.name, got, tc.want)
		}
		if !tc.want {
			// Not exhausted: the update must encode to a valid context.
			u := Update(tc.local, tc.ctx, "new", "a")
			if _, err := DecodeContext(EncodeContext(u.Join())); err != nil {
				t.Errorf("%s: context after update does not decode: %v", tc.name, err)
			}
		}
	}
}
