package ring

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Rebalance returns the owner table after the cluster's members become
// exactly members, starting from owners (owners[p] owns partition p): the
// claim step of a join or leave, as in Riak. members may add joining nodes
// and drop leaving ones; its order does not matter. n is the preference list
// length N. Rebalance is deterministic: every node computes the same table
// from the same inputs.
//
// Guarantees, in order of priority:
//
//  1. Every partition is owned by a member, and per-member partition counts
//     differ by at most one. (With more members than partitions some own
//     nothing, and a Ring built from the table does not list them.)
//  2. Minimal movement, since moving a partition means streaming its data: a
//     partition changes owner only if its owner left or balance requires it,
//     and no balanced table changes fewer. With Q partitions and M members,
//     base = Q/M and extra = Q mod M, extra members end with base+1 and the
//     rest with base. The extras go first to members owning more than base
//     (most first, then by ID), each letting one of them keep a partition.
//     So the moves are the partitions of leaving nodes plus, from each member
//     owning c > base, c-base of them, less min(extra, #{c > base}) in all.
//  3. Within those moves, no new window of n consecutive partitions with a
//     repeated owner whenever a choice allows it: a member is given, where
//     at all possible, partitions where it does not already appear within
//     n-1 positions on either side. Extras left over by rule 2 go to the
//     members at or below base that fit best, since none moves less data.
//     Surplus is taken first where its owner repeats within n-1 positions,
//     which repairs a violation for free.
//
// The third goal gives way to the second in these cases, which plan_test.go
// measures against a fresh Claim:
//   - no balanced table avoids violations when ceil(Q/M)·n > Q (see Claim),
//     for example with 3 members and N = 3;
//   - violations already in owners stay on partitions that need not move;
//   - a leaving node's partitions must go to members that have to gain some,
//     and the leaver's ring neighbours are within n-1 positions of nearly all
//     of them. Shrinking a small cluster (5 to 4 members with N = 3, say)
//     therefore leaves far more violations than a fresh Claim, which would
//     however move most of the data; larger clusters get a few per leave;
//   - the assignment is greedy, then repaired by swapping the new owners of
//     moved partitions: good, but not an optimal matching.
//
// A violation costs no correctness: PreferenceList skips repeats, so it
// still lists N distinct nodes, walking a little further round the ring.
//
// Errors: ErrBadPartitions if len(owners) is not a power of two in [1,
// MaxPartitions], ErrBadN if n < 1, ErrNoNodes if members is empty,
// ErrEmptyNodeID or ErrDuplicateNode for a bad member list, and
// ErrEmptyNodeID if owners has an empty entry.
func Rebalance(owners []NodeID, members []NodeID, n int) ([]NodeID, error) {
	q := len(owners)
	if q < 1 || q > MaxPartitions || q&(q-1) != 0 {
		return nil, fmt.Errorf("%w: %d owners", ErrBadPartitions, q)
	}
	if n < 1 {
		return nil, fmt.Errorf("%w: got %d", ErrBadN, n)
	}
	if len(members) == 0 {
		return nil, ErrNoNodes
	}
	sorted := slices.Clone(members)
	slices.Sort(sorted)
	for i, id := range sorted {
		if id == "" {
			return nil, ErrEmptyNodeID
		}
		if i > 0 && sorted[i-1] == id {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateNode, id)
		}
	}
	if slices.Contains(owners, "") {
		return nil, fmt.Errorf("%w in owner table", ErrEmptyNodeID)
	}

	b := newRebalancer(owners, sorted, n)
	b.assign()
	b.improve()
	out := make([]NodeID, q)
	for p, i := range b.owners {
		out[p] = sorted[i]
	}
	return out, nil
}

// rebalancer works on member indices (members sorted, so index order is ID
// order) rather than NodeIDs, to keep the inner loops to integer compares.
//
// Final counts are q/m for every member plus one for q mod m of them (the
// "extra" partitions). Members owning more than q/m get the extras first,
// most first, since each lets one of them keep a partition. Any extras left
// after that may go to any member at or below q/m: no choice moves less
// data than another, so they stay open and go, in ID order, first to such
// members that can take a free partition cleanly, then to the rest.
type rebalancer struct {
	n      int
	owners []int  // member index per partition, or hole
	must   []int  // per member: partitions it must still gain to reach its count
	spare  []int  // per member: partitions it must still give up
	open   []bool // per member: may still take one open extra partition
	extra  int    // open extra partitions left
	moved  []int  // partitions given a new owner
}

