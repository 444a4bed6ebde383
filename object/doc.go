// Package object owns the stored object: the siblings (values and
// tombstones) of one key with their causal history (a dvv.Set), the merges
// of two replicas' copies, and the versioned, checksummed binary encoding
// written to disk and sent between nodes.
//
// The package is pure: no I/O, no clock (timestamps are given by the
// coordinator), no randomness. It must never drop a sibling that no write
// superseded (merging is dvv.Sync, never a choice between values), never
// reap tombstones (that needs cluster-wide knowledge that lives elsewhere),
// and never accept bytes it cannot re-encode identically, so that equal
// objects always have equal encodings and equal hashes in Merkle trees.
package object
