package cluster

import (
	"errors"
	"testing"

	"github.com/dynago/dynago/ring"
)

func TestInitialIsDeterministicAndRoundTrips(t *testing.T) {
	a, err := Initial(64, 3, []ring.NodeID{"n3", "n1", "n2"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Initial(64, 3, []ring.NodeID{"n1", "n2", "n3"})
	if string(Encode(a)) != string(Encode(b)) {
		t.Fatal("the initial state depends on the order nodes are listed in")
	}
	got, err := Decode(Encode(a))
	if err != nil || string(Encode(got)) != string(Encode(a)) {
		t.Fatalf("round trip: %v", err)
	}
	r, _ := got.Ring()
	if r.Version() != 1 || r.Partitions() != 64 || len(r.Members()) != 3 {
		t.Fatalf("ring %d %d %v", r.Version(), r.Partitions(), r.Members())
	}
}

func TestDecodeRejectsBadStates(t *testing.T) {
	good, _ := Initial(8, 3, []ring.NodeID{"a", "b", "c"})
	short := good.Clone()
	short.Owners = short.Owners[:5]
	noClaimant := good.Clone()
	noClaimant.Next = good.Owners
	for name, b := range map[string][]byte{
		"garbage":      []byte("{"),
		"version 0":    []byte(`{"version":0,"partitions":8,"n":3,"owners":["a","b","c","a","b","c","a","b"]}`),
		"short owners": Encode(short),
		"no claimant":  Encode(noClaimant),
	} {
		if _, err := Decode(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCloneIsDeep(t *testing.T) {
	s, _ := Initial(8, 3, []ring.NodeID{"a", "b", "c"})
	c := s.Clone()
	c.Owners[0] = "z"
	if s.Owners[0] == "z" {
		t.Fatal("Clone shares owners")
	}
}

// FuzzDecode: gossip brings states from other nodes; decoding must never
// panic, and whatever it accepts must be usable and re-encode stably.
func FuzzDecode(f *testing.F) {
	s, _ := Initial(8, 3, []ring.NodeID{"a", "b", "c"})
	f.Add(Encode(s))
	moving := s.Clone()
	moving.Version, moving.Next, moving.Claimant = 3, []ring.NodeID{"a", "b", "c", "d", "a", "b", "c", "d"}, "a"
	f.Add(Encode(moving))
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := Decode(b)
		if err != nil {
			return
		}
		if _, err := st.Ring(); err != nil {
			t.Fatalf("accepted a state whose ring does not build: %v", err)
		}
		again, err := Decode(Encode(st))
		if err != nil || string(Encode(again)) != string(Encode(st)) {
			t.Fatalf("re-encoding is not stable: %v", err)
		}
	})
}
