// Package layering holds no code, only the test that keeps the protocol
// core pure: the packages that make Dynamo's decisions (ring, dvv, object,
// merkle, coord, cluster, node) must link no storage engine, RPC, gossip,
// metrics or HTTP package, not even indirectly. The core is a state machine
// driven by the daemon (package server) and by the simulator (package sim);
// everything that touches disks, networks or operators is plugged in by
// those drivers. An import of such a package anywhere under the core (say,
// storage.Engine's implementation growing a Pebble import again) would make
// the simulator link the daemon's world, and the core could start calling
// it; the test fails at the first such import and names the chain that
// brought it in.
//
// See docs/ARCHITECTURE.md, "The dependency rule".
package layering