// hole marks a partition whose owner left and which nobody owns yet.
const hole = -1

func newRebalancer(owners, members []NodeID, n int) *rebalancer {
	q, m := len(owners), len(members)
	index := make(map[NodeID]int, m)
	for i, id := range members {
		index[id] = i
	}
	b := &rebalancer{
		n:      n,
		owners: make([]int, q),
		must:   make([]int, m),
		spare:  make([]int, m),
		open:   make([]bool, m),
	}
	counts := make([]int, m)
	for p, id := range owners {
		i, ok := index[id]
		if !ok {
			i = hole
		} else {
			counts[i]++
		}
		b.owners[p] = i
	}

	base := q / m
	var over []int // members owning more than base, most first, ties by ID
	for i, c := range counts {
		if c > base {
			over = append(over, i)
		}
	}
	slices.SortStableFunc(over, func(x, y int) int { return cmp.Compare(counts[y], counts[x]) })
	fixed := min(q%m, len(over))
	b.extra = q%m - fixed
	for i, c := range counts {
		b.must[i] = max(0, base-c)
		b.spare[i] = max(0, c-base)
		b.open[i] = c <= base && b.extra > 0
	}
	for _, i := range over[:fixed] {
		b.spare[i]--
	}
	return b
}

// give moves partition p to member r, counting it against what r must gain
// first and then against an open extra partition.
func (b *rebalancer) give(p, r int) {
	if d := b.owners[p]; d != hole {
		b.spare[d]--
	}
	b.owners[p] = r
	b.moved = append(b.moved, p)
	if b.must[r] > 0 {
		b.must[r]--
	} else {
		b.open[r] = false
		b.extra--
	}
}

// crowding measures how badly giving partition p to member r would repeat r
// within windows of n partitions: each copy of r at distance d < n adds n-d,
// the number of windows holding both. Zero means r appears nowhere within
// n-1 positions of p, so p can go to r without creating a violation.
func (b *rebalancer) crowding(p, r int) int {
	q := len(b.owners)
	c := 0
	for d := 1; d < b.n && d < q; d++ {
		if b.owners[(p+d)%q] == r {
			c += b.n - d
		}
		if b.owners[(p-d+q)%q] == r {
			c += b.n - d
		}
	}
	return c
}

// assign gives out the free partitions (holes, and what members must give
// up) to the members that want them, in two rounds: first every member
// takes only partitions where it does not already appear within n-1
// positions, then the members still short take the least crowded of what is
// left. Splitting the rounds keeps a member that can only be placed badly
// from taking a partition another could have taken cleanly.
//
// Within a round the members that must gain the most (the joining nodes) go
// first, so that their partitions are spread evenly around the ring; the
// open extra partitions come after every member has what it must.
func (b *rebalancer) assign() {
	var rs []int
	for r, w := range b.must {
		if w > 0 {
			rs = append(rs, r)
		}
	}
	slices.SortStableFunc(rs, func(x, y int) int { return cmp.Compare(b.must[y], b.must[x]) })
	for _, relax := range []bool{false, true} {
		for _, r := range rs {
			b.take(r, b.must[r], relax)
		}
		for r, open := range b.open {
			if open && b.extra > 0 {
				b.take(r, 1, relax)
			}
		}
	}
}

// free reports whether partition p is up for grabs: a leaving node's, or a
// member's that must still give some up.
func (b *rebalancer) free(p int) bool {
	o := b.owners[p]
	return o == hole || b.spare[o] > 0
}

