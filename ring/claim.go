package ring

import "slices"

// Claim returns the deterministic initial owner table for q partitions over
// nodes. The order of nodes does not matter: they are sorted, and duplicates
// are ignored. It returns nil when q < 1 or nodes is empty. With more nodes
// than partitions, the first q nodes in sorted order own one each.
//
// Two goals, in order: per-node partition counts differ by at most one, and
// every window of n consecutive partitions (cyclically) has n distinct
// owners, so that a preference list of N = n needs no more than n partitions
// of walking. With M nodes, a balanced claim can meet the second goal only
// if ceil(q/M)·n ≤ q (a node owning c partitions needs n-1 others between
// each of its partitions); Claim reaches zero violations whenever that holds
// for all tested sizes (see TestClaimGrid). Otherwise it stays balanced and
// accepts some violations; PreferenceList still returns distinct nodes
// because it skips repeats.
//
// How: think of the owner sequence as a walk around the sorted node cycle
// 0..M-1. Plain round-robin (step 1 every time) is balanced and fine inside
// the ring, but when q = k·M + r with 0 < r < M it breaks at the wrap: node 0
// comes back r partitions after its last use. Instead, let the walk take s =
// M-r steps of 2 ("skips", each passing over one node) so that it covers
// exactly k+1 full rounds and closes up seamlessly. If the s passed-over
// nodes are distinct, they own k partitions and everybody else k+1. Skips are
// spread evenly (skip j near step j·q/s); one that would pass over an
// already-skipped node is nudged to a nearby step — forwards in one
// candidate, backwards in another — and Claim keeps the first of
// round-robin, forward, backward with the fewest violations.
func Claim(q int, nodes []NodeID, n int) []NodeID {
	if q < 1 || len(nodes) == 0 {
		return nil
	}
	sorted := slices.Clone(nodes)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	m := len(sorted)

	best := roundRobin(q, m)
	bestViolations := countViolations(best, n)
	for _, dir := range []int{+1, -1} {
		if bestViolations == 0 {
			break
		}
		if c, ok := skipWalk(q, m, dir); ok {
			if v := countViolations(c, n); v < bestViolations {
				best, bestViolations = c, v
			}
		}
	}

	owners := make([]NodeID, q)
	for p, i := range best {
		owners[p] = sorted[i]
	}
	return owners
}

// roundRobin gives partition p to node p mod m. When m >= q that is one
// partition each for the first q nodes, and the rest own nothing.
func roundRobin(q, m int) []int {
	owners := make([]int, q)
	for p := range owners {
		owners[p] = p % m
	}
	return owners
}

// skipWalk builds the skip walk described on Claim, nudging colliding skips
// in direction dir (+1 forwards, -1 backwards, falling back to forwards when
// there is no room behind). ok is false when round-robin already closes the
// cycle (r == 0 or m >= q) or a skip cannot be placed before the end.
func skipWalk(q, m, dir int) (owners []int, ok bool) {
	r := q % m
	if r == 0 || m >= q {
		return nil, false
	}
	s := m - r
	isSkip := make([]bool, q)  // step p (from partition p to p+1) skips a node
	skipped := make([]bool, m) // node already passed over once
	prev := -1                 // step of the previous skip
	for j := range s {
		// Before step p the walk stands at node p+j (j skips so far), so a
		// skip at step p passes over node p+j+1.
		passed := func(p int) int { return (p + j + 1) % m }
		p := max(j*q/s, prev+1)
		if dir < 0 && skipped[passed(p)] {
			for b := p - 1; b > prev; b-- {
				if !skipped[passed(b)] {
					p = b
					break
				}
			}
		}
		for skipped[passed(p)] {
			p++
		}
		if p >= q {
			return nil, false
		}
		skipped[passed(p)] = true
		isSkip[p] = true
		prev = p
	}
	owners = make([]int, q)
	pos := 0
	for p := range owners {
		owners[p] = pos % m
		pos++
		if isSkip[p] {
			pos++
		}
	}
	return owners, true
}

// Balance summarises an owner table, for the claim balance table and tests.
type Balance struct {
	Nodes      int // distinct owners (nodes that own nothing are not counted)
	Partitions int // length of the owner table
	Min, Max   int // fewest and most partitions owned by one of those nodes
	// Violations counts the cyclic windows of n consecutive partitions, one
	// per starting partition, in which some owner appears more than once.
	Violations int
}

// Measure summarises owners for preference lists of length n.
func Measure(owners []NodeID, n int) Balance {
	counts := make(map[NodeID]int)
	for _, o := range owners {
		counts[o]++
	}
	b := Balance{
		Nodes:      len(counts),
		Partitions: len(owners),
		Violations: countViolations(owners, n),
	}
	first := true
	for _, c := range counts {
		if first || c < b.Min {
			b.Min = c
		}
		b.Max = max(b.Max, c)
		first = false
	}
	return b
}

// countViolations slides a window of n partitions once around the ring,
// keeping a count of owners seen more than once inside it.
func countViolations[T comparable](owners []T, n int) int {
	q := len(owners)
	if q == 0 || n < 2 {
		return 0
	}
	inWindow := make(map[T]int)
	repeated := 0
	add := func(o T) {
		inWindow[o]++
		if inWindow[o] == 2 {
			repeated++
		}
	}
	remove := func(o T) {
		if inWindow[o] == 2 {
			repeated--
		}
		inWindow[o]--
	}
	for i := range n {
		add(owners[i%q])
	}
	violations := 0
	for p := range q {
		if repeated > 0 {
			violations++
		}
		remove(owners[p])
		add(owners[(p+n)%q])
	}
	return violations
}
