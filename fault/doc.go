// Package fault is the fault lab's injector: it decides, for each message a
// node sends, whether the network would delay it (fixed, uniform or normal
// one-way delay per destination, as in the original Dynamo simulators), lose
// it (per-destination loss probability) or refuse it outright (a partition,
// "cut"). The daemon (package server) plugs Injector into package transport
// as its Interceptor and applies the same rules to memberlist's gossip
// traffic. fault imports neither: the HTTP layer, which needs only Rules and
// Stats, would otherwise link gRPC and memberlist through it.
//
// fault owns only the decision and its counters. It must never hold a
// message itself, block the sender, or touch the network: the transport
// does the delaying and dropping it is told to do, so that injected faults
// go through the same code paths (queues, counters, shutdown) as real ones.
// Rules are the whole configuration of one node and are replaced
// atomically, never edited in place, so that a fault scenario changes in
// one step as seen by concurrent senders.
package fault
