// Package loadgen generates load against a dynago cluster and measures it:
// the workload (operation mix, key distribution, value size), the two ways
// of issuing it (closed loop and open loop), and latency histograms.
//
// It owns the measurement, not the transport: operations go through a
// Target, so the same workload can run through the Go client entering at a
// random node (ClientTarget, "route any") or through any other path added
// later, such as client-side routing to a preference-list node.
//
// # Closed and open loop
//
// In the closed loop (Config.Rate == 0) Concurrency workers each issue one
// request, wait for its answer and issue the next. A slow server therefore
// slows the load down, and latency is measured from each request's send.
//
// In the open loop (Config.Rate > 0) a scheduler issues requests at the
// fixed rate whatever the server does: request i is due at start + i/Rate.
// Its latency is measured from that scheduled time, not from when a worker
// got to send it, so time spent queued behind a slow server counts (this
// avoids "coordinated omission", where a stalled server also stalls the
// measurement and its stall vanishes from the percentiles). At most
// MaxOutstanding requests are in flight; when all are busy, due requests
// wait, and their wait is part of their latency.
//
// # What it must never do
//
// It must never hide a failure: any answer other than success (and, for a
// read, not-found) is an error and is counted as one. Latencies and ops/s
// cover successful answers only, so that fast failures (a refused
// connection) cannot make a broken cluster look fast. It must never cancel a
// request because the run's duration is over: the run stops issuing and
// waits for what is in flight.
package loadgen