// take gives member r up to count free partitions where r does not appear
// within n-1 positions, or, if relax, exactly count of the least crowded.
//
// The clean sweeps prefer, in order: holes, evenly spaced, then any (holes
// must be filled by someone, whereas surplus can stay where it is if no one
// fits); surplus partitions whose owner repeats within n-1 positions (moving
// those repairs a violation for free); then surplus evenly spaced, then any.
// Even spacing, starting at an offset that depends on r, spreads a member's
// new partitions around the ring, so that its replicas are shared with many
// other members rather than a few.
func (b *rebalancer) take(r, count int, relax bool) {
	q := len(b.owners)
	offset := r * q / len(b.must)
	sweep := func(ok func(p int) bool, spaced bool) {
		wanted, k := count, 0
		for i := 0; i < q && count > 0; i++ {
			p := (offset + i) % q
			if spaced && i*wanted < k*q {
				continue
			}
			if ok(p) {
				b.give(p, r)
				count--
				k++
			}
		}
	}
	isHole := func(p int) bool { return b.owners[p] == hole }
	cleanHole := func(p int) bool { return isHole(p) && b.crowding(p, r) == 0 }
	cleanSurplus := func(p int) bool { return !isHole(p) && b.free(p) && b.crowding(p, r) == 0 }
	repairs := func(p int) bool { return cleanSurplus(p) && b.crowding(p, b.owners[p]) > 0 }

	if !relax {
		sweep(cleanHole, true)
		sweep(cleanHole, false)
		sweep(repairs, false)
		sweep(cleanSurplus, true)
		sweep(cleanSurplus, false)
		return
	}
	// Each pass allows the least crowding any free partition has now, so it
	// takes at least one partition and the loop ends. Free partitions remain
	// while r wants more, since what members want adds up to what is free.
	for count > 0 {
		least := math.MaxInt
		for p := range q {
			if b.free(p) {
				least = min(least, b.crowding(p, r))
			}
		}
		sweep(func(p int) bool { return b.free(p) && b.crowding(p, r) <= least }, false)
	}
}

// improve swaps the new owners of two moved partitions whenever that lowers
// the number of windows with a repeated owner. Both partitions move anyway
// and every member keeps its count, so a swap costs no data movement. It
// repairs what the one-member-at-a-time assignment gets wrong: a member
// that took clean partitions another member needed, when it had others.
//
// Each swap strictly lowers the violation count, so this ends; passes and
// the partners tried per partition (the nearest moved ones first, where the
// trades are) are capped to keep Rebalance near linear in Q on rings where
// violations cannot be avoided at all.
func (b *rebalancer) improve() {
	const passes, reach = 4, 32
	q, moved := len(b.owners), b.moved
	if q <= b.n || len(moved) < 2 {
		return // windows wrap onto themselves: every one repeats an owner
	}
	slices.Sort(moved)
	for range passes {
		improved := false
		for i, p := range moved {
			if b.crowding(p, b.owners[p]) == 0 {
				continue
			}
			for k := 1; k <= min(reach, len(moved)/2); k++ {
				j := (i + k) % len(moved)
				if b.trySwap(p, moved[j]) {
					improved = true
					break
				}
				j = (i - k + len(moved)) % len(moved)
				if b.trySwap(p, moved[j]) {
					improved = true
					break
				}
			}
		}
		if !improved {
			return
		}
	}
}

// trySwap swaps the owners of partitions p and p2 if that lowers the number
// of violating windows, and reports whether it did.
func (b *rebalancer) trySwap(p, p2 int) bool {
	if b.owners[p] == b.owners[p2] {
		return false
	}
	before := b.violationsAround(p, p2)
	b.owners[p], b.owners[p2] = b.owners[p2], b.owners[p]
	if b.violationsAround(p, p2) < before {
		return true
	}
	b.owners[p], b.owners[p2] = b.owners[p2], b.owners[p]
	return false
}

// violationsAround counts the violating windows among those holding p or
// p2: the only ones that swapping their owners can change.
func (b *rebalancer) violationsAround(p, p2 int) int {
	q := len(b.owners)
	holdsP := func(s int) bool { return (p-s+q)%q < b.n }
	count := 0
	for d := range b.n {
		if s := (p - d + q) % q; b.violated(s) {
			count++
		}
		if s := (p2 - d + q) % q; !holdsP(s) && b.violated(s) {
			count++
		}
	}
	return count
}

