// Package transport carries node.Message values between dynago nodes over
// gRPC. It owns the wire mapping (node.Message <-> dynagopb.Envelope), one
// long-lived client connection and one sender goroutine per peer, the gRPC
// server that receives batches and hands them to the daemon, and the fault
// hook (Interceptor) the lab uses to delay or drop messages.
//
// Delivery is one-way and fire-and-forget, like etcd raft's transport: Send
// enqueues and returns, a per-peer sender batches whatever is queued into one
// write on a long-lived stream (ModeStream, the default; or, in ModeUnary,
// one Step call with a deadline), and answers are just other messages
// coming back.
// Nothing is retried: the protocol core runs its own request timeouts, so a
// lost message costs a timeout, never correctness. What the transport must
// never do is block the core, so every queue here is bounded and a full
// queue drops (and counts) instead of waiting.
//
// The transport must never interpret messages (that is the core's job),
// never retry or reorder them on purpose, and never call the Handler on the
// goroutine that called Send.
//
// Metrics: with Config.Metrics set, each call's latency (or its failure and
// gRPC code) is recorded per peer. A stream has no per-batch answer, so in
// ModeStream a small ping (a stream opened and accepted) measures the round
// trip to each peer in use every PingInterval.
//
// Security: with Config.ServerTLS and ClientTLS the peer port runs mutual
// TLS (see package security): only holders of a certificate signed by the
// cluster's CA can connect. Without them connections are plaintext and
// unauthenticated, fit only for a trusted network (a private subnet, a
// Kubernetes pod network with a NetworkPolicy); do not expose it.
package transport
