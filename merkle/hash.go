package merkle

import (
	"encoding/binary"
	"math/bits"

	"github.com/cespare/xxhash/v2"
)

// bucketSalt decorrelates bucket selection from the ring's partition
// choice. The ring places a key by the top bits of xxhash(key); mixing that
// same hash with a salt through a bijective finalizer makes every bit of
// the result depend on every bit of the key hash, so the keys of one
// partition (equal top bits) spread evenly over all buckets. Pinned by
// TestHashesAreStable.
const bucketSalt = 0x6d65726b6c652d31 // "merkle-1"

// keyHash is computed once per Update and feeds both the bucket and the
// contribution, so an update hashes the key bytes only once.
func keyHash(key []byte) uint64 { return xxhash.Sum64(key) }

// bucketMix is the splitmix64/murmur3 finalizer of the salted key hash.
func bucketMix(kh uint64) uint64 {
	x := kh ^ bucketSalt
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// contribution is what a present key adds (by XOR) to its bucket:
// xxhash64 (seed 0) of the 16 bytes key hash || version hash, both
// little-endian. Hashing the pair (not XORing them) keeps contributions of
// different keys unrelated even when they share a version hash. Using the
// 64-bit key hash instead of the key bytes means two keys with equal
// xxhash would be confused; among a million keys of a partition that has
// probability about 3·10^-8, and even then only equal versions cancel.
//
// It is xxhash64's algorithm for a 16-byte input written out so that it
// inlines: calling xxhash.Sum64 on a buffer made Update twice as slow.
// TestContributionIsXXHash checks it against xxhash.Sum64.
func contribution(kh, version uint64) uint64 {
	h := prime5 + 16
	h ^= xxRound(kh)
	h = bits.RotateLeft64(h, 27)*prime1 + prime4
	h ^= xxRound(version)
	h = bits.RotateLeft64(h, 27)*prime1 + prime4
	h ^= h >> 33
	h *= prime2
	h ^= h >> 29
	h *= prime3
	h ^= h >> 32
	return h
}

// xxhash64 constants and its lane round with a zero accumulator.
const (
	prime1 uint64 = 11400714785074694791
	prime2 uint64 = 14029467366897019727
	prime3 uint64 = 1609587929392839161
	prime4 uint64 = 9650029242287828579
	prime5 uint64 = 2870177450012600261
)

func xxRound(input uint64) uint64 {
	return bits.RotateLeft64(input*prime2, 31) * prime1
}

// combine hashes a node's children into the node's hash. A node whose
// children are all zero (an empty subtree) hashes to zero, so an empty tree
// has root 0 on every replica and a caller can see that a subtree is empty.
// buf must have room for 8 bytes per child.
func combine(children []uint64, buf []byte) uint64 {
	var any uint64
	for i, c := range children {
		any |= c
		binary.LittleEndian.PutUint64(buf[8*i:], c)
	}
	if any == 0 {
		return 0
	}
	return xxhash.Sum64(buf[:8*len(children)])
}
