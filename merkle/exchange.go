package merkle

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// Errors Exchange.Receive returns for answers it cannot use.
var (
	// ErrNotWanted: the answer is for a node the exchange is not waiting
	// for (a duplicate or a stray reply). Callers may drop it.
	ErrNotWanted = errors.New("merkle: answer for a node not wanted")
	// ErrShape: the answer has the wrong number of children, so the remote
	// tree has another Config (or does not have the node). The exchange
	// cannot continue with this peer.
	ErrShape = errors.New("merkle: answer does not match the tree's shape")
)

// NodeRef addresses a tree node: see Tree for the (level, index) scheme.
// A request for a NodeRef is answered with remote.Level(ref.Level,
// ref.Index).
type NodeRef struct {
	Level, Index int
}

// Exchange is the initiator's side of one anti-entropy comparison with
// another replica of the partition, as a message-driven state machine:
//
//	e := merkle.NewExchange(tree)
//	for !e.Done() {
//		refs := e.Want()                  // send these in one request
//		for each answered ref: e.Receive(ref, children) // remote: tree.Level(ref.Level, ref.Index)
//	}
//	e.Buckets()                            // scan and exchange these buckets' keys
//
// It starts by asking for the root's children and descends only into
// children whose hashes differ, so a single differing key costs Depth
// requests of one node each. Want always lists every node still unanswered,
// so re-sending Want after a lost or partial reply is the whole retry
// story.
//
// The local tree is read at each Receive, not snapshotted: writes during an
// exchange (on either side) may add or hide a difference, which the next
// exchange settles. Anti-entropy only needs to converge, not to be exact at
// an instant.
type Exchange struct {
	local   *Tree
	pending map[NodeRef]struct{}
	buckets []int
}

// NewExchange starts a comparison of local with a remote tree of the same
// Config.
func NewExchange(local *Tree) *Exchange {
	return &Exchange{
		local:   local,
		pending: map[NodeRef]struct{}{{Level: 0, Index: 0}: {}},
	}
}

// Want returns the nodes whose child hashes the exchange needs, sorted by
// level then index; empty once Done.
func (e *Exchange) Want() []NodeRef {
	refs := make([]NodeRef, 0, len(e.pending))
	for r := range e.pending {
		refs = append(refs, r)
	}
	slices.SortFunc(refs, func(a, b NodeRef) int {
		return cmp.Or(cmp.Compare(a.Level, b.Level), cmp.Compare(a.Index, b.Index))
	})
	return refs
}

// Receive takes the remote replica's child hashes of ref (its
// Level(ref.Level, ref.Index)) and compares them with the local ones:
// differing leaf buckets are recorded, differing interior children are
// added to Want. A remote child hash of 0 means the remote subtree is
// empty, so every non-empty local bucket under it differs; they are
// recorded at once without asking for the subtree.
func (e *Exchange) Receive(ref NodeRef, children []uint64) error {
	if _, ok := e.pending[ref]; !ok {
		return fmt.Errorf("%w: %+v", ErrNotWanted, ref)
	}
	t := e.local
	local := t.current(ref.Level, ref.Index)
	if len(children) != len(local) {
		return fmt.Errorf("%w: %+v has %d children here, %d in the answer", ErrShape, ref, len(local), len(children))
	}
	delete(e.pending, ref)
	first := ref.Index << t.shift[ref.Level]
	for j, h := range children {
		if h == local[j] {
			continue
		}
		child := NodeRef{Level: ref.Level + 1, Index: first + j}
		switch {
		case child.Level == t.depth:
			e.buckets = append(e.buckets, child.Index)
		case h == 0:
			e.buckets = t.appendNonEmpty(e.buckets, child.Level, child.Index)
		default:
			e.pending[child] = struct{}{}
		}
	}
	return nil
}

// Done reports whether every differing subtree has been narrowed down to
// its leaf buckets.
func (e *Exchange) Done() bool { return len(e.pending) == 0 }

// Buckets returns the differing leaf buckets found so far, ascending; the
// full set once Done. A caller may start repairing before Done.
func (e *Exchange) Buckets() []int {
	out := slices.Clone(e.buckets)
	slices.Sort(out)
	return out
}

// current returns the tree's up-to-date child hashes of (level, index),
// aliasing the tree's storage. The caller must not keep or modify them.
func (t *Tree) current(level, index int) []uint64 {
	lo, hi, ok := t.children(level, index)
	if !ok {
		return nil
	}
	if level+1 < t.depth {
		// Test the flag here rather than in a call per child: most
		// children are clean after a few writes.
		first := lo - t.off[level+1]
		for c := lo; c < hi; c++ {
			if t.dirty[c] {
				t.refresh(level+1, first+c-lo)
			}
		}
	}
	return t.nodes[lo:hi]
}

// appendNonEmpty appends the non-empty leaf buckets under (level, index).
func (t *Tree) appendNonEmpty(dst []int, level, index int) []int {
	lo, hi := index, index+1
	for l := level; l < t.depth; l++ {
		lo, hi = lo<<t.shift[l], hi<<t.shift[l]
	}
	leaves := t.nodes[t.off[t.depth]:]
	for b := lo; b < hi; b++ {
		if leaves[b] != 0 {
			dst = append(dst, b)
		}
	}
	return dst
}
