package object

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dynago/dynago/dvv"
)

// sameObject compares histories, dots and sibling contents (nil and empty
// values are the same value).
func sameObject(a, b Object) bool {
	if !a.Clock.Equal(b.Clock) {
		return false
	}
	x, y := a.Siblings(), b.Siblings()
	for i := range x {
		if !bytes.Equal(x[i].Value, y[i].Value) || x[i].Deleted != y[i].Deleted || x[i].Timestamp != y[i].Timestamp {
			return false
		}
	}
	return true
}

// randomObject builds a well-formed object through the same operations a
// cluster uses: updates at random coordinators, merges, random contexts.
func randomObject(rng *rand.Rand) Object {
	replicas := make([]Object, 1+rng.IntN(3))
	for range rng.IntN(12) {
		r := rng.IntN(len(replicas))
		if rng.IntN(4) == 0 {
			replicas[r] = Merge(replicas[r], replicas[rng.IntN(len(replicas))])
			continue
		}
		var ctx dvv.VV
		if rng.IntN(2) == 0 {
			ctx = replicas[rng.IntN(len(replicas))].Clock.Join()
		}
		var s Sibling
		switch rng.IntN(4) {
		case 0:
			s.Deleted = true
		case 1:
			// empty value
		default:
			s.Value = make([]byte, rng.IntN(300))
			for i := range s.Value {
				s.Value[i] = byte(rng.IntN(256))
			}
		}
		switch rng.IntN(3) {
		case 0:
			s.Timestamp = rng.Int64()
		case 1:
			s.Timestamp = -rng.Int64N(1000)
		default:
			s.Timestamp = 1_700_000_000_000 + rng.Int64N(1e9)
		}
		actor := fmt.Sprintf("node%d@%d", r, rng.IntN(2))
		replicas[r] = Update(replicas[r], ctx, s, actor)
	}
	var o Object
	for _, r := range replicas {
		o = Merge(o, r)
	}
	return o
}

func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 2000 {
		o := randomObject(rng)
		b := Encode(o)
		if len(b) != encodedLen(o) {
			t.Fatalf("object %d: encodedLen %d, encoding has %d bytes", i, encodedLen(o), len(b))
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("object %d: Decode(Encode(o)): %v", i, err)
		}
		if !sameObject(got, o) {
			t.Fatalf("object %d: round trip changed the object", i)
		}
		if re := Encode(got); !bytes.Equal(re, b) {
			t.Fatalf("object %d: re-encoding differs", i)
		}
	}
}

func TestEncodingLayout(t *testing.T) {
	o := Update(Object{}, nil, Sibling{Value: []byte("hi"), Timestamp: -1}, "a")
	o = Update(o, nil, tomb(1), "a")
	body := []byte{
		1,      // format
		1,      // entries
		1, 'a', // actor
		2,       // counter
		2,       // values
		1, 2, 0, // tombstone, timestamp 1, no bytes
		0, 1, 2, 'h', 'i', // value, timestamp -1, "hi"
	}
	want := binary.LittleEndian.AppendUint32(body, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	if got := Encode(o); !bytes.Equal(got, want) {
		t.Errorf("Encode = %x, want %x", got, want)
	}
	if got := Encode(Object{}); !bytes.Equal(got[:2], []byte{1, 0}) || len(got) != 6 {
		t.Errorf("Encode(empty) = %x, want format, zero entries, checksum", got)
	}
	if _, err := Decode(Encode(Object{})); err != nil {
		t.Errorf("Decode(Encode(empty)): %v", err)
	}
}

func TestChecksumCatchesEveryBitFlip(t *testing.T) {
	o := Update(Object{}, nil, val("value", 1_700_000_000_000), "node1")
	o = Update(o, nil, tomb(1_700_000_000_001), "node2")
	b := Encode(o)
	for i := range len(b) * 8 {
		flipped := bytes.Clone(b)
		flipped[i/8] ^= 1 << (i % 8)
		if got, err := Decode(flipped); !errors.Is(err, ErrCorrupt) {
			t.Errorf("bit %d flipped: Decode = %+v, %v; want ErrCorrupt", i, got, err)
		}
		if err := Validate(flipped); !errors.Is(err, ErrCorrupt) {
			t.Errorf("bit %d flipped: Validate = %v; want ErrCorrupt", i, err)
		}
	}
}

func TestTruncationRejected(t *testing.T) {
	b := Encode(randomObject(rand.New(rand.NewPCG(7, 8))))
	for n := range len(b) {
		if _, err := Decode(b[:n]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("truncated to %d of %d bytes: err = %v, want ErrCorrupt", n, len(b), err)
		}
		if err := Validate(b[:n]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("truncated to %d of %d bytes: Validate = %v, want ErrCorrupt", n, len(b), err)
		}
	}
	if _, err := Decode(append(bytes.Clone(b), 0)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("trailing byte: err = %v, want ErrCorrupt", err)
	}
}

// seal appends a valid checksum, to test what the parser rejects behind it.
func seal(body ...byte) []byte {
	return binary.LittleEndian.AppendUint32(body, crc32.Checksum(body, castagnoli))
}

func TestDecodeRejectsMalformed(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"unknown format", seal(2, 0)},
		{"entries beyond input", seal(1, 9, 1, 'a', 1, 0)},
		{"huge entry count", seal(1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)},
		{"non-minimal entry count", seal(1, 0x81, 0x00, 1, 'a', 1, 0)},
		{"unsorted actors", seal(1, 2, 1, 'b', 1, 0, 1, 'a', 1, 0)},
		{"duplicate actors", seal(1, 2, 1, 'a', 1, 0, 1, 'a', 2, 0)},
		{"zero counter", seal(1, 1, 1, 'a', 0, 0)},
		{"counter above MaxCounter", seal(1, 1, 1, 'a', 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0)},
		{"more values than dots", seal(1, 1, 1, 'a', 1, 2, 0, 0, 0, 0, 0, 0)},
		{"values beyond input", seal(1, 1, 1, 'a', 9, 9, 0, 0, 0)},
		{"unknown flag", seal(1, 1, 1, 'a', 1, 1, 2, 0, 0)},
		{"tombstone with value", seal(1, 1, 1, 'a', 1, 1, 1, 0, 1, 'x')},
		{"non-minimal timestamp", seal(1, 1, 1, 'a', 1, 1, 0, 0x80, 0x00, 0)},
		{"value beyond input", seal(1, 1, 1, 'a', 1, 1, 0, 0, 5, 'x')},
		{"missing value", seal(1, 1, 1, 'a', 1, 1)},
		{"trailing byte before checksum", seal(1, 0, 0)},
		{"bad checksum", append([]byte{1, 0}, 0, 0, 0, 0)},
	}
	for _, tt := range tests {
		if got, err := Decode(tt.in); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Decode(%x) = %+v, %v; want ErrCorrupt", tt.name, tt.in, got, err)
		}
		if err := Validate(tt.in); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Validate(%x) = %v; want ErrCorrupt", tt.name, tt.in, err)
		}
	}
	// The limits themselves are accepted.
	big := Update(Object{Clock: dvv.Set[Sibling]{Entries: []dvv.Entry[Sibling]{{Actor: "a", Counter: dvv.MaxCounter - 1}}}},
		nil, Sibling{Timestamp: math.MinInt64}, "a")
	if _, err := Decode(Encode(big)); err != nil {
		t.Errorf("Decode of counter MaxCounter and timestamp MinInt64: %v", err)
	}
}

