// Package server is the dynago daemon: the real-world driver of the
// protocol core. It wires the core (package node) to a Pebble engine on
// disk, the gRPC transport between nodes, the real clock and the HTTP API.
//
// One goroutine, the event loop, owns the core. It feeds it client
// requests, peer messages and clock ticks, applies the writes of each Ready
// to Pebble without syncing, and hands the Ready's messages and replies to
// a hold queue. A separate syncer goroutine fsyncs the write-ahead log;
// when an fsync completes, every output that waited for it is released.
// Many requests' writes therefore share one fsync (group commit) while the
// loop keeps working, and no acknowledgement leaves the node before the
// data it acknowledges is durable.
package server
