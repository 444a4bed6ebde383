package ring

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestRebalanceExamples spells out small joins and leaves. Each want is the
// whole owner table; the comments say why it is the right one.
func TestRebalanceExamples(t *testing.T) {
	for _, tc := range []struct {
		name           string
		owners         string
		members        string
		want           string
		wantViolations int
	}{
		{
			// d takes one partition from each of the two nodes owning 3, at
			// least 3 apart from each other: no window of 3 repeats a node.
			name:    "Q=8 join 3 to 4",
			owners:  "a b c a b c a b",
			members: "a b c d",
			want:    "a d c a b c d b",
		},
		{
			// d's partitions sit between c and a, b: every remaining node is
			// within 2 of both, so both placements repeat a node. A fresh
			// Claim has 2 violations but would move 5 partitions, not 2.
			name:           "Q=8 leave 4 to 3",
			owners:         "a b c d a b c d",
			members:        "a b c",
			want:           "a b c a a b c b",
			wantViolations: 4,
		},
		{
			name:    "Q=16 join 3 to 4",
			owners:  "a b c a b c a b c a b c a b c a",
			members: "a b c d",
			want:    "a b d a b c a d c a b c d b c d",
		},
		{
			name:           "Q=16 leave 4 to 3",
			owners:         "a b c d a b c d a b c d a b c d",
			members:        "a b c",
			want:           "a b c a a b c b a b c c a b c a",
			wantViolations: 8,
		},
		{
			// A replacement moves exactly the leaver's partitions.
			name:    "Q=16 d replaced by e",
			owners:  "a b c d a b c d a b c d a b c d",
			members: "a b c e",
			want:    "a b c e a b c e a b c e a b c e",
		},
		{
			// b, c and d need one partition each. c fits only at 7 and d
			// only at 11; b then has to take 3, with its own partition at 5
			// two away: the one violation is forced.
			name:           "Q=16 leave 5 to 4",
			owners:         "a c d e a b d e a b c e a b c d",
			members:        "a b c d",
			want:           "a c d b a b d c a b c d a b c d",
			wantViolations: 1,
		},
		{
			name:    "Q=16 join 4 to 6",
			owners:  "a b c d a b c d a b c d a b c d",
			members: "a b c d e f",
			want:    "a b c e a b c d f b e d a f c d",
		},
		{
			// a owns 4 of 8 and keeps 3 (8 over 3 is 3, 3, 2). b and c own
			// 2 each, so either may take the fourth without moving more
			// data; b, first by ID, takes 0, at least 3 from its own. The
			// 7 violations are a's and c's, which stay where nothing had
			// to move.
			name:           "Q=8 lopsided",
			owners:         "a a a a b b c c",
			members:        "a b c",
			want:           "b a a a b b c c",
			wantViolations: 7,
		},
		{
			name:    "Q=8 no change",
			owners:  "a b c d a b c d",
			members: "d c b a",
			want:    "a b c d a b c d",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			owners, members := ids(tc.owners), ids(tc.members)
			got, err := Rebalance(owners, members, 3)
			if err != nil {
				t.Fatal(err)
			}
			if want := ids(tc.want); !slices.Equal(got, want) {
				t.Errorf("Rebalance = %v, want %v", got, want)
			}
			checkRebalance(t, owners, members, got)
			if v := Measure(got, 3).Violations; v != tc.wantViolations {
				t.Errorf("%d violations, want %d", v, tc.wantViolations)
			}
		})
	}
}

