package session

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dynago/dynago/dvv"
)

func vv(dots ...any) dvv.VV {
	var v dvv.VV
	for i := 0; i < len(dots); i += 2 {
		v = append(v, dvv.Dot{Actor: dots[i].(string), Counter: uint64(dots[i+1].(int))})
	}
	return v
}

func TestObserveJoinsAndFloors(t *testing.T) {
	var tok Token
	if f, del := tok.Floor([]byte("a")); f != nil || del {
		t.Fatalf("empty token floor = %v %v", f, del)
	}
	tok.Observe([]byte("a"), vv("n1:1", 3), false)
	tok.Observe([]byte("a"), vv("n2:1", 5), true) // concurrent with the first
	f, del := tok.Floor([]byte("a"))
	if !f.Descends(vv("n1:1", 3, "n2:1", 5)) || !vv("n1:1", 3, "n2:1", 5).Descends(f) {
		t.Fatalf("floor = %v, want the join", f)
	}
	if del {
		t.Fatal("a concurrent live version was seen: the join is not deleted")
	}
	tok.Observe([]byte("a"), vv("n1:1", 4, "n2:1", 5), true) // dominates: a delete after both
	if _, del := tok.Floor([]byte("a")); !del {
		t.Fatal("the newest view is a delete, floor should say deleted")
	}
	tok.Observe([]byte("a"), vv("n1:1", 3), false) // an older view changes nothing
	if f, del := tok.Floor([]byte("a")); !del || f.Get("n1:1") != 4 {
		t.Fatalf("an older observation moved the floor: %v %v", f, del)
	}
	tok.Observe([]byte("b"), nil, false)
	if tok.Len() != 1 {
		t.Fatalf("an empty version made an entry: %d keys", tok.Len())
	}
	if f, _ := tok.Floor([]byte("b")); f != nil {
		t.Fatalf("unknown key has floor %v", f)
	}
}

func TestRoundTrip(t *testing.T) {
	var tok Token
	for i := range 10 {
		tok.Observe(fmt.Appendf(nil, "key%d", i), vv("n1:00000001", 1_700_000_000_000_000+i, fmt.Sprintf("n%d:2", i%3), i+1), i%2 == 0)
	}
	s := tok.String()
	back, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	if back.String() != s {
		t.Fatalf("round trip changed the token:\n%s\n%s", s, back.String())
	}
	for i := range 10 {
		k := fmt.Appendf(nil, "key%d", i)
		f1, d1 := tok.Floor(k)
		f2, d2 := back.Floor(k)
		if !f1.Descends(f2) || !f2.Descends(f1) || d1 != d2 {
			t.Fatalf("key %d: %v %v after round trip, want %v %v", i, f2, d2, f1, d1)
		}
	}
	if empty, err := Parse(""); err != nil || empty.Len() != 0 || empty.String() != "" {
		t.Fatalf("empty token: %v %v", empty, err)
	}
	if _, err := Parse(s + "=="); err != nil {
		t.Fatalf("padding refused: %v", err)
	}
}

func TestBoundsDropLeastRecentlyUsed(t *testing.T) {
	var tok Token
	for i := range MaxKeys + 10 {
		tok.Observe(fmt.Appendf(nil, "k%d", i), vv("n1:1", i+1), false)
	}
	if tok.Len() != MaxKeys || tok.Dropped != 10 {
		t.Fatalf("len %d dropped %d, want %d and 10", tok.Len(), tok.Dropped, MaxKeys)
	}
	if f, _ := tok.Floor([]byte("k0")); f != nil {
		t.Fatal("the least recently used key survived")
	}
	if f, _ := tok.Floor(fmt.Appendf(nil, "k%d", MaxKeys+9)); f == nil {
		t.Fatal("the most recent key was dropped")
	}
	// Keys with wide version vectors hit the byte bound first.
	var wide Token
	for i := range 60 {
		var v dvv.VV
		for a := range 20 {
			v = append(v, dvv.Dot{Actor: fmt.Sprintf("node-%02d-key-%03d:deadbeef", a, i), Counter: 1 << 50})
		}
		wide.Observe(fmt.Appendf(nil, "w%d", i), v, false)
		if n := len(wide.Encode()); n > MaxBytes {
			t.Fatalf("token of %d bytes exceeds MaxBytes", n)
		}
	}
	if wide.Dropped == 0 || len(wide.String()) > MaxHeaderSize {
		t.Fatalf("dropped %d, header %d chars", wide.Dropped, len(wide.String()))
	}
	if _, err := Parse(wide.String()); err != nil {
		t.Fatalf("a trimmed token does not parse back: %v", err)
	}
}

