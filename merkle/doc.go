// Package merkle owns dynago's per-partition hash trees for anti-entropy
// (Dynamo §4.7, as in Cassandra and Riak): the tree's shape, how a key and
// its version hash land in a leaf bucket, the incremental update on every
// local write, and the top-down comparison of two replicas' trees that
// narrows a difference down to leaf buckets (Diff in process, Exchange over
// a network).
//
// A Tree has Leaves leaf buckets and a fixed fan-out; a key lives in bucket
// Bucket(key). Each present key contributes a 64-bit hash of (key, version
// hash) and a bucket's hash is the XOR of its keys' contributions, so an
// update is O(1) and independent of insertion order. Interior hashes are
// recomputed lazily, only for subtrees touched since the last read.
//
// Why XOR inside a bucket is acceptable: XOR is linear, so an entry added
// twice cancels and an adversary who picks keys could forge a collision.
// Neither applies here. A tree is a function of one replica's key → version
// map, maintained by Update with the version the replica previously held,
// so each key contributes at most once; and contributions are xxhash
// outputs of data the cluster writes itself, so two different bucket
// contents collide with probability about 2^-64. Cassandra's MerkleTree
// combines row hashes within a range by XOR for the same reason. Interior
// nodes hash their children (not XOR), so equal hashes in different
// subtrees never cancel each other across levels.
//
// The bucket function and the contribution function are part of the
// protocol between replicas: two nodes that computed them differently
// would repair forever. They are pinned by TestHashesAreStable and must
// never change for a given Config. Every replica of a partition must use
// the same Config; Exchange rejects answers of the wrong shape.
//
// The package is pure: it must never do I/O, start goroutines, read a
// clock or use randomness. It tracks hashes only, never keys or values:
// finding the keys of a differing bucket is the caller's scan of its own
// storage (Bucket tells it which bucket a key is in). It must never decide
// which version of a key is right; it only says where replicas differ.
//
// A Tree is not safe for concurrent use, not even for reads: Root and
// Level refresh cached interior hashes.
package merkle
