// Package ring owns where data lives: Dynamo's partitioned ring with fixed,
// equal-sized partitions (strategy 3 of the paper, as in Riak).
//
// The 64-bit hash space is cut into Q equal partitions, Q a power of two; a
// key belongs to the partition given by the top log2(Q) bits of its hash.
// Every partition is owned (claimed) by one node. The preference list of a
// partition is the owners of that partition and the partitions after it,
// skipping nodes already listed, until N distinct nodes are found; the
// fallbacks are the remaining members in the same ring-walk order, which is
// where a sloppy quorum goes when primaries are unreachable.
//
// A *Ring is an immutable, versioned value: membership changes build a new
// Ring with a higher version (New for a fresh cluster, FromOwners for an owner
// table received by gossip or read from disk). Preference lists are computed
// once at construction, so the request path only indexes a table.
//
// Claim is the deterministic initial assignment of partitions to nodes; it
// keeps per-node partition counts within one of each other and gives every N
// consecutive partitions distinct owners whenever that is possible at all.
// Measure reports how well an owner table achieves both.
//
// A join or leave does not re-run Claim, which would move most of the data:
// Rebalance derives the new owner table from the current one, moving only
// the partitions that balance requires (Riak's claim on join and leave).
// Moves, Transfers and Leaving turn the old and new tables or rings into the
// handoff plan: which partitions change owner, which node streams which
// partition to which, and what each node drops once it has handed off.
//
// The package must never do I/O, read clocks or use randomness: every node
// must compute the same placement from the same inputs. DefaultHash must
// never change, because it decides where stored data is; a cluster records
// its owner table (Owners, FromOwners) rather than re-running Claim, so that
// improving Claim never moves existing data.
package ring
