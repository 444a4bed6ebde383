// Package node is dynago's protocol core: the Dynamo node as a pure state
// machine, in the shape of etcd-io/raft's RawNode.
//
// A driver (the daemon in package server, the simulator in package sim)
// feeds it inputs — client requests (Propose), messages from other nodes
// (Step), liveness changes (SetStatus) and the passage of time (Tick) — and
// collects its outputs with Ready: writes to persist, messages to send and
// replies to hand to clients. The core reads its local state through the
// Store interface and never writes it directly.
//
// The one rule a driver must keep: the Messages and Replies of a Ready may
// leave only after the Writes of that Ready, and of every earlier Ready, are
// durable. Every acknowledgement a replica sends and every success a
// coordinator reports therefore implies the data is on disk, which is how
// dynago never loses an acknowledged write. Drivers batch many inputs into
// one Ready, so many writes share one fsync (group commit).
//
// The core never starts goroutines, reads clocks, draws random numbers or
// touches sockets and files. Given the same inputs it produces the same
// outputs, which is what lets the simulator replay a run from its seed.
package node