func TestMerge(t *testing.T) {
	var a, b Token
	a.Observe([]byte("x"), vv("n1:1", 2), false)
	a.Observe([]byte("y"), vv("n1:1", 7), false)
	b.Observe([]byte("x"), vv("n2:1", 1), false)
	b.Observe([]byte("z"), vv("n3:1", 1), true)
	b.Dropped = 3
	a.Merge(&b)
	if f, _ := a.Floor([]byte("x")); f.Get("n1:1") != 2 || f.Get("n2:1") != 1 {
		t.Fatalf("x = %v", f)
	}
	if f, del := a.Floor([]byte("z")); f.Get("n3:1") != 1 || !del {
		t.Fatalf("z = %v %v", f, del)
	}
	if f, _ := a.Floor([]byte("y")); f.Get("n1:1") != 7 {
		t.Fatalf("y = %v", f)
	}
	if a.Dropped != 3 {
		t.Fatalf("dropped = %d", a.Dropped)
	}
}

func TestDecodeRejectsHostileInput(t *testing.T) {
	var tok Token
	tok.Observe([]byte("a"), vv("n1:1", 3, "n2:1", 9), true)
	good := tok.Encode()
	cases := map[string][]byte{
		"unknown format": append([]byte{2}, good[1:]...),
		"truncated":      good[:len(good)-1],
		"too short":      {format, 0},
		"trailing":       append(bytes.Clone(good), 0),
		"oversized":      bytes.Repeat([]byte{1}, MaxBytes+1),
	}
	for i := range good {
		flipped := bytes.Clone(good)
		flipped[i] ^= 0x40
		cases[fmt.Sprintf("flip byte %d", i)] = flipped
	}
	for name, b := range cases {
		if _, err := Decode(b); !errors.Is(err, ErrBadToken) {
			t.Errorf("%s: err = %v, want ErrBadToken", name, err)
		}
	}
	for _, s := range []string{"!!", strings.Repeat("A", MaxHeaderSize+1), "AQ"} {
		if _, err := Parse(s); !errors.Is(err, ErrBadToken) {
			t.Errorf("Parse(%.20q): err = %v, want ErrBadToken", s, err)
		}
	}
	// A token with a valid checksum but a structure Encode never makes.
	resum := func(body []byte) []byte { return appendChecksum(body) }
	structural := map[string][]byte{
		"explicit empty":   resum([]byte{format, 0, 0, 0}),
		"unused actor":     resum([]byte{format, 0, 1, 1, 'a', 0}),
		"zero counter":     resum(append([]byte{format, 0, 1, 1, 'a', 1}, append(make([]byte, 8), 0, 1, 0, 0)...)),
		"unknown flags":    resum(append([]byte{format, 0, 1, 1, 'a', 1}, append(make([]byte, 8), 2, 1, 0, 1)...)),
		"index range":      resum(append([]byte{format, 0, 1, 1, 'a', 1}, append(make([]byte, 8), 0, 1, 1, 1)...)),
		"non-minimal":      resum([]byte{format, 0x80, 0x00, 0, 0}),
		"actors unordered": resum(append([]byte{format, 0, 2, 1, 'b', 1, 'a', 1}, append(make([]byte, 8), 0, 2, 0, 1, 1, 1)...)),
	}
	for name, b := range structural {
		if _, err := Decode(b); !errors.Is(err, ErrBadToken) {
			t.Errorf("%s: err = %v, want ErrBadToken", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	var tok Token
	tok.Observe([]byte("a"), vv("n1:1", 3, "n2:1", 9), true)
	tok.Observe([]byte("b"), vv("n2:1", 1), false)
	f.Add(tok.Encode())
	f.Add([]byte{})
	f.Add([]byte{format, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrBadToken) {
				t.Fatalf("error %v does not wrap ErrBadToken", err)
			}
			return
		}
		if got := tok.Encode(); !bytes.Equal(got, b) && len(b) > 0 {
			t.Fatalf("accepted %x but re-encodes as %x", b, got)
		}
	})
}
