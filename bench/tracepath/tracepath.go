// Command tracepath reads a Go execution trace of one dynago node (from
// /debug/pprof/trace, with DYNAGO_PPROF=1) taken while one client sends
// requests one at a time, and prints where each request's time goes: the
// moments, counted from the request's arrival, at which it passes each
// goroutine hand-off of the node's path, as quartiles over every request in
// the trace. It measures latency along the path, not CPU: a hand-off that
// waits for a processor shows up as a gap between two milestones.
//
//	tracepath n1.trace            # the coordinator's path (a RESP or HTTP request)
//	tracepath -replica n2.trace   # a replica's path (a replica put over gRPC)
//
// docs/BENCHMARKS.md ("Where one client's put waits") shows its use.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/exp/trace"
)

func main() {
	replica := flag.Bool("replica", false, "follow replica puts arriving over gRPC instead of client requests")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: tracepath [-replica] TRACE")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	f, err := os.Open(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer f.Close()
	evs, err := read(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tracepath:", err)
		os.Exit(1)
	}
	path := coordinatorPath
	if *replica {
		path = replicaPath
	}
	rep := analyze(evs, path)
	rep.print(os.Stdout)
}

// kind is the role of a goroutine on a node's request path.
type kind string

const (
	kRequest kind = "request" // a RESP connection's or an HTTP request's goroutine
	kLoop    kind = "loop"    // server's event loop, the only one touching the core
	kSyncer  kind = "syncer"  // server's syncer, which asks Pebble for the fsync
	kFlush   kind = "flush"   // Pebble's WAL flusher, which writes and fsyncs
	kSender  kind = "sender"  // transport's per-peer sender, which hands batches to gRPC
	kLoopy   kind = "loopy"   // gRPC's connection writer
	kRecv    kind = "recv"    // a gRPC stream handler, which delivers to the loop
	kNetRead kind = "netread" // gRPC's connection reader
)

// kinds are matched, in order, against the functions a goroutine's stacks
// show while it blocks: the first match names it.
var kinds = []struct {
	k  kind
	re *regexp.Regexp
}{
	{kLoop, regexp.MustCompile(`/server\.\(\*Server\)\.loop$`)},
	{kSyncer, regexp.MustCompile(`/server\.\(\*Server\)\.syncer$`)},
	{kFlush, regexp.MustCompile(`\(\*LogWriter\)\.flushLoop$`)},
	{kSender, regexp.MustCompile(`/transport\.\(\*peer\)\.takeMessages$`)},
	{kLoopy, regexp.MustCompile(`\(\*loopyWriter\)\.run$`)},
	{kRecv, regexp.MustCompile(`\(\*recvBufferReader\)\.`)},
	{kNetRead, regexp.MustCompile(`\(\*http2Client\)\.reader$|\(\*http2Server\)\.HandleStreams$`)},
	{kRequest, regexp.MustCompile(`/dynago/(resp|httpapi)\.`)},
}

// event is one goroutine state transition, reduced to what the paths need.
type event struct {
	at       trace.Time
	g        trace.GoID
	by       trace.GoID // the goroutine that caused it; trace.NoGoroutine for the network poller or the scheduler
	from, to trace.GoState
	stack    string // the transitioning goroutine's functions, ';'-joined, when it blocks
}

type events struct {
	list []event
	kind map[trace.GoID]kind
}

func read(r io.Reader) (events, error) {
	tr, err := trace.NewReader(r)
	if err != nil {
		return events{}, err
	}
	funcs := map[trace.GoID]map[string]bool{} // every function each goroutine was seen blocked in
	var out events
	for {
		ev, err := tr.ReadEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			return events{}, err
		}
		if ev.Kind() != trace.EventStateTransition {
			continue
		}
		st := ev.StateTransition()
		if st.Resource.Kind != trace.ResourceGoroutine {
			continue
		}
		g := st.Resource.Goroutine()
		from, to := st.Goroutine()
		var fs []string
		for fr := range st.Stack.Frames() {
			fs = append(fs, fr.Func)
		}
		if funcs[g] == nil {
			funcs[g] = map[string]bool{}
		}
		for _, fn := range fs {
			funcs[g][fn] = true
		}
		out.list = append(out.list, event{at: ev.Time(), g: g, by: ev.Goroutine(), from: from, to: to, stack: strings.Join(fs, ";")})
	}
	out.kind = map[trace.GoID]kind{}
	for g, fs := range funcs {
	match:
		for _, k := range kinds {
			for fn := range fs {
				if k.re.MatchString(fn) {
					out.kind[g] = k.k
					break match
				}
			}
		}
	}
	return out, nil
}

// A milestone is a transition that marks a step of the path: its first
// occurrence after the request's arrival counts. One that needs an earlier
// milestone counts only after it: an fsync returns only after it started
// (the flusher's write returns before), the requests' bytes leave only
// after the loop handed them to the transport.
type milestone struct {
	name  string
	is    func(e event, kindOf func(trace.GoID) kind) bool
	needs int  // index of the milestone this one must follow; 0 for none
	peers bool // comes only when the request goes to other nodes (never with N=1)
}

// path is the milestones of one request, in order; the first is its arrival.
type path []milestone

