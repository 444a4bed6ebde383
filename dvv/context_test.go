package dvv

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestEncodeContextLayout(t *testing.T) {
	got := EncodeContext(VV{{"a", 1}, {"bc", 300}})
	want := []byte{1, 2, 1, 'a', 1, 2, 'b', 'c', 0xac, 0x02}
	if !bytes.Equal(got, want) {
		t.Errorf("EncodeContext = %x, want %x", got, want)
	}
	if got := EncodeContext(nil); len(got) != 0 {
		t.Errorf("EncodeContext(empty) = %x, want no bytes", got)
	}
	// A hand-built context is normalized first, so equal histories encode
	// to equal bytes.
	if got := EncodeContext(VV{{"bc", 300}, {"z", 0}, {"a", 1}, {"bc", 2}}); !bytes.Equal(got, want) {
		t.Errorf("EncodeContext(unsorted) = %x, want %x", got, want)
	}
}

func TestContextRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		v := randomVV(rng)
		b := EncodeContext(v)
		got, err := DecodeContext(b)
		if err != nil {
			t.Fatalf("DecodeContext(EncodeContext(%v)) failed: %v", v, err)
		}
		if !slices.Equal(got, v) {
			t.Fatalf("round trip of %v gave %v", v, got)
		}
	}
}

func randomVV(rng *rand.Rand) VV {
	n := rng.IntN(6)
	var v VV
	for range n {
		actor := make([]byte, rng.IntN(12))
		for i := range actor {
			actor[i] = byte(rng.IntN(256))
		}
		var c uint64
		switch rng.IntN(3) {
		case 0:
			c = 1 + rng.Uint64N(10)
		case 1:
			c = 1 + rng.Uint64N(1<<20)
		default:
			c = 1 + rng.Uint64N(MaxCounter)
		}
		v = append(v, Dot{string(actor), c})
	}
	return normalize(v)
}

func TestDecodeContextRejects(t *testing.T) {
	valid := EncodeContext(VV{{"a", 1}, {"b", 2}})
	tests := []struct {
		name string
		in   []byte
	}{
		{"unknown format", []byte{2, 1, 1, 'a', 1}},
		{"format byte only", []byte{1}},
		{"explicit empty", []byte{1, 0}},
		{"count beyond input", []byte{1, 200, 1, 'a', 1}},
		{"huge count", []byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"varint overflow", []byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}},
		{"non-minimal count", []byte{1, 0x81, 0x00, 1, 'a', 1}},
		{"non-minimal counter", []byte{1, 1, 1, 'a', 0x81, 0x00}},
		{"actor length beyond input", []byte{1, 1, 9, 'a', 1}},
		{"missing counter", []byte{1, 1, 1, 'a'}},
		{"zero counter", []byte{1, 1, 1, 'a', 0}},
		{"counter above MaxCounter", append([]byte{1, 1, 1, 'a'}, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01)},
		{"unsorted", []byte{1, 2, 1, 'b', 1, 1, 'a', 1}},
		{"duplicate", []byte{1, 2, 1, 'a', 1, 1, 'a', 2}},
		{"trailing byte", append(slices.Clone(valid), 0)},
	}
	for i := 1; i < len(valid); i++ {
		tests = append(tests, struct {
			name string
			in   []byte
		}{fmt.Sprintf("truncated to %d bytes", i), valid[:i]})
	}
	for _, tt := range tests {
		v, err := DecodeContext(tt.in)
		if !errors.Is(err, ErrBadContext) {
			t.Errorf("%s: DecodeContext(%x) = %v, %v; want ErrBadContext", tt.name, tt.in, v, err)
		}
	}
	for _, in := range [][]byte{nil, {}} {
		if v, err := DecodeContext(in); err != nil || len(v) != 0 {
			t.Errorf("DecodeContext(%#v) = %v, %v; want empty context", in, v, err)
		}
	}
	// The largest allowed counter is accepted.
	big := EncodeContext(VV{{"a", MaxCounter}})
	if v, err := DecodeContext(big); err != nil || v.Get("a") != MaxCounter {
		t.Errorf("DecodeContext(MaxCounter) = %v, %v", v, err)
	}
}

func FuzzDecodeContext(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		f.Add(EncodeContext(randomVV(rng)))
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0})
	f.Add([]byte{1, 2, 1, 'b', 1, 1, 'a', 1})
	f.Add([]byte{1, 0x81, 0x00, 1, 'a', 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeContext(b)
		if err != nil {
			if !errors.Is(err, ErrBadContext) {
				t.Fatalf("error %v does not wrap ErrBadContext", err)
			}
			return
		}
		if !isCanonical(v) {
			t.Fatalf("accepted a non-canonical context %v", v)
		}
		if re := EncodeContext(v); !bytes.Equal(re, b) {
			t.Fatalf("accepted %x but it re-encodes as %x", b, re)
		}
		// A coordinator stamps a write on top of an accepted context
		// (Exhausted tells it when its actor has no dot left): the
		// result must be a context that decodes again, or the key would
		// be poisoned for every later contextual write.
		local := Set[string]{}
		for _, actor := range []string{"a", "n1", ""} {
			if len(v) > 0 {
				actor = v[0].Actor // the worst case: an actor the context names
			}
			if Exhausted(local, v, actor) {
				continue
			}
			u := Update(local, v, "x", actor)
			if _, err := DecodeContext(EncodeContext(u.Join())); err != nil {
				t.Fatalf("context %v updated by %q does not decode: %v", v, actor, err)
			}
		}
	})
}

// Set.Context and ContextLen must give exactly EncodeContext(s.Join()),
// for well-formed sets and for hand-built ones (unsorted, repeated actors,
// zero counters) that EncodeContext normalizes.
func TestSetContextMatchesEncodeContext(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 2000 {
		var s Set[int]
		for range rng.IntN(6) {
			actor := string(rune('a' + rng.IntN(5)))
			var c uint64
			switch rng.IntN(4) {
			case 0:
				c = 0
			case 1:
				c = 1 + rng.Uint64N(MaxCounter)
			default:
				c = 1 + rng.Uint64N(300)
			}
			s.Entries = append(s.Entries, Entry[int]{Actor: actor, Counter: c})
		}
		if i%2 == 0 {
			// Mostly well-formed: sorted, distinct actors.
			slices.SortFunc(s.Entries, func(a, b Entry[int]) int { return strings.Compare(a.Actor, b.Actor) })
			s.Entries = slices.CompactFunc(s.Entries, func(a, b Entry[int]) bool { return a.Actor == b.Actor })
		}
		want := EncodeContext(s.Join())
		if got := s.Context(); !bytes.Equal(got, want) || (got == nil) != (want == nil) {
			t.Fatalf("%+v: Context() = %x, want %x", s.Entries, got, want)
		}
		if got := s.ContextLen(); got != len(want) {
			t.Fatalf("%+v: ContextLen() = %d, want %d", s.Entries, got, len(want))
		}
	}
	s := Set[int]{Entries: []Entry[int]{{Actor: "a", Counter: 3}, {Actor: "b", Counter: 200}}}
	if n := testing.AllocsPerRun(100, func() { _ = s.Context() }); n != 1 {
		t.Errorf("Context allocates %v times, want 1", n)
	}
}
