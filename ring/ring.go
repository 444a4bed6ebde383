package ring

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
)

// MaxPartitions is the largest supported partition count Q. The owner
// table is gossiped whole, and 65536 entries is already about a megabyte.
const MaxPartitions = 1 << 16

// Errors returned by New and FromOwners, wrapped with detail; test them with
// errors.Is.
var (
	ErrBadPartitions = errors.New("ring: partitions must be a power of two in [1, 65536]")
	ErrNoNodes       = errors.New("ring: no nodes")
	ErrDuplicateNode = errors.New("ring: duplicate node")
	ErrBadN          = errors.New("ring: replica count N must be at least 1")
	ErrEmptyNodeID   = errors.New("ring: empty node id")
	ErrBadOwners     = errors.New("ring: owner table length differs from partition count")
)

// Config fixes the shape of a ring. Partitions and N are cluster-wide and
// must be identical on every node.
type Config struct {
	// Partitions is Q, the number of equal partitions of the hash space: a
	// power of two in [1, MaxPartitions]. It can never change for a cluster,
	// so choose it for the largest cluster you expect (a few partitions per
	// node at least): 64 for the lab, 256 for servers.
	Partitions int
	// N is the preference list length: how many distinct nodes hold each
	// key. At least 1; with fewer members than N, every member is listed.
	N int
	// Hash positions keys; nil means DefaultHash. Tests inject a hash that
	// returns the key's leading bytes so positions are readable.
	Hash HashFunc
}

func (c *Config) validate() error {
	if c.Partitions < 1 || c.Partitions > MaxPartitions || c.Partitions&(c.Partitions-1) != 0 {
		return fmt.Errorf("%w: got %d", ErrBadPartitions, c.Partitions)
	}
	if c.N < 1 {
		return fmt.Errorf("%w: got %d", ErrBadN, c.N)
	}
	if c.Hash == nil {
		c.Hash = DefaultHash
	}
	return nil
}

// maxWalkTable bounds the precomputed walk-order table (Q × members
// entries, 16 bytes each: 16 MiB). Up to it, PreferenceList, Fallbacks and
// WalkOrder all index one table; beyond it (say 65536 partitions over more
// than 16 nodes) only preference lists are precomputed and Fallbacks and
// WalkOrder walk the ring on every call, which costs O(Q) at worst.
const maxWalkTable = 1 << 20

// Ring maps keys to partitions and partitions to nodes. It is immutable
// after construction and safe for concurrent use.
type Ring struct {
	version uint64
	n       int
	hash    HashFunc
	shift   uint // 64 - log2(Q): PartitionOf keeps the top log2(Q) bits

	owners   []NodeID
	members  []NodeID // sorted distinct owners
	isMember map[NodeID]bool

	// walks holds, for every partition p, row p of width entries: the
	// distinct owners met walking from p. width is len(members) when the
	// whole walk fits in maxWalkTable, else prefLen (preference lists only).
	walks   []NodeID
	width   int
	prefLen int // min(N, len(members))
}

// New builds the version-1 ring for a new cluster, with Claim's initial
// owner table over nodes (whose order does not matter). If there are more
// nodes than partitions, the nodes that sort after the first Q own nothing
// and are not members.
func New(cfg Config, nodes []NodeID) (*Ring, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if len(nodes) == 0 {
		return nil, ErrNoNodes
	}
	seen := make(map[NodeID]bool, len(nodes))
	for _, id := range nodes {
		if id == "" {
			return nil, ErrEmptyNodeID
		}
		if seen[id] {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateNode, id)
		}
		seen[id] = true
	}
	return build(cfg, 1, Claim(cfg.Partitions, nodes, cfg.N)), nil
}

// FromOwners rebuilds a ring from an explicit owner table (owners[p] owns
// partition p), as persisted or gossiped. Any table of non-empty IDs of
// length Q is accepted; it need not be one Claim would produce.
func FromOwners(cfg Config, version uint64, owners []NodeID) (*Ring, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if len(owners) != cfg.Partitions {
		return nil, fmt.Errorf("%w: %d owners for %d partitions", ErrBadOwners, len(owners), cfg.Partitions)
	}
	if slices.Contains(owners, "") {
		return nil, ErrEmptyNodeID
	}
	return build(cfg, version, slices.Clone(owners)), nil
}

// build takes ownership of owners, which must be valid for cfg.
func build(cfg Config, version uint64, owners []NodeID) *Ring {
	q := len(owners)
	r := &Ring{
		version:  version,
		n:        cfg.N,
		hash:     cfg.Hash,
		shift:    uint(64 - bits.TrailingZeros(uint(q))),
		owners:   owners,
		isMember: make(map[NodeID]bool),
	}
	for _, o := range owners {
		if !r.isMember[o] {
			r.isMember[o] = true
			r.members = append(r.members, o)
		}
	}
	slices.Sort(r.members)
	m := len(r.members)
	r.prefLen = min(r.n, m)
	r.width = r.prefLen
	if q*m <= maxWalkTable {
		r.width = m
	}
	r.walks = r.walkTable(r.width)
	return r
}

