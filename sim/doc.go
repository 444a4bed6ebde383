// Package sim is dynago's deterministic simulator: the second driver of the
// protocol core (package node), next to the daemon.
//
// A Cluster runs any number of node cores in one goroutine on a virtual
// clock. The network delivers messages after a latency drawn from a seeded
// distribution, may lose them, and can be partitioned. Each node has a
// simulated disk (storage.Mem) whose writes become durable only when a
// simulated fsync completes; a crash loses whatever was not yet synced, and
// the replies waiting for that fsync with it. Given the same seed and the
// same script, a run produces the same events in the same order, so a
// failing seed is a regression test. Messages can also be held in the
// network and delivered or dropped at a chosen moment (Hold, DeliverHeld,
// DropHeld), to stage a race exactly. A driver's own actions (a client's
// next request, a fault) go on the same event queue with At, so one
// queue orders everything that happens in a run.
//
// The scenario scripts in testdata/ drive a Cluster command by command and
// compare its trace with golden output (interaction_test.go; see "Scenario
// scripts" in docs/ARCHITECTURE.md).
//
// The simulator never reads the wall clock, never sleeps and uses no
// goroutines: time only moves when the event queue says so.
package sim