func TestRebalanceRejects(t *testing.T) {
	owners := ids("a b c d a b c d")
	for _, tc := range []struct {
		name    string
		owners  []NodeID
		members []NodeID
		n       int
		want    error
	}{
		{"no owners", nil, ids("a"), 3, ErrBadPartitions},
		{"Q=3", ids("a b c"), ids("a"), 3, ErrBadPartitions},
		{"Q=12", ids("a b c d a b c d a b c d"), ids("a"), 3, ErrBadPartitions},
		{"n=0", owners, ids("a"), 0, ErrBadN},
		{"no members", owners, nil, 3, ErrNoNodes},
		{"empty member", owners, []NodeID{"a", ""}, 3, ErrEmptyNodeID},
		{"duplicate member", owners, ids("a b a"), 3, ErrDuplicateNode},
		{"empty owner", []NodeID{"a", ""}, ids("a"), 3, ErrEmptyNodeID},
	} {
		got, err := Rebalance(tc.owners, tc.members, tc.n)
		if !errors.Is(err, tc.want) || got != nil {
			t.Errorf("%s: Rebalance = %v, %v; want nil, %v", tc.name, got, err, tc.want)
		}
	}

	members := ids("c a e")
	if _, err := Rebalance(owners, members, 3); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(owners, ids("a b c d a b c d")) || !slices.Equal(members, ids("c a e")) {
		t.Errorf("Rebalance modified its arguments: owners %v, members %v", owners, members)
	}
}

// minMoves is the fewest partitions any balanced owner table over members
// must take from owners. With Q partitions, M members and base = Q/M, every
// member ends with base or base+1, and exactly Q mod M of them with base+1.
// So every partition of a node not in members moves, and a member owning
// c > base gives up c-base, or c-base-1 if it is one of those with base+1.
// Hence:
//
//	min = #{p: owners[p] ∉ members}
//	    + Σ_{m ∈ members, c_m > base} (c_m - base)
//	    - min(Q mod M, #{m ∈ members: c_m > base})
func minMoves(owners, members []NodeID) int {
	counts := make(map[NodeID]int)
	for _, o := range owners {
		counts[o]++
	}
	q, m := len(owners), len(members)
	base := q / m
	moves, over := 0, 0
	for _, o := range owners {
		if !slices.Contains(members, o) {
			moves++
		}
	}
	for _, id := range members {
		if c := counts[id]; c > base {
			moves += c - base
			over++
		}
	}
	return moves - min(q%m, over)
}

// checkRebalance checks Rebalance's first two guarantees for a result.
func checkRebalance(t *testing.T, owners, members, got []NodeID) {
	t.Helper()
	if len(got) != len(owners) {
		t.Fatalf("%d owners, want %d", len(got), len(owners))
	}
	counts := make(map[NodeID]int)
	for _, o := range got {
		counts[o]++
	}
	for o := range counts {
		if !slices.Contains(members, o) {
			t.Errorf("%s owns %d partitions but is not a member", o, counts[o])
		}
	}
	lo, hi := len(got), 0
	for _, id := range members { // members owning nothing count as 0
		lo, hi = min(lo, counts[id]), max(hi, counts[id])
	}
	if hi-lo > 1 {
		t.Errorf("per-member counts range %d..%d", lo, hi)
	}

	moves := Moves(owners, got)
	if want := minMoves(owners, members); len(moves) != want {
		t.Errorf("%d partitions moved, want the minimum %d", len(moves), want)
	}
	// A member that both gained and lost partitions moved data for nothing.
	gained, lost := make(map[NodeID]int), make(map[NodeID]int)
	for _, mv := range moves {
		gained[mv.To]++
		lost[mv.From]++
	}
	for id := range gained {
		if lost[id] > 0 {
			t.Errorf("%s gained %d partitions and lost %d", id, gained[id], lost[id])
		}
	}
}

// change is one membership change in the seeded property tests: join
// joiners new nodes and remove leavers random members, keeping at least
// minMembers.
func change(rng *rand.Rand, members []NodeID, joiners, leavers int, fresh *int) []NodeID {
	const minMembers = 3 // N
	next := slices.Clone(members)
	for range min(leavers, len(next)-minMembers) {
		i := rng.IntN(len(next))
		next = slices.Delete(next, i, i+1)
	}
	for range joiners {
		*fresh++
		next = append(next, NodeID(fmt.Sprintf("j%03d", *fresh)))
	}
	return next
}

