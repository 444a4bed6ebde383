package ring

import "github.com/cespare/xxhash/v2"

// NodeID names a physical node. It is the unit of distinctness in
// preference lists.
type NodeID string

// HashFunc maps a key to a position in the 64-bit hash space. It must be
// deterministic and identical on every node.
type HashFunc func(key []byte) uint64

// DefaultHash is xxHash64 with seed 0. It decides where data lives, so it
// must never change (TestDefaultHashIsStable pins its output).
func DefaultHash(key []byte) uint64 {
	return xxhash.Sum64(key)
}