func wakes(k kind, by ...kind) func(event, func(trace.GoID) kind) bool {
	return func(e event, kindOf func(trace.GoID) kind) bool {
		if kindOf(e.g) != k || e.from != trace.GoWaiting || e.to != trace.GoRunnable {
			return false
		}
		if len(by) == 0 {
			return e.by == trace.NoGoroutine // the network poller
		}
		return slices.Contains(by, kindOf(e.by))
	}
}

func runs(k kind) func(event, func(trace.GoID) kind) bool {
	return func(e event, kindOf func(trace.GoID) kind) bool {
		return kindOf(e.g) == k && e.to == trace.GoRunning
	}
}

func enters(k kind, syscall string) func(event, func(trace.GoID) kind) bool {
	return func(e event, kindOf func(trace.GoID) kind) bool {
		return kindOf(e.g) == k && e.to == trace.GoSyscall && strings.Contains(e.stack, syscall)
	}
}

func leaves(k kind) func(event, func(trace.GoID) kind) bool {
	return func(e event, kindOf func(trace.GoID) kind) bool {
		return kindOf(e.g) == k && e.from == trace.GoSyscall
	}
}

// coordinatorPath is a client request at the node that coordinates it.
var coordinatorPath = path{
	{name: "request arrives (network wakes its goroutine)", is: wakes(kRequest)},
	{name: "handed to the event loop", is: wakes(kLoop, kRequest)},
	{name: "event loop runs", is: runs(kLoop)},
	{name: "requests handed to the transport", is: wakes(kSender, kLoop), peers: true},
	{name: "fsync asked for", is: wakes(kSyncer, kLoop)},
	{name: "requests on the wire", is: enters(kLoopy, "syscall.Write"), needs: 3, peers: true},
	{name: "fsync starts", is: enters(kFlush, "Fdatasync")},
	{name: "fsync returns", is: leaves(kFlush), needs: 6},
	{name: "a replica's answer reaches the event loop", is: wakes(kLoop, kRecv), needs: 3, peers: true},
	{name: "reply handed back", is: wakes(kRequest, kLoop)},
	{name: "reply written", is: enters(kRequest, "syscall.Write")},
}

// replicaPath is a replica put arriving from its coordinator.
var replicaPath = path{
	{name: "replica put arrives (network wakes gRPC's reader)", is: wakes(kNetRead)},
	{name: "delivered to the event loop", is: wakes(kLoop, kRecv)},
	{name: "event loop runs", is: runs(kLoop)},
	{name: "fsync asked for", is: wakes(kSyncer, kLoop)},
	{name: "fsync starts", is: enters(kFlush, "Fdatasync")},
	{name: "fsync returns", is: leaves(kFlush), needs: 4},
	{name: "event loop runs again", is: runs(kLoop), needs: 5},
	{name: "acknowledgement handed to the transport", is: wakes(kSender, kLoop)},
	{name: "acknowledgement on the wire", is: enters(kLoopy, "syscall.Write")},
}

// report holds, per milestone, its moments in µs after each arrival.
type report struct {
	path     path
	at       [][]float64
	requests int
}

// analyze follows the path through the events. A request starts at the
// path's first milestone and ends at its last; an arrival that led nowhere
// yet (a window update, a ping) is replaced by the next one. Milestones
// other than the last may be missing (no sends with N=1, no new fsync while
// one runs) or come in another order than the path's (the fsync may start
// before the requests' bytes leave): each counts at its first occurrence.
func analyze(evs events, p path) report {
	kindOf := func(g trace.GoID) kind { return evs.kind[g] }
	rep := report{path: p, at: make([][]float64, len(p))}
	var start trace.Time
	active, progressed := false, false
	seen := make([]bool, len(p))
	for _, e := range evs.list {
		if (!active || !progressed) && p[0].is(e, kindOf) {
			if !active {
				rep.requests++
			}
			start, active, progressed = e.at, true, false
			clear(seen)
			continue
		}
		if !active {
			continue
		}
		for i := 1; i < len(p); i++ {
			m := p[i]
			if seen[i] || (m.needs > 0 && !seen[m.needs]) || !m.is(e, kindOf) {
				continue
			}
			seen[i], progressed = true, true
			rep.at[i] = append(rep.at[i], float64(e.at-start)/1e3)
			if i == len(p)-1 {
				active = false
			}
			break
		}
	}
	return rep
}

func (r report) print(w io.Writer) {
	fmt.Fprintf(w, "%d requests; µs after arrival\n", r.requests)
	fmt.Fprintf(w, "%-50s %7s %7s %7s %7s\n", "milestone", "count", "p25", "p50", "p75")
	for i, m := range r.path {
		if i == 0 {
			continue
		}
		if len(r.at[i]) == 0 {
			fmt.Fprintf(w, "%-50s %7d %7s %7s %7s\n", m.name, 0, "-", "-", "-")
			continue
		}
		fmt.Fprintf(w, "%-50s %7d %7.1f %7.1f %7.1f\n", m.name, len(r.at[i]), r.quantile(i, 0.25), r.quantile(i, 0.5), r.quantile(i, 0.75))
	}
}

// quantile returns milestone i's q-quantile (0 ≤ q < 1, the sample at
// index ⌊q·n⌋ of n), or -1 when it never came.
func (r report) quantile(i int, q float64) float64 {
	v := slices.Clone(r.at[i])
	if len(v) == 0 {
		return -1
	}
	slices.Sort(v)
	return v[min(int(q*float64(len(v))), len(v)-1)]
}