// walkTable computes every partition's walk truncated to width entries in
// O(Q·width), rather than walking from each partition separately (which is
// O(Q²) for a lopsided owner table). It relies on walk(p) being owner(p)
// followed by walk(p+1) without owner(p): every other node is first met at
// the same place from p as from p+1.
func (r *Ring) walkTable(width int) []NodeID {
	q := len(r.owners)
	table := make([]NodeID, q*width)
	row := func(p int) []NodeID { return table[p*width : (p+1)*width : (p+1)*width] }

	// Partition 0 directly: one turn of the ring meets every member.
	first := row(0)[:0]
	for _, o := range r.owners {
		if len(first) == width {
			break
		}
		if !slices.Contains(first, o) {
			first = append(first, o)
		}
	}
	for p := q - 1; p > 0; p-- {
		next, cur := row((p+1)%q), row(p)
		cur[0] = r.owners[p]
		i := 1
		for _, id := range next {
			if i == width {
				break
			}
			if id != cur[0] {
				cur[i] = id
				i++
			}
		}
	}
	return table
}

// Version is the ring's version; a newer ring has a higher one.
func (r *Ring) Version() uint64 { return r.version }

// Partitions is Q.
func (r *Ring) Partitions() int { return len(r.owners) }

// N is the configured preference list length (see PreferenceList for the
// length actually returned).
func (r *Ring) N() int { return r.n }

// Owners returns a copy of the owner table: element p owns partition p.
func (r *Ring) Owners() []NodeID { return slices.Clone(r.owners) }

// Owner returns the owner of partition p. p must be in [0, Partitions()).
func (r *Ring) Owner(p int) NodeID { return r.owners[p] }

// Members returns the distinct owners, sorted.
func (r *Ring) Members() []NodeID { return slices.Clone(r.members) }

// Contains reports whether id owns at least one partition.
func (r *Ring) Contains(id NodeID) bool { return r.isMember[id] }

// PartitionOf returns the partition of key: the top log2(Q) bits of its
// hash, so partition p covers hashes [p·2^64/Q, (p+1)·2^64/Q).
func (r *Ring) PartitionOf(key []byte) int {
	// A shift by 64 (Q = 1) yields 0 in Go, which is the right answer.
	return int(r.hash(key) >> r.shift)
}

// PreferenceList returns the nodes responsible for partition p: the owners
// of p, p+1, ... skipping nodes already listed, until min(N, members)
// distinct nodes are found. The first is Owner(p). The slice is shared by
// every caller and must not be modified; appending to it is safe (its
// capacity is its length). p must be in [0, Partitions()).
func (r *Ring) PreferenceList(p int) []NodeID {
	start := p * r.width
	return r.walks[start : start+r.prefLen : start+r.prefLen]
}

// Fallbacks returns the members not in PreferenceList(p), in the order a
// walk from p meets them (continuing where the preference list stopped and
// wrapping): where a sloppy quorum sends writes for unreachable primaries.
// The slice must not be modified. p must be in [0, Partitions()).
func (r *Ring) Fallbacks(p int) []NodeID {
	if r.width == len(r.members) {
		return r.walks[p*r.width+r.prefLen : (p+1)*r.width : (p+1)*r.width]
	}
	return r.walkFrom(p)[r.prefLen:]
}

// WalkOrder returns PreferenceList(p) followed by Fallbacks(p): every member
// once, in the order a walk from p meets them. The slice must not be
// modified. p must be in [0, Partitions()).
func (r *Ring) WalkOrder(p int) []NodeID {
	if r.width == len(r.members) {
		return r.walks[p*r.width : (p+1)*r.width : (p+1)*r.width]
	}
	return r.walkFrom(p)
}

// walkFrom walks the ring from p until every member has been met; for rings
// too large for a precomputed walk table.
func (r *Ring) walkFrom(p int) []NodeID {
	q, m := len(r.owners), len(r.members)
	walk := make([]NodeID, 0, m)
	met := make(map[NodeID]bool, m)
	for i := 0; len(walk) < m; i++ {
		o := r.owners[(p+i)%q]
		if !met[o] {
			met[o] = true
			walk = append(walk, o)
		}
	}
	return walk[:m:m]
}

// PartitionCounts returns how many partitions each member owns (as first
// in the preference list).
func (r *Ring) PartitionCounts() map[NodeID]int {
	counts := make(map[NodeID]int, len(r.members))
	for _, o := range r.owners {
		counts[o]++
	}
	return counts
}

// PartitionsOf returns, ascending, the partitions whose preference list
// includes id: the partitions id is a replica of and must store. It is nil
// for a node that is not a member.
func (r *Ring) PartitionsOf(id NodeID) []int {
	var ps []int
	for p := range r.owners {
		if slices.Contains(r.PreferenceList(p), id) {
			ps = append(ps, p)
		}
	}
	return ps
}
