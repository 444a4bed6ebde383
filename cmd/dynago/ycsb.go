package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dynago/dynago/loadgen"
)

// The ycsb command: YCSB's core workloads (package loadgen's YCSB), with
// YCSB's own text output so results compare line for line with other
// stores' published YCSB numbers.

func init() {
	register(command{name: "ycsb", summary: "run the YCSB core workloads (a-f, all) against a running cluster", run: runYCSBCmd})
}

const ycsbUsage = `ycsb [flags]

Loads --records records (keys "user<fnv64 hash>", one field of
--field-length bytes), then runs --operations operations of each YCSB core
workload asked for with --threads closed-loop workers, and prints YCSB's
report ([OVERALL] run time and throughput; per operation: count, average,
min, max, 95th and 99th percentile latency in microseconds, return codes).
Workloads share the load: D's inserts are there for the workloads after it.

  a  50% read, 50% update, zipfian       d  95% read, 5% insert, latest
  b  95% read, 5% update, zipfian        e  95% scan, 5% insert: unsupported
  c  100% read, zipfian                  f  50% read, 50% read-modify-write
  all  a, b, c, d, f in turn (e reported as unsupported)

dynago has no range scans, so workload e is refused rather than faked:
alone it fails, within all it is noted and skipped. Updates and inserts
are blind writes (an update of a hot record leaves siblings, as Dynamo
does); a read-modify-write writes with the context it read, and is
reported as READ-MODIFY-WRITE and also in READ and UPDATE, as YCSB does.
Latencies cover successful (and not-found) operations only.`

// ycsbOptions tune runYCSB; zero fields take the defaults below (so a
// zero-length field cannot be asked for: YCSB records are never empty).
type ycsbOptions struct {
	RecordCount, OperationCount, Threads, FieldLength int
	Route                                             string /* "any" or "client" */
	JSON                                              bool
}

// Defaults of ycsbOptions: YCSB's recordcount and fieldlength; more
// operations than YCSB's example files (1000) so percentiles mean
// something; 16 threads as bench's --concurrency.
const (
	ycsbDefaultRecords     = 10000
	ycsbDefaultOperations  = 10000
	ycsbDefaultThreads     = 16
	ycsbDefaultFieldLength = 100
	ycsbSeed               = 1
)

func runYCSBCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("ycsb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: dynago %s\n\nFlags:\n", ycsbUsage)
		fs.PrintDefaults()
	}
	addr := fs.String("addr", envDefault("DYNAGO_ADDR", defaultAddr),
		"comma-separated HTTP addresses of the nodes requests enter at (host:port or URL); env DYNAGO_ADDR")
	workload := fs.String("workload", "a", "YCSB core workload: a, b, c, d, e, f or all")
	var o ycsbOptions
	fs.IntVar(&o.RecordCount, "records", ycsbDefaultRecords, "records to load before the workloads (YCSB recordcount)")
	fs.IntVar(&o.OperationCount, "operations", ycsbDefaultOperations, "operations per workload (YCSB operationcount)")
	fs.IntVar(&o.Threads, "threads", ycsbDefaultThreads, "closed-loop workers (YCSB threadcount)")
	fs.IntVar(&o.FieldLength, "field-length", ycsbDefaultFieldLength, "bytes of a record's one field (YCSB fieldlength); 0 means the default")
	fs.StringVar(&o.Route, "route", "any", "where requests enter: any (a random node of --addr) or client (the key's preference list)")
	fs.BoolVar(&o.JSON, "json", false, "print one JSON object per workload and operation instead of YCSB's text")
	if _, err := parseArgs(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	for _, n := range []int{o.RecordCount, o.OperationCount, o.Threads} {
		if n < 1 {
			return fmt.Errorf("%w: --records, --operations and --threads must be >= 1", errUsage)
		}
	}
	if o.FieldLength < 0 {
		return fmt.Errorf("%w: --field-length must be >= 0", errUsage)
	}
	var addrs []string
	for a := range strings.SplitSeq(*addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	return runYCSB(ctx, addrs, *workload, o)
}

// runYCSB loads o.RecordCount records through the nodes at addrs, then
// runs workload ("a".."f" or "all") and writes YCSB's report to stdout. A
// workload dynago cannot run (e) is an error wrapping
// loadgen.ErrYCSBUnsupported when asked for alone, and a note within all.
func runYCSB(ctx context.Context, addrs []string, workload string, o ycsbOptions) error {
	o = o.withDefaults()
	names := []string{workload}
	if strings.EqualFold(workload, "all") {
		names = loadgen.YCSBWorkloadNames
	}
	var workloads []loadgen.YCSBWorkload
	for _, n := range names {
		w, err := loadgen.YCSBCoreWorkload(n)
		if err != nil {
			return fmt.Errorf("%w: %w", errUsage, err)
		}
		workloads = append(workloads, w)
	}
	// Refuse before loading: loading for nothing would only waste time.
	if len(workloads) == 1 {
		if err := workloads[0].Supported(); err != nil {
			return err
		}
	}
	var routing bool
	switch o.Route {
	case "any", "client":
		routing = o.Route == "client"
	default:
		return fmt.Errorf("%w: --route %q: want any or client", errUsage, o.Route)
	}
	target, err := loadgen.NewClientTarget(addrs, loadgen.ClientOptions{Routing: routing, MaxConns: o.Threads})
	if err != nil {
		return fmt.Errorf("%w: --addr: %w", errUsage, err)
	}
	y, err := loadgen.NewYCSB(loadgen.YCSBConfig{
		RecordCount: int64(o.RecordCount), OperationCount: int64(o.OperationCount),
		Threads: o.Threads, FieldLength: o.FieldLength, Seed: ycsbSeed,
	}, target)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}

	report := func(res *loadgen.YCSBResult, desc string) error {
		var err error
		if o.JSON {
			err = writeYCSBJSON(stdout, res)
		} else {
			err = writeYCSBText(stdout, desc, res)
		}
		for _, s := range res.Ops {
			if s.FirstError != "" {
				fmt.Fprintf(stderr, "workload %s: %s: %d errors, first: %s\n", res.Workload, s.Op, s.Errors, s.FirstError)
			}
		}
		if res.Interrupted {
			fmt.Fprintf(stderr, "workload %s interrupted: partial results\n", res.Workload)
		}
		return err
	}

	load, err := y.Load(ctx)
	if err != nil {
		return err
	}
	desc := fmt.Sprintf("YCSB load: %d records of one %d-byte field, %d threads, route %s",
		o.RecordCount, o.FieldLength, o.Threads, o.Route)
	if err := report(load, desc); err != nil {
		return err
	}
	if load.Interrupted {
		return ctx.Err()
	}
	if failed := load.Ops[0].Errors; failed > 0 {
		// The workloads would read records that are not there: their
		// numbers would describe the failure, not the store.
		return fmt.Errorf("ycsb: %d of %d inserts of the load failed", failed, load.Ops[0].Count)
	}
	for _, w := range workloads {
		if err := w.Supported(); err != nil {
			if o.JSON {
				fmt.Fprintf(stderr, "workload %s skipped: %v\n", w.Name, err)
			} else {
				fmt.Fprintf(stdout, "\n# YCSB workload %s skipped: %v\n", w.Name, err)
			}
			continue
		}
		records := y.Records()
		res, err := y.Run(ctx, w)
		if err != nil {
			return err
		}
		desc := fmt.Sprintf("YCSB workload %s: %s; %d operations, %d records at start, %d threads",
			w.Name, w, o.OperationCount, records, o.Threads)
		if !o.JSON {
			fmt.Fprintln(stdout)
		}
		if err := report(res, desc); err != nil {
			return err
		}
		if res.Interrupted {
			return ctx.Err()
		}
	}
	return nil
}