// violated reports whether the window of n partitions from s repeats an
// owner.
func (b *rebalancer) violated(s int) bool {
	q := len(b.owners)
	for i := range b.n {
		for j := range i {
			if b.owners[(s+i)%q] == b.owners[(s+j)%q] {
				return true
			}
		}
	}
	return false
}

// Move is a partition changing owner.
type Move struct {
	Partition int
	From, To  NodeID
}

// Moves lists the partitions whose owner differs between two owner tables
// of the same length (Rebalance's input and output), by ascending
// partition.
func Moves(oldOwners, newOwners []NodeID) []Move {
	var moves []Move
	for p := range min(len(oldOwners), len(newOwners)) {
		if oldOwners[p] != newOwners[p] {
			moves = append(moves, Move{Partition: p, From: oldOwners[p], To: newOwners[p]})
		}
	}
	return moves
}

// Transfer is data a node must receive because it enters a partition's
// preference list: From, a node holding the partition under the old ring,
// streams it to To.
type Transfer struct {
	Partition int
	From, To  NodeID
}

// Transfers lists, sorted by (Partition, To), the data each node must
// receive when the ring changes from oldRing to newRing.
//
// For partition p, let ins be the nodes of newRing's preference list that
// are not in oldRing's, and outs the nodes of oldRing's that are not in
// newRing's, each in preference-list order. ins[i] receives from outs[i]:
// the replica it replaces. An in without a matching out (the old list was
// shorter, as when the cluster had fewer than N members) receives from the
// first node of the old list that stays in the new one, or from the old
// owner if none stays. Outs without a matching in produce no transfer:
// dropping data is not a transfer, and Leaving lists it.
//
// Both rings must have the same partition count and N; Transfers panics
// otherwise, since the partitions would not correspond.
func Transfers(oldRing, newRing *Ring) []Transfer {
	mustCorrespond("Transfers", oldRing, newRing)
	var ins, outs []NodeID
	var out []Transfer
	for p := range oldRing.Partitions() {
		oldPL, newPL := oldRing.PreferenceList(p), newRing.PreferenceList(p)
		ins, outs = difference(ins[:0], newPL, oldPL), difference(outs[:0], oldPL, newPL)
		start := len(out)
		for i, to := range ins {
			var from NodeID
			if i < len(outs) {
				from = outs[i]
			} else {
				from = oldPL[0]
				if k := slices.IndexFunc(oldPL, func(id NodeID) bool { return slices.Contains(newPL, id) }); k >= 0 {
					from = oldPL[k]
				}
			}
			out = append(out, Transfer{Partition: p, From: from, To: to})
		}
		slices.SortFunc(out[start:], func(a, b Transfer) int { return cmp.Compare(a.To, b.To) })
	}
	return out
}

// Leaving returns, for each node, the partitions (ascending) whose data it
// holds under oldRing but not under newRing: it must hand them off, then
// drop them. Nodes with nothing to drop are absent. Both rings must have the
// same partition count and N; Leaving panics otherwise.
func Leaving(oldRing, newRing *Ring) map[NodeID][]int {
	mustCorrespond("Leaving", oldRing, newRing)
	leaving := make(map[NodeID][]int)
	var outs []NodeID
	for p := range oldRing.Partitions() {
		outs = difference(outs[:0], oldRing.PreferenceList(p), newRing.PreferenceList(p))
		for _, id := range outs {
			leaving[id] = append(leaving[id], p)
		}
	}
	return leaving
}

// difference appends to dst the elements of a not in b, in a's order.
// Preference lists are short, so a linear search beats a set.
func difference(dst, a, b []NodeID) []NodeID {
	for _, id := range a {
		if !slices.Contains(b, id) {
			dst = append(dst, id)
		}
	}
	return dst
}

func mustCorrespond(fn string, oldRing, newRing *Ring) {
	if oldRing.Partitions() != newRing.Partitions() || oldRing.N() != newRing.N() {
		panic(fmt.Sprintf("ring: %s of rings with different shapes: Q=%d N=%d and Q=%d N=%d",
			fn, oldRing.Partitions(), oldRing.N(), newRing.Partitions(), newRing.N()))
	}
}