// rebalanceCase is a starting owner table and the members after a change.
type rebalanceCase struct {
	kind           string // join, leave or join+leave
	owners         []NodeID
	after          []NodeID // members after the change
	q, membersFrom int
}

// rebalanceCases are the seeded changes of the property tests: for M in
// 3..20 and Q in {64, 256, 1024}, starting from Claim, a join of 1-3 nodes,
// a leave of 1-2 (keeping at least N = 3 members) and both at once.
func rebalanceCases() []rebalanceCase {
	rng := rand.New(rand.NewPCG(7, 8))
	var cases []rebalanceCase
	fresh := 0
	for _, q := range []int{64, 256, 1024} {
		for m := 3; m <= 20; m++ {
			before := nodeNames(m)
			owners := Claim(q, before, 3)
			for _, kind := range []string{"join", "leave", "join+leave"} {
				joiners, leavers := 1+rng.IntN(3), 1+rng.IntN(2)
				switch kind {
				case "join":
					leavers = 0
				case "leave":
					joiners = 0
					if m == 3 {
						continue // nobody can leave
					}
				}
				after := change(rng, before, joiners, leavers, &fresh)
				cases = append(cases, rebalanceCase{kind, owners, after, q, m})
			}
		}
	}
	return cases
}

// TestRebalanceProperties runs the seeded changes, and a second random
// change from each result (an owner table Claim would not produce), and
// checks balance, minimal movement, determinism, and that Transfers and
// Leaving match the preference lists computed the slow way.
func TestRebalanceProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	fresh := 1000
	for _, tc := range rebalanceCases() {
		owners, members := tc.owners, tc.after
		for step := range 2 {
			name := fmt.Sprintf("%s Q=%d M=%d step %d to %d members", tc.kind, tc.q, tc.membersFrom, step, len(members))
			got, err := Rebalance(owners, members, 3)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			t.Run(name, func(t *testing.T) {
				checkRebalance(t, owners, members, got)
				for range 3 {
					shuffled := slices.Clone(members)
					rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
					if again, _ := Rebalance(owners, shuffled, 3); !slices.Equal(again, got) {
						t.Fatalf("Rebalance with members %v differs from members %v", shuffled, members)
					}
				}
				checkPlans(t, owners, got, 3)
			})
			owners = got
			members = change(rng, members, rng.IntN(3), rng.IntN(3), &fresh)
		}
	}
}

// refPreferenceList is the preference list by definition, the slow way.
func refPreferenceList(owners []NodeID, n, p int) []NodeID {
	var pl []NodeID
	for i := 0; i < len(owners) && len(pl) < n; i++ {
		if o := owners[(p+i)%len(owners)]; !slices.Contains(pl, o) {
			pl = append(pl, o)
		}
	}
	return pl
}

