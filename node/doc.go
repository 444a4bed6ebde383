// Package node is dynago's protocol core: the Dynamo node as a pure state
// machine, in the shape of etcd-io/raft's RawNode.
//
// A driver (the daemon in package server, the simulator in package sim)
// feeds it inputs — client requests (Propose), messages from other nodes
// (Step), liveness changes (SetStatus), an operator's change of the default
// quorums (SetDefaults) and the passage of time (Tick) — and
// collects its outputs with Ready: writes to persist, messages to send,
// replies to hand to clients, and events saying what happened (hints
// stored and delivered, exchanges, repairs, handoffs) for logs, metrics,
// traces and dashboards. The core reads its local state through the
// Store interface and never writes it directly.
//
// The one rule a driver must keep: the Messages and Replies of a Ready may
// leave (and its Events be told) only after the Writes of that Ready, and of every earlier Ready, are
// durable. Every acknowledgement a replica sends and every success a
// coordinator reports therefore implies the data is on disk, which is how
// dynago never loses an acknowledged write. Drivers batch many inputs into
// one Ready, so many writes share one fsync (group commit).
//
// A Store read that fails stops the core, as a storage error stops a raft
// node: it answers nothing more, and its next Ready carries only Err. The
// driver must then stop the node, as it would on a failed fsync.
//
// Config (config.go) is the one home of the protocol's settings, with the
// presets DefaultConfig and LabConfig that every driver and front end
// starts from.
//
// The core never starts goroutines, reads clocks, draws random numbers or
// touches sockets and files. Given the same inputs it produces the same
// outputs, which is what lets the simulator replay a run from its seed.
package node
