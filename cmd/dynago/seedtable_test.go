package main

import "testing"

// The floors of the seed table: the network legs each request must wait on.
func TestSeedLegs(t *testing.T) {
	pl := []string{"n1", "n2", "n3", "n4"}
	r1w3, r3w1 := seedConfig{4, 1, 3}, seedConfig{4, 3, 1}
	for _, tc := range []struct {
		name string
		op   string
		cfg  seedConfig
		via  string
		want int
	}{
		{"client put W=3: wait for remote acks", "put", r1w3, "", 2},
		{"client put W=1: the coordinator alone", "put", r3w1, "", 0},
		{"client get R=1: the replica's own copy", "get", r1w3, "", 0},
		{"client get R=3: two remote answers", "get", r3w1, "", 2},
		{"put entering outside the list is forwarded", "put", r1w3, "n7", 4},
		{"W=1 put entering outside the list: the forward only", "put", r3w1, "n7", 2},
		{"put entering at a replica coordinates there", "put", r1w3, "n3", 2},
		{"R=1 get entering outside the list asks a replica", "get", r1w3, "n7", 2},
		{"R=1 get entering at a replica answers locally", "get", r1w3, "n2", 0},
	} {
		if got := seedLegs(tc.op, tc.cfg, pl, tc.via); got != tc.want {
			t.Errorf("%s: %d legs, want %d", tc.name, got, tc.want)
		}
	}
}
