package membership

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestMetaEncoding(t *testing.T) {
	want := Meta{HTTPAddr: "10.0.0.1:9101", RPCAddr: "10.0.0.1:9201", Version: "v1.2.0", Commit: "0123456789ab-dirty"}
	b, err := encodeMeta(want)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := decodeMeta(b); err != nil || got != want {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	cases := []struct {
		in   string
		want Meta
		err  error
	}{
		{`{"v":1}`, Meta{}, nil},
		// A later version may add fields; this one reads those it knows.
		{`{"v":2,"http":"h:1","rpc":"r:2","zone":"z"}`, Meta{HTTPAddr: "h:1", RPCAddr: "r:2"}, nil},
		{``, Meta{}, errBadMeta},
		{`{}`, Meta{}, errBadMeta},
		{`{"v":0,"http":"h"}`, Meta{}, errBadMeta},
		{`{"v":"1"}`, Meta{}, errBadMeta},
		{"consul\x00tags", Meta{}, errBadMeta},
		// The daemon dials these: anything but host:port is refused.
		{`{"v":1,"rpc":"nohost"}`, Meta{}, errBadMeta},
		{`{"v":1,"rpc":":9201"}`, Meta{}, errBadMeta},
		{`{"v":1,"http":"h:0"}`, Meta{}, errBadMeta},
		{`{"v":1,"http":"h:70000"}`, Meta{}, errBadMeta},
		{`{"v":1,"http":"h:-1"}`, Meta{}, errBadMeta},
		// The build: printable, bounded; a member without one is older.
		{`{"v":1,"http":"h:1","build":"v1.2.0","commit":"abc"}`, Meta{HTTPAddr: "h:1", Version: "v1.2.0", Commit: "abc"}, nil},
		// A build field that cannot be shown safely is dropped, the
		// member kept.
		{`{"v":1,"http":"h:1","build":"v1\n2","commit":"abc"}`, Meta{HTTPAddr: "h:1", Commit: "abc"}, nil},
		{`{"v":1,"build":"two words"}`, Meta{}, nil},
		{`{"v":1,"build":"v1","commit":"` + strings.Repeat("a", 65) + `"}`, Meta{Version: "v1"}, nil},
	}
	// This member's own odd build is cleaned, never a reason not to start.
	b, err = encodeMeta(Meta{Version: "v1\x1b[2J", Commit: strings.Repeat("f", 64) + "-dirty"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := decodeMeta(b); err != nil || got.Version != "v1_[2J" || got.Commit != strings.Repeat("f", 64) {
		t.Errorf("an odd build encodes as %+v, %v", got, err)
	}
	for _, tc := range cases {
		got, err := decodeMeta([]byte(tc.in))
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("decodeMeta(%q) = %+v, %v; want %+v, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestStateEncoding(t *testing.T) {
	cs := newClusterState(0x0102030405060708, []byte("owners"))
	if want := append([]byte{msgState, 1, 2, 3, 4, 5, 6, 7, 8}, "owners"...); !bytes.Equal(cs.msg, want) {
		t.Fatalf("encoding = %x, want %x", cs.msg, want)
	}
	got, err := decodeState(cs.msg)
	if err != nil || got.version != cs.version || !bytes.Equal(got.data, cs.data) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	// The decoded state must not alias the buffer memberlist reuses.
	buf := bytes.Clone(cs.msg)
	got, _ = decodeState(buf)
	buf[len(buf)-1] = 'X'
	if string(got.data) != "owners" {
		t.Fatalf("decoded state aliases its input: %q", got.data)
	}
	for _, bad := range [][]byte{nil, {msgState}, {msgState, 0, 0, 0, 0, 0, 0, 0}, {2, 0, 0, 0, 0, 0, 0, 0, 1}} {
		if _, err := decodeState(bad); !errors.Is(err, errBadMessage) {
			t.Errorf("decodeState(%x): %v, want errBadMessage", bad, err)
		}
	}
}

func TestCompareStates(t *testing.T) {
	cases := []struct {
		av   uint64
		a    string
		bv   uint64
		b    string
		want int
	}{
		{2, "a", 1, "z", 1},  // version first
		{1, "z", 2, "a", -1}, // version first
		{3, "abc", 3, "abd", -1},
		{3, "abd", 3, "abc", 1},
		{3, "ab", 3, "abc", -1}, // a prefix sorts first
		{3, "abc", 3, "abc", 0},
		{0, "", 0, "", 0},
	}
	for _, tc := range cases {
		if got := compareStates(tc.av, []byte(tc.a), tc.bv, []byte(tc.b)); got != tc.want {
			t.Errorf("compareStates(%d %q, %d %q) = %d, want %d", tc.av, tc.a, tc.bv, tc.b, got, tc.want)
		}
	}
}

func FuzzDecodeState(f *testing.F) {
	f.Add(newClusterState(7, []byte("ring")).msg)
	f.Add([]byte{msgState})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, buf []byte) {
		cs, err := decodeState(buf)
		if err != nil {
			return
		}
		if !bytes.Equal(cs.msg, buf) {
			t.Fatalf("re-encoding %x gives %x", buf, cs.msg)
		}
	})
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add([]byte(`{"v":1,"http":"127.0.0.1:9101","rpc":"127.0.0.1:9201"}`))
	f.Add([]byte(`{"v":9}`))
	f.Fuzz(func(t *testing.T, buf []byte) {
		m, err := decodeMeta(buf)
		if err != nil {
			return
		}
		b, err := encodeMeta(m)
		if err != nil {
			// Only a remote meta near the size limit can grow past it
			// when re-encoded with JSON escapes.
			if !errors.Is(err, ErrMetaTooLarge) {
				t.Fatal(err)
			}
			return
		}
		if again, err := decodeMeta(b); err != nil || again != m {
			t.Fatalf("round trip of %+v: %+v, %v", m, again, err)
		}
	})
}