// checkPlans checks Transfers and Leaving for a change of owner table
// against preference lists computed by refPreferenceList.
func checkPlans(t *testing.T, oldOwners, newOwners []NodeID, n int) {
	t.Helper()
	cfg := Config{Partitions: len(oldOwners), N: n}
	oldRing, err := FromOwners(cfg, 1, oldOwners)
	if err != nil {
		t.Fatal(err)
	}
	newRing, err := FromOwners(cfg, 2, newOwners)
	if err != nil {
		t.Fatal(err)
	}

	type entry struct {
		p  int
		id NodeID
	}
	wantIn, wantOut := make(map[entry]bool), make(map[NodeID][]int)
	for p := range oldOwners {
		oldPL, newPL := refPreferenceList(oldOwners, n, p), refPreferenceList(newOwners, n, p)
		for _, id := range newPL {
			if !slices.Contains(oldPL, id) {
				wantIn[entry{p, id}] = true
			}
		}
		for _, id := range oldPL {
			if !slices.Contains(newPL, id) {
				wantOut[id] = append(wantOut[id], p)
			}
		}
	}

	transfers := Transfers(oldRing, newRing)
	gotIn := make(map[entry]bool)
	for i, tr := range transfers {
		if i > 0 && cmp.Or(cmp.Compare(transfers[i-1].Partition, tr.Partition), cmp.Compare(transfers[i-1].To, tr.To)) >= 0 {
			t.Fatalf("Transfers not strictly ascending by (partition, to): %v then %v", transfers[i-1], tr)
		}
		if !slices.Contains(refPreferenceList(oldOwners, n, tr.Partition), tr.From) {
			t.Errorf("%+v: From is not in the old preference list %v", tr, refPreferenceList(oldOwners, n, tr.Partition))
		}
		gotIn[entry{tr.Partition, tr.To}] = true
	}
	if !maps.Equal(gotIn, wantIn) {
		t.Errorf("Transfers deliver to %d (partition, node) pairs, want the %d new preference-list entries", len(gotIn), len(wantIn))
	}
	if got := Leaving(oldRing, newRing); !maps.EqualFunc(got, wantOut, slices.Equal) {
		t.Errorf("Leaving = %v, want %v", got, wantOut)
	}
}

// countOwned is how many partitions id owns in owners.
func countOwned(owners []NodeID, id NodeID) int {
	c := 0
	for _, o := range owners {
		if o == id {
			c++
		}
	}
	return c
}

// TestRebalanceJoinThenLeave joins a node and then removes it again: both
// steps stay balanced and minimal, the second moves exactly the joiner's
// partitions, and the ring ends no worse on the window rule.
func TestRebalanceJoinThenLeave(t *testing.T) {
	for _, q := range []int{64, 256, 1024} {
		for _, m := range []int{3, 4, 5, 8, 13, 20} {
			members := nodeNames(m)
			start := Claim(q, members, 3)
			withX := append(slices.Clone(members), "x")
			mid, err := Rebalance(start, withX, 3)
			if err != nil {
				t.Fatal(err)
			}
			end, err := Rebalance(mid, members, 3)
			if err != nil {
				t.Fatal(err)
			}
			t.Run(fmt.Sprintf("Q=%d M=%d", q, m), func(t *testing.T) {
				checkRebalance(t, start, withX, mid)
				checkRebalance(t, mid, members, end)
				if got, want := len(Moves(mid, end)), countOwned(mid, "x"); got != want {
					t.Errorf("leave moved %d partitions, want x's %d", got, want)
				}
				// x's partitions go back where they fit: the round trip
				// leaves no more violations than it started with.
				if got, before := Measure(end, 3).Violations, Measure(start, 3).Violations; got > before {
					t.Errorf("%d violations after the round trip, %d before", got, before)
				}
			})
		}
	}
}

// rebalanceViolations summarises how Rebalance does on the window rule
// against a fresh Claim over the same members, on rebalanceCases (N = 3;
// members after the change in the second column). Numbers are averages per
// case, as a percentage of the Q windows or Q partitions; "worst" is the
// largest. A fresh Claim would repair everything but move most of the data.
// Joins never create violations. Leaves do, because the leaver's
// partitions must go to nodes that need partitions, and its ring
// neighbours are among those but within 2 of all of them; with 5 members
// or fewer that is nearly everyone. TestRebalanceViolations keeps this
// table current.
const rebalanceViolations = `
| change     | members | cases | with violations | violations | worst | Claim violations | moved | Claim moved |
|------------|---------|------:|----------------:|-----------:|------:|-----------------:|------:|------------:|
| join       | 3-5     |     3 |               0 |       0.0% |  0.0% |             0.0% | 33.0% |       80.5% |
| join       | 6-10    |    14 |               0 |       0.0% |  0.0% |             0.0% | 28.3% |       83.9% |
| join       | 11-23   |    37 |               0 |       0.0% |  0.0% |             0.0% | 12.5% |       93.6% |
| leave      | 3-5     |    11 |              11 |      29.1% | 50.0% |             0.4% | 25.0% |       80.2% |
| leave      | 6-10    |    13 |              11 |       4.8% | 10.5% |             0.0% | 16.8% |       87.8% |
| leave      | 11-23   |    27 |              17 |       1.3% |  4.7% |             0.0% |  9.6% |       90.3% |
| join+leave | 3-5     |     6 |               2 |       4.2% | 24.8% |             0.0% | 37.1% |       77.8% |
| join+leave | 6-10    |    17 |               2 |       0.3% |  5.1% |             0.0% | 29.4% |       85.8% |
| join+leave | 11-23   |    31 |               0 |       0.0% |  0.0% |             0.0% | 13.2% |       91.2% |
`

