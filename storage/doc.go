// Package storage owns the durable local state of a dynago node: the Engine
// interface through which everything else reads and writes, an in-memory
// engine that models power loss (the simulator and tests), and a
// fault-injecting wrapper around any engine. The on-disk engine of the
// daemon, Pebble, is in storage/pebbledb, so that importing storage (as the
// protocol core does) links no engine: this package's only import outside
// the standard library is btree. It also owns the on-disk key layout (one
// namespace byte per kind of record, objects clustered by partition), the
// format record and the node epoch that keeps actor IDs unique across data
// loss. Group commit (many writes,
// one fsync) is the daemon's event loop's, built on Apply without sync and
// Sync.
//
// The package stores bytes. It must never interpret values (objects, hints
// and metadata are encoded by their owners), never make a Dynamo decision,
// and never report a write as durable before an fsync covering it has
// returned: the daemon acknowledges puts on the strength of that promise.
//
// Durability model, shared by every engine: Apply(b, false) makes b visible
// to readers at once but leaves it volatile; Sync, Apply(b, true) and a clean
// Close make every write applied before them durable, as a write-ahead log
// sync does. A crash (Mem.Crash, Faulty.Crash, power loss) may drop volatile
// writes and nothing else.
package storage