func TestDecodeDoesNotAliasInput(t *testing.T) {
	o := Update(Object{}, nil, val("abc", 1), "n1")
	o = Update(o, nil, val("def", 2), "n1")
	o = Update(o, nil, val("ghi", 3), "n2")
	b := Encode(o)
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	clear(b)
	if vals := values(got.Siblings()); fmt.Sprint(vals) != "[def abc ghi]" {
		t.Fatalf("after clearing the input the siblings read %v", vals)
	}
	// Appending to one decoded entry's siblings or value must not write
	// into the next one's.
	e := &got.Clock.Entries[0]
	e.Values = append(e.Values, val("junk", 9))
	e.Values[0].Value = append(e.Values[0].Value, "junk"...)
	if vals := values(got.Clock.Entries[1].Values); fmt.Sprint(vals) != "[ghi]" {
		t.Errorf("appending to entry 0 changed entry 1 to %v", vals)
	}
	if v := string(got.Clock.Entries[0].Values[1].Value); v != "abc" {
		t.Errorf("appending to one value changed the next to %q", v)
	}
}

var fuzzLocal = Encode(Update(Update(Object{}, nil, val("a", 1), "a"), nil, val("b", 2), "b"))

func FuzzDecode(f *testing.F) {
	rng := rand.New(rand.NewPCG(9, 10))
	for range 16 {
		enc := Encode(randomObject(rng))
		f.Add(enc)
		f.Add(enc[:len(enc)-crcLen]) // sealed by the fuzz function
	}
	f.Add([]byte{})
	f.Add(seal(1, 0))
	f.Add(seal(1, 1, 1, 'a', 1, 1, 1, 0, 1, 'x'))
	f.Fuzz(func(t *testing.T, b []byte) {
		// Random bytes almost never pass the checksum, so also try them
		// with a valid one to reach the parser behind it.
		for _, in := range [][]byte{b, seal(bytes.Clone(b)...)} {
			if _, _, serr := Supersedes(fuzzLocal, in); (serr == nil) != (Validate(in) == nil) {
				t.Fatalf("Supersedes(valid, %x) = %v, but Validate says %v", in, serr, Validate(in))
			}
			o, err := Decode(in)
			if verr := Validate(in); (verr == nil) != (err == nil) {
				t.Fatalf("Validate(%x) = %v but Decode = %v", in, verr, err)
			}
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("error %v does not wrap ErrCorrupt", err)
				}
				if _, _, serr := Supersedes(in, Encode(Object{})); !errors.Is(serr, ErrCorrupt) {
					t.Fatalf("Supersedes accepted %x, which Decode rejects: %v", in, serr)
				}
				continue
			}
			if re := Encode(o); !bytes.Equal(re, in) {
				t.Fatalf("accepted %x but it re-encodes as %x", in, re)
			}
			// A replica's copy always supersedes itself, unchanged.
			if covered, same, err := Supersedes(in, in); err != nil || !covered || !same {
				t.Fatalf("Supersedes(%x, itself) = %t, %t, %v", in, covered, same, err)
			}
			// Whatever a peer can make a node store must stay readable
			// after the node writes on top of it, with its context.
			ctx, err := dvv.DecodeContext(o.Context())
			if err != nil {
				t.Fatalf("accepted object's context does not decode: %v", err)
			}
			for _, actor := range []string{"a", "zz"} {
				if len(o.Clock.Entries) > 0 {
					actor = o.Clock.Entries[0].Actor
				}
				if dvv.Exhausted(o.Clock, ctx, actor) {
					continue
				}
				u := Update(o, ctx, Sibling{Value: []byte("v")}, actor)
				if _, err := Decode(Encode(u)); err != nil {
					t.Fatalf("object updated by %q does not decode: %v", actor, err)
				}
			}
		}
	})
}

