package merkle

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
)

// Default shape. 1024 buckets keep a bucket small (a partition of 100k keys
// has about 100 keys per bucket, so one differing key costs a scan of ~100
// keys) while the whole tree stays under 10 KiB per partition. Fan-out 16
// makes a single-key difference cost Depth = 3 round trips of at most 16
// hashes each.
const (
	DefaultLeaves = 1024
	DefaultFanout = 16

	// MaxLeaves bounds the memory of one tree (8 bytes per bucket) so a
	// misconfiguration cannot allocate gigabytes per partition.
	MaxLeaves = 1 << 22
	// MaxFanout bounds the size of one Level answer.
	MaxFanout = 1 << 10
)

// ErrConfig reports an invalid tree shape.
var ErrConfig = errors.New("merkle: invalid config")

// Config is a tree's shape. Every replica of a partition must use the same
// Config, since trees are compared position by position.
type Config struct {
	// Leaves is the number of leaf buckets: a power of two, at least
	// Fanout and at most MaxLeaves. Zero means DefaultLeaves.
	Leaves int
	// Fanout is the number of children of an interior node: a power of
	// two from 2 to MaxFanout. Zero means DefaultFanout. When Leaves is not
	// a power of Fanout the root has fewer children (see Tree.Level).
	Fanout int
}

// validate fills defaults and rejects shapes the tree cannot have.
func (c *Config) validate() error {
	if c.Leaves == 0 {
		c.Leaves = DefaultLeaves
	}
	if c.Fanout == 0 {
		c.Fanout = DefaultFanout
	}
	switch {
	case c.Fanout < 2 || c.Fanout > MaxFanout || !isPow2(c.Fanout):
		return fmt.Errorf("%w: fanout %d is not a power of two in [2, %d]", ErrConfig, c.Fanout, MaxFanout)
	case c.Leaves < c.Fanout || c.Leaves > MaxLeaves || !isPow2(c.Leaves):
		return fmt.Errorf("%w: leaves %d is not a power of two in [fanout %d, %d]", ErrConfig, c.Leaves, c.Fanout, MaxLeaves)
	}
	return nil
}

func isPow2(n int) bool { return n > 0 && n&(n-1) == 0 }

// Tree is one partition's hash tree on one replica.
//
// Nodes are addressed by (level, index): level 0 holds only the root
// (index 0), level Depth holds the leaf buckets (index = bucket), and the
// children of (l, i) are the nodes (l+1, i·k .. i·k+k-1) where k is the
// fan-out of level l. Every level has fan-out Fanout except the root, which
// takes the remainder when Leaves is not a power of Fanout (1024 leaves at
// fan-out 16: the root has 4 children, then 64 nodes, then 1024 buckets).
// Putting the remainder at the root keeps the first request of an exchange
// small rather than the many requests near the leaves.
type Tree struct {
	cfg   Config
	depth int
	// shift[l] is log2 of the fan-out of level l (child index = i<<shift + j).
	shift []uint
	// off[l] is where level l starts in nodes; off[depth] is the first leaf.
	off []int
	// nodes holds every node hash, level by level. Leaf hashes are always
	// current; an interior hash is current only when its dirty flag is off.
	nodes []uint64
	// dirty[n] marks interior node n (flat index below off[depth]) as
	// stale. Invariant: a dirty node's ancestors are dirty, which lets
	// Update stop climbing at the first ancestor already marked.
	dirty []bool
	keys  int
	buf   []byte // scratch for combine, 8 bytes per child
}

// New returns an empty tree of the given shape.
func New(cfg Config) (*Tree, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	lf, ff := bits.TrailingZeros(uint(cfg.Leaves)), bits.TrailingZeros(uint(cfg.Fanout))
	depth := (lf + ff - 1) / ff
	t := &Tree{cfg: cfg, depth: depth, shift: make([]uint, depth), off: make([]int, depth+1)}
	for l := range depth {
		t.shift[l] = uint(ff)
	}
	if r := lf % ff; r != 0 {
		t.shift[0] = uint(r)
	}
	width, total := 1, 0
	for l := 0; l <= depth; l++ {
		t.off[l] = total
		total += width
		if l < depth {
			width <<= t.shift[l]
		}
	}
	t.nodes = make([]uint64, total)
	t.dirty = make([]bool, t.off[depth])
	t.buf = make([]byte, 8*cfg.Fanout)
	return t, nil
}

// Config returns the tree's shape with defaults filled in, for checking
// that two replicas can compare trees.
func (t *Tree) Config() Config { return t.cfg }

// Depth is the number of levels below the root; leaf buckets are at level
// Depth.
func (t *Tree) Depth() int { return t.depth }