func (o ycsbOptions) withDefaults() ycsbOptions {
	if o.RecordCount == 0 {
		o.RecordCount = ycsbDefaultRecords
	}
	if o.OperationCount == 0 {
		o.OperationCount = ycsbDefaultOperations
	}
	if o.Threads == 0 {
		o.Threads = ycsbDefaultThreads
	}
	if o.FieldLength == 0 {
		o.FieldLength = ycsbDefaultFieldLength
	}
	if o.Route == "" {
		o.Route = "any"
	}
	return o
}

// writeYCSBText writes res as YCSB's text exporter does, after a "#" line
// saying what ran.
func writeYCSBText(out io.Writer, desc string, res *loadgen.YCSBResult) error {
	us := func(d time.Duration) int64 { return d.Microseconds() }
	var w strings.Builder
	fmt.Fprintf(&w, "# %s\n", desc)
	fmt.Fprintf(&w, "[OVERALL], RunTime(ms), %d\n", res.Elapsed.Milliseconds())
	fmt.Fprintf(&w, "[OVERALL], Throughput(ops/sec), %.1f\n", res.Throughput())
	for _, s := range res.Ops {
		h := s.Latency
		fmt.Fprintf(&w, "[%s], Operations, %d\n", s.Op, s.Count)
		fmt.Fprintf(&w, "[%s], AverageLatency(us), %.1f\n", s.Op, float64(h.Mean().Nanoseconds())/1e3)
		fmt.Fprintf(&w, "[%s], MinLatency(us), %d\n", s.Op, us(h.Min()))
		fmt.Fprintf(&w, "[%s], MaxLatency(us), %d\n", s.Op, us(h.Max()))
		fmt.Fprintf(&w, "[%s], 95thPercentileLatency(us), %d\n", s.Op, us(h.Quantile(0.95)))
		fmt.Fprintf(&w, "[%s], 99thPercentileLatency(us), %d\n", s.Op, us(h.Quantile(0.99)))
		for _, rc := range []struct {
			name string
			n    uint64
		}{{"OK", s.OK}, {"NOT_FOUND", s.NotFound}, {"ERROR", s.Errors}} {
			if rc.n > 0 {
				fmt.Fprintf(&w, "[%s], Return=%s, %d\n", s.Op, rc.name, rc.n)
			}
		}
	}
	_, err := io.WriteString(out, w.String())
	return err
}

// ycsbLine is one workload's operation as JSON: bench's contract keys
// (benchLine) plus the workload.
type ycsbLine struct {
	Workload string `json:"workload"`
	benchLine
}

func writeYCSBJSON(w io.Writer, res *loadgen.YCSBResult) error {
	enc := json.NewEncoder(w)
	for _, s := range res.Ops {
		h := s.Latency
		ops := 0.0
		if res.Elapsed > 0 {
			ops = float64(h.Count()) / res.Elapsed.Seconds()
		}
		err := enc.Encode(ycsbLine{Workload: res.Workload, benchLine: benchLine{
			Op: s.Op.String(), Count: s.Count, Errors: s.Errors,
			MeanMS: ms(h.Mean()), StdMS: ms(h.Std()), P50MS: ms(h.Quantile(0.5)), P99MS: ms(h.Quantile(0.99)),
			P999MS: ms(h.Quantile(0.999)), MaxMS: ms(h.Max()),
			OpsPerSec: ops, NotFound: s.NotFound, ElapsedS: res.Elapsed.Seconds(), FirstError: s.FirstError,
		}})
		if err != nil {
			return err
		}
	}
	return nil
}