// Validate must accept exactly what Decode accepts, and allocate nothing
// when it accepts: replicas run it on every read they answer.
func TestValidate(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for range 200 {
		b := Encode(randomObject(rng))
		if err := Validate(b); err != nil {
			t.Fatalf("Validate(Encode(o)) = %v", err)
		}
	}
	b := Encode(benchObject())
	if n := testing.AllocsPerRun(100, func() { _ = Validate(b) }); n != 0 {
		t.Errorf("Validate allocates %v times per call, want 0", n)
	}
}

func benchObject() Object {
	value := bytes.Repeat([]byte{'x'}, 100)
	return Update(Object{}, dvv.VV{{Actor: "node1@1", Counter: 41}, {Actor: "node2@1", Counter: 7}},
		Sibling{Value: value, Timestamp: 1_700_000_000_000}, "node1@1")
}

func BenchmarkEncode(b *testing.B) {
	o := benchObject()
	b.SetBytes(100)
	b.ReportAllocs()
	for b.Loop() {
		Encode(o)
	}
}

func BenchmarkDecode(b *testing.B) {
	enc := Encode(benchObject())
	b.SetBytes(100)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}

// Supersedes must agree with merging the slow way: when it says covered,
// the merge encodes as in does, and same says whether the merge has
// local's history exactly. A newer version written on top of local must
// be covered (the fast path replicas take on every write).
func TestSupersedes(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	check := func(local, in Object) (covered bool) {
		t.Helper()
		enc := Encode(local)
		covered, same, err := Supersedes(enc, Encode(in))
		if err != nil {
			t.Fatalf("Supersedes: %v", err)
		}
		merged := Merge(local, in)
		if covered && !bytes.Equal(Encode(merged), Encode(in)) {
			t.Fatalf("covered, but the merge of\n%+v\nand\n%+v\nis %+v", local, in, merged)
		}
		if covered && same != merged.Clock.Equal(local.Clock) {
			t.Fatalf("same = %t, but the merge equals local: %t", same, merged.Clock.Equal(local.Clock))
		}
		return covered
	}
	coveredSeen := 0
	for range 3000 {
		a, b := randomObject(rng), randomObject(rng)
		if check(a, b) {
			coveredSeen++
		}
		check(a, Merge(a, b))
		check(Merge(a, b), a)
		check(a, a)
		newer := Update(a, a.Clock.Join(), val("new", 5), "zz")
		if !check(a, newer) {
			t.Fatalf("a version written on top of local is not covered:\n%+v\n%+v", a, newer)
		}
		if !check(a, Update(a, a.Clock.Join(), tomb(6), "node0@0")) {
			t.Fatal("a delete written on top of local is not covered")
		}
	}
	// One dot carrying two values (a reused dot): never taken as covered,
	// whichever value the merge keeps.
	x, y := Update(Object{}, nil, val("x", 1), "a"), Update(Object{}, nil, val("y", 1), "a")
	if covered, _, _ := Supersedes(Encode(x), Encode(y)); covered {
		t.Error("a dot with another value taken as covered")
	}
	if coveredSeen == 0 {
		t.Error("no random pair was covered: the test exercises little")
	}
	enc := Encode(benchObject())
	in := Encode(Update(benchObject(), benchObject().Clock.Join(), val("v", 1), "node1@1"))
	if n := testing.AllocsPerRun(100, func() { _, _, _ = Supersedes(enc, in) }); n != 0 {
		t.Errorf("Supersedes allocates %v times, want 0", n)
	}
	enc[len(enc)/2] ^= 1
	if _, _, err := Supersedes(enc, in); !errors.Is(err, ErrCorrupt) {
		t.Errorf("corrupt local: err = %v, want ErrCorrupt", err)
	}
}
