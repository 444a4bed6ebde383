package ring

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// targets parses "a>x b>y" (fallback a for primary x, ...) into Targets.
func targets(s string) []Target {
	var out []Target
	for _, f := range strings.Fields(s) {
		node, primary, _ := strings.Cut(f, ">")
		out = append(out, Target{Node: NodeID(node), For: NodeID(primary)})
	}
	return out
}

// TestStandIns pairs down primaries with fallbacks on a ring whose keys
// are placed by an injected hash: the key at position 2<<61 (partition 2 of
// 8) has preference list "a c d" and fallbacks "b e f" in ring order.
func TestStandIns(t *testing.T) {
	owners := ids("a e a c d b e f")
	r, err := FromOwners(Config{Partitions: 8, N: 3, Hash: prefixHash}, 1, owners)
	if err != nil {
		t.Fatal(err)
	}
	p := r.PartitionOf(keyAt(2 << 61))
	if pl, fbs := r.PreferenceList(p), r.Fallbacks(p); !slices.Equal(pl, ids("a c d")) || !slices.Equal(fbs, ids("b e f")) {
		t.Fatalf("partition %d: preference list %v, fallbacks %v; the table below assumes a c d / b e f", p, pl, fbs)
	}
	for _, tc := range []struct {
		name   string
		down   string
		refuse string // fallbacks usable refuses
		want   string
		asked  string // fallbacks usable was asked about, in order
	}{
		{"nobody down asks nothing", "", "", "", ""},
		{"one down takes the first fallback", "c", "", "b>c", "b"},
		{"each down primary, in order, takes the next", "d a", "", "b>d e>a", "b e"},
		{"a refused fallback is skipped", "a c", "b", "e>a f>c", "b e f"},
		{"a refused fallback is not offered to the next primary", "a c", "e", "b>a f>c", "b e f"},
		{"primaries beyond the fallbacks get none", "a c d", "e", "b>a f>c", "b e f"},
		{"everything refused", "a c", "b e f", "", "b e f"},
		{"more down than fallbacks", "a c d a", "", "b>a e>c f>d", "b e f"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked []NodeID
			got := r.StandIns(p, ids(tc.down), func(fb NodeID) bool {
				asked = append(asked, fb)
				return !slices.Contains(ids(tc.refuse), fb)
			})
			if !slices.Equal(got, targets(tc.want)) {
				t.Errorf("StandIns(%q) refusing %q = %v, want %v", tc.down, tc.refuse, got, targets(tc.want))
			}
			if !slices.Equal(asked, ids(tc.asked)) {
				t.Errorf("usable was asked about %v, want %v (ring order, each once)", asked, ids(tc.asked))
			}
		})
	}
}

// TestStandInsNeverRepeats checks, over every partition of a random-ish
// ring and every set of down primaries, that no fallback stands in twice,
// none is a primary, and usable is asked about fallbacks in ring order.
func TestStandInsNeverRepeats(t *testing.T) {
	r, err := New(Config{Partitions: 16, N: 3}, nodeNames(7))
	if err != nil {
		t.Fatal(err)
	}
	for p := range r.Partitions() {
		pl, fbs := r.PreferenceList(p), r.Fallbacks(p)
		for mask := range 1 << len(pl) {
			var down []NodeID
			for i, id := range pl {
				if mask&(1<<i) != 0 {
					down = append(down, id)
				}
			}
			var asked []NodeID
			got := r.StandIns(p, down, func(fb NodeID) bool {
				asked = append(asked, fb)
				return fb != fbs[0] // refuse one, to exercise skipping
			})
			name := fmt.Sprintf("p=%d down=%v", p, down)
			if !slices.Equal(asked, fbs[:len(asked)]) {
				t.Errorf("%s: asked %v, not a prefix of the fallbacks %v", name, asked, fbs)
			}
			want := min(len(down), len(fbs)-1)
			if len(got) != want {
				t.Errorf("%s: %d stand-ins, want %d", name, len(got), want)
			}
			seen := map[NodeID]bool{}
			for i, tg := range got {
				if seen[tg.Node] || slices.Contains(pl, tg.Node) || tg.For != down[i] {
					t.Errorf("%s: bad stand-in %d: %+v in %v", name, i, tg, got)
				}
				seen[tg.Node] = true
			}
		}
	}
}