// TestRebalanceViolations measures the window rule on rebalanceCases and
// checks the result against rebalanceViolations.
func TestRebalanceViolations(t *testing.T) {
	type row struct {
		cases, withViolations                                 int
		violations, worst, claimViolations, moved, claimMoved float64
	}
	rows := make(map[[2]string]*row)
	band := func(m int) string {
		switch {
		case m <= 5:
			return "3-5"
		case m <= 10:
			return "6-10"
		default:
			return "11-23"
		}
	}
	for _, tc := range rebalanceCases() {
		got, err := Rebalance(tc.owners, tc.after, 3)
		if err != nil {
			t.Fatal(err)
		}
		claim := Claim(tc.q, tc.after, 3)
		v, vBefore := Measure(got, 3).Violations, Measure(tc.owners, 3).Violations
		if tc.kind == "join" && v > vBefore {
			t.Errorf("join Q=%d M=%d -> %d: %d violations, %d before", tc.q, tc.membersFrom, len(tc.after), v, vBefore)
		}
		key := [2]string{tc.kind, band(len(tc.after))}
		r := rows[key]
		if r == nil {
			r = &row{}
			rows[key] = r
		}
		pct := func(x int) float64 { return 100 * float64(x) / float64(tc.q) }
		r.cases++
		if v > 0 {
			r.withViolations++
		}
		r.violations += pct(v)
		r.worst = max(r.worst, pct(v))
		r.claimViolations += pct(Measure(claim, 3).Violations)
		r.moved += pct(len(Moves(tc.owners, got)))
		r.claimMoved += pct(len(Moves(tc.owners, claim)))
	}

	var b strings.Builder
	b.WriteString("\n| change     | members | cases | with violations | violations | worst | Claim violations | moved | Claim moved |\n")
	b.WriteString("|------------|---------|------:|----------------:|-----------:|------:|-----------------:|------:|------------:|\n")
	for _, kind := range []string{"join", "leave", "join+leave"} {
		for _, m := range []string{"3-5", "6-10", "11-23"} {
			r := rows[[2]string{kind, m}]
			if r == nil {
				continue
			}
			c := float64(r.cases)
			fmt.Fprintf(&b, "| %-10s | %-7s | %5d | %15d | %9.1f%% | %4.1f%% | %15.1f%% | %4.1f%% | %10.1f%% |\n",
				kind, m, r.cases, r.withViolations, r.violations/c, r.worst, r.claimViolations/c, r.moved/c, r.claimMoved/c)
		}
	}
	if got := b.String(); got != rebalanceViolations {
		t.Errorf("rebalanceViolations is out of date; if the change is intended, replace it with:\n%s", got)
	}
}

func TestMoves(t *testing.T) {
	got := Moves(ids("a b c d a b c d"), ids("a x c d a b c y"))
	want := []Move{{1, "b", "x"}, {7, "d", "y"}}
	if !slices.Equal(got, want) {
		t.Errorf("Moves = %v, want %v", got, want)
	}
	if got := Moves(ids("a b"), ids("a b")); len(got) != 0 {
		t.Errorf("Moves of equal tables = %v, want none", got)
	}
}