// Width returns the number of nodes at level (1 for the root, Leaves at
// Depth), or 0 when level is out of range.
func (t *Tree) Width(level int) int {
	if level < 0 || level > t.depth {
		return 0
	}
	if level == t.depth {
		return len(t.nodes) - t.off[level]
	}
	return t.off[level+1] - t.off[level]
}

// Bucket returns the leaf bucket of key, in [0, Leaves).
func (t *Tree) Bucket(key []byte) int {
	return t.bucketOf(keyHash(key))
}

func (t *Tree) bucketOf(kh uint64) int {
	return int(bucketMix(kh) & uint64(t.cfg.Leaves-1))
}

// Keys returns the number of keys present: Updates from absent to present
// minus those from present to absent. It is exact as long as callers pass
// the version each key really had.
func (t *Tree) Keys() int { return t.keys }

// Update records that key changed from version oldVersion to newVersion,
// both object.Hash values of the stored encodings, 0 meaning absent. It is
// O(1) amortized and does not allocate. The tree is only as right as
// oldVersion: passing a version the tree never saw leaves a ghost
// contribution behind (rebuild with Reset and a storage scan to recover).
//
// A real encoding whose hash is 0 would be treated as absent; with 64-bit
// hashes that happens with probability 2^-64 per write.
func (t *Tree) Update(key []byte, oldVersion, newVersion uint64) {
	if oldVersion == newVersion {
		return
	}
	kh := keyHash(key)
	var delta uint64
	if oldVersion != 0 {
		delta ^= contribution(kh, oldVersion)
	} else {
		t.keys++
	}
	if newVersion != 0 {
		delta ^= contribution(kh, newVersion)
	} else {
		t.keys--
	}
	b := t.bucketOf(kh)
	t.nodes[t.off[t.depth]+b] ^= delta
	// Mark ancestors stale, stopping at the first one already stale (its
	// own ancestors are then stale too), so a burst of writes costs O(1)
	// each.
	i := b
	for l := t.depth - 1; l >= 0; l-- {
		i >>= t.shift[l]
		n := t.off[l] + i
		if t.dirty[n] {
			return
		}
		t.dirty[n] = true
	}
}

// Root returns the root hash: 0 for an empty tree, equal on two replicas
// of the same shape exactly when (up to 64-bit collisions) they hold the
// same keys at the same versions.
func (t *Tree) Root() uint64 {
	t.refresh(0, 0)
	return t.nodes[0]
}

// Level returns a copy of the child hashes of node index at level: the
// answer a replica gives an Exchange asking about NodeRef{level, index}.
// Level(0, 0) is the root's children; Level(Depth-1, i) are leaf buckets.
// There are Fanout children, except at the root (see Tree). It returns nil
// when the node does not exist or has no children (a leaf), so a remote
// request with a bad address gets an answer Exchange rejects rather than a
// panic.
func (t *Tree) Level(level, index int) []uint64 {
	return slices.Clone(t.current(level, index))
}

// children returns the flat range of the children of (level, index).
func (t *Tree) children(level, index int) (lo, hi int, ok bool) {
	if level < 0 || level >= t.depth || index < 0 || index >= t.Width(level) {
		return 0, 0, false
	}
	lo = t.off[level+1] + index<<t.shift[level]
	return lo, lo + 1<<t.shift[level], true
}

// refresh makes the hash of interior node (level, index) current,
// recomputing stale descendants first. Only stale subtrees are visited.
func (t *Tree) refresh(level, index int) {
	n := t.off[level] + index
	if !t.dirty[n] {
		return
	}
	t.nodes[n] = combine(t.current(level, index), t.buf)
	t.dirty[n] = false
}

// Reset empties the tree, keeping its shape and memory, for a rebuild from
// a storage scan.
func (t *Tree) Reset() {
	clear(t.nodes)
	clear(t.dirty)
	t.keys = 0
}

// Diff compares two trees of the same shape top-down, descending only into
// differing subtrees, and returns the differing leaf buckets in ascending
// order. It is the in-process form of Exchange (b plays the remote
// replica). It panics if the shapes differ: such trees cannot be compared.
func Diff(a, b *Tree) []int {
	if a.cfg != b.cfg {
		panic(fmt.Sprintf("merkle: Diff of trees with different shapes %+v and %+v", a.cfg, b.cfg))
	}
	e := NewExchange(a)
	for !e.Done() {
		for _, ref := range e.Want() {
			// Same shape, so every wanted node exists on b and answers
			// with the right length: Receive cannot fail.
			if err := e.Receive(ref, b.Level(ref.Level, ref.Index)); err != nil {
				panic(err)
			}
		}
	}
	return e.Buckets()
}
