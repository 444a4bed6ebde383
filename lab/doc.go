// Package lab runs the Dynamo paper's evaluation (§6) as experiments that
// print JSON lines, one per data point, and draw a chart beside them:
//
//   - balance (§6.2, Figure 8): the fraction of nodes whose request load
//     is more than 15 % above the mean, against the request rate, for
//     Q = 64, 256 and 1,024 partitions, uniform and zipfian keys;
//   - divergence (§6.3): the share of reads that return 1, 2, 3 or 4+
//     versions under a shopping-cart workload, with and without failures;
//   - coordination (§6.4, Table 2): client-driven against server-driven
//     coordination, mean and p99.9 latency of reads and writes;
//   - durability-latency (§6.1): put latency percentiles for W = 1..N with
//     fsync on and off.
//
// Each experiment has two engines. The simulator (package sim: virtual
// time, a simulated network and disk, the real protocol core) is the
// default: it is deterministic for a seed and runs many nodes on one core.
// A live engine runs the same workload against a real cluster: the HTTP
// addresses of a running one, or "dev" for local clusters the experiment
// starts itself (needed where it must kill nodes or move the data
// directory to tmpfs).
//
// The package owns workloads, measurements and charts; it never changes
// how a node behaves. It lives outside package main so that the command
// line, the dashboard and tests call the same code.
package lab