// TestTransfersExamples works through small changes by hand.
func TestTransfersExamples(t *testing.T) {
	for _, tc := range []struct {
		name     string
		n        int
		old, new string
		want     []Transfer
		leaving  map[NodeID][]int
	}{
		{
			// The Q=8 join above with N = 2. At 0 and 1, d replaces b as a
			// replica and gets the data from b; at 5 and 6 it replaces a.
			name: "join",
			n:    2,
			old:  "a b c a b c a b",
			new:  "a d c a b c d b",
			want: []Transfer{{0, "b", "d"}, {1, "b", "d"}, {5, "a", "d"}, {6, "a", "d"}},
			leaving: map[NodeID][]int{
				"a": {5, 6},
				"b": {0, 1},
			},
		},
		{
			// With 2 members and N = 3 preference lists have 2 nodes; c
			// joins every list without replacing anyone, so it gets the
			// data from the first old replica that stays: b at 3, though c
			// becomes the owner there.
			name: "grow past N",
			n:    3,
			old:  "a b a b",
			new:  "a b a c",
			want: []Transfer{{0, "a", "c"}, {1, "b", "c"}, {2, "a", "c"}, {3, "b", "c"}},
		},
		{
			// Shrinking below N only drops data: no transfers.
			name:    "shrink below N",
			n:       3,
			old:     "a b a c",
			new:     "a b a b",
			leaving: map[NodeID][]int{"c": {0, 1, 2, 3}},
		},
		{
			// Nobody stays: b gets the data from a, the replica it
			// replaces, and c, replacing nobody, from the old owner a.
			name: "nobody stays",
			n:    2,
			old:  "a a",
			new:  "b c",
			want: []Transfer{{0, "a", "b"}, {0, "a", "c"}, {1, "a", "b"}, {1, "a", "c"}},
			leaving: map[NodeID][]int{
				"a": {0, 1},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			oldOwners, newOwners := ids(tc.old), ids(tc.new)
			cfg := Config{Partitions: len(oldOwners), N: tc.n}
			oldRing, err := FromOwners(cfg, 1, oldOwners)
			if err != nil {
				t.Fatal(err)
			}
			newRing, err := FromOwners(cfg, 2, newOwners)
			if err != nil {
				t.Fatal(err)
			}
			if got := Transfers(oldRing, newRing); !slices.Equal(got, tc.want) {
				t.Errorf("Transfers = %v, want %v", got, tc.want)
			}
			if got := Leaving(oldRing, newRing); !maps.EqualFunc(got, tc.leaving, slices.Equal) {
				t.Errorf("Leaving = %v, want %v", got, tc.leaving)
			}
			checkPlans(t, oldOwners, newOwners, tc.n)
		})
	}
}

func TestPlansRejectDifferentShapes(t *testing.T) {
	mustRing := func(q, n int) *Ring {
		r, err := New(Config{Partitions: q, N: n}, ids("a b c"))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	base := mustRing(8, 3)
	for _, other := range []*Ring{mustRing(16, 3), mustRing(8, 2)} {
		for name, plan := range map[string]func(){
			"Transfers": func() { Transfers(base, other) },
			"Leaving":   func() { Leaving(base, other) },
		} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s of Q=%d N=%d and Q=%d N=%d did not panic", name, base.Partitions(), base.N(), other.Partitions(), other.N())
					}
				}()
				plan()
			}()
		}
	}
}

func BenchmarkRebalance(b *testing.B) {
	const q, m = 1024, 64
	nodes := nodeNames(m)
	owners := Claim(q, nodes, 3)
	for _, tc := range []struct {
		name    string
		members []NodeID
	}{
		{"join", append(slices.Clone(nodes), "new")},
		{"leave", nodes[1:]},
	} {
		b.Run(fmt.Sprintf("Q=%d/M=%d/%s", q, m, tc.name), func(b *testing.B) {
			for b.Loop() {
				if _, err := Rebalance(owners, tc.members, 3); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
