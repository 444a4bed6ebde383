package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dynago/dynago/lab"
	"github.com/dynago/dynago/loadgen"
	"golang.org/x/term"
)

// The bench command: a workload against a running cluster, measured by
// package loadgen, reported as a table or as JSON lines.

func init() {
	register(command{name: "bench", summary: "measure a running cluster: a get/put/delete workload, latency percentiles", long: benchUsage, flags: runBench})
}

const benchUsage = `Runs a workload of gets, puts and deletes on keys bench-0..bench-(keys-1)
against the nodes at --addr, then prints, per operation: count, errors,
not-found reads, latency mean, std, p50, p99, p99.9 and max in
milliseconds, and successful operations per second.

Closed loop (default): --concurrency workers each send a request and wait
for its answer. Open loop (--rate N): requests are due at a fixed rate
whatever the cluster does, at most --max-outstanding in flight; latency is
measured from each request's due time, so time queued behind a slow
cluster counts (no coordinated omission).

Each request enters at a node drawn at random among --addr (--route any);
a node that fails is not skipped, its requests count as errors. Puts and
deletes are blind writes (no context) unless --read-before-write: blind
puts keep what is stored as siblings, so hot keys grow siblings. Errors
are any answer but success and, for gets, not-found (counted apart);
latencies and ops/s cover successes only.

--protocol resp drives the nodes' RESP front ends instead (--addr lists
their --resp-addr): gets are DGET, puts DSET, deletes DDEL, with the same
quorums, timeout and read-before-write.`

func runBench(fs *flag.FlagSet) runFunc {
	addr := fs.String("addr", envDefault("DYNAGO_ADDR", defaultAddr),
		"comma-separated HTTP addresses of the nodes requests enter at (host:port or URL); env DYNAGO_ADDR")
	mix := fs.String("mix", "get=50,put=40,delete=10", "relative weights of the operations")
	keys := fs.Int("keys", 10000, "number of distinct keys")
	dist := fs.String("dist", "uniform", "key distribution: uniform or zipfian (YCSB's scrambled zipfian, theta 0.99)")
	seed := fs.Uint64("seed", 1, "seed of the operation and key draws")
	valueSize := fs.Int("value-size", 100, "bytes per put")
	concurrency := fs.Int("concurrency", 16, "closed-loop workers (and preload workers)")
	rate := fs.Float64("rate", 0, "open loop: operations per second on a fixed schedule (0 = closed loop)")
	maxOut := fs.Int("max-outstanding", 512, "open loop: most requests in flight; due requests beyond it wait, and the wait counts")
	duration := fs.Duration("duration", 10*time.Second, "how long to issue requests (not with --ops)")
	ops := fs.Int64("ops", 0, "number of operations to issue instead of --duration")
	r := fs.Int("r", 0, "replicas a get waits for, 1..N (default: the cluster's R)")
	w := fs.Int("w", 0, "replicas a put or delete waits for, 1..N (default: the cluster's W)")
	timeout := fs.Duration("timeout", 0, "coordination timeout per request, e.g. 500ms (default: the node's)")
	protocol := fs.String("protocol", "http", "http, or resp: --addr are the nodes' --resp-addr and requests are DGET, DSET, DDEL through go-redis")
	route := fs.String("route", "any", "where requests enter: any (a random node of --addr) or client (the key's preference list, learned from the ring)")
	rbw := fs.Bool("read-before-write", false, "read each key before putting or deleting it, and write with the context read")
	preload := fs.Bool("preload", false, "write every key once before measuring")
	asJSON := fs.Bool("json", false, "print one JSON object per operation instead of a table")
	cpuProfile := fs.String("cpuprofile", "", "write the load generator's own CPU profile (go tool pprof) to this file, over the measured run")
	progress := fs.Bool("progress", false, "show progress on stderr even when it is not a terminal")
	noProgress := fs.Bool("no-progress", false, "never show progress")
	sec := clientSecFlags(fs)
	experiment := fs.String("experiment", "", "run a built-in experiment instead: seed-table, floors (tables, on local clusters they start), or one of the paper's (charts): "+labNames())
	labOut := fs.String("out", "experiments", "paper experiments: directory the chart (SVG) is written to")
	labChart := fs.String("chart", "svg", "paper experiments: chart format, svg or png")
	labCluster := fs.String("cluster", "sim", "paper experiments: sim (the simulator), dev (local clusters the experiment starts), or HTTP addresses of a running cluster")
	return func(ctx context.Context, _ []string) error {
		switch *experiment {
		case "":
		case "seed-table":
			return runSeedTable(ctx, lab.DefaultSeedTable(), *asJSON)
		case "floors":
			return runFloors(ctx)
		default:
			if lab.Known(*experiment) {
				return runLab(ctx, *experiment, *labCluster, *labOut, *labChart, *seed)
			}
			return fmt.Errorf("%w: --experiment %q: the experiments are seed-table, floors, %s", errUsage, *experiment, labNames())
		}
		durationSet := false
		fs.Visit(func(f *flag.Flag) { durationSet = durationSet || f.Name == "duration" })

		cfg := loadgen.Config{
			Keys: *keys, ValueSize: *valueSize, Seed: *seed, Concurrency: *concurrency,
			Rate: *rate, MaxOutstanding: *maxOut, Duration: *duration, Ops: *ops, Preload: *preload,
		}
		var err error
		if cfg.Mix, err = loadgen.ParseMix(*mix); err != nil {
			return fmt.Errorf("%w: --mix: %w", errUsage, err)
		}
		if cfg.Dist, err = loadgen.ParseDist(*dist); err != nil {
			return fmt.Errorf("%w: --dist: %w", errUsage, err)
		}
		switch {
		case *ops < 0:
			return fmt.Errorf("%w: --ops must be positive, got %d", errUsage, *ops)
		case *ops > 0 && durationSet:
			return fmt.Errorf("%w: give --duration or --ops, not both", errUsage)
		case *ops > 0:
			cfg.Duration = 0
		case *duration <= 0:
			return fmt.Errorf("%w: --duration must be positive, got %v", errUsage, *duration)
		}
		if *r < 0 || *w < 0 || *timeout < 0 {
			return fmt.Errorf("%w: --r, --w and --timeout must be positive", errUsage)
		}
		if *progress && *noProgress {
			return fmt.Errorf("%w: --progress and --no-progress contradict each other", errUsage)
		}
		var addrs []string
		for a := range strings.SplitSeq(*addr, ",") {
			if a = strings.TrimSpace(a); a != "" {
				addrs = append(addrs, a)
			}
		}
		cr, err := sec.resolve()
		if err != nil {
			return err
		}
		copts := loadgen.ClientOptions{R: *r, W: *w, Timeout: *timeout, ReadBeforeWrite: *rbw,
			MaxConns: max(*concurrency, min(*maxOut, 64)), Extra: cr.options()}
		if *rate > 0 {
			copts.MaxConns = *maxOut
		}
		var target loadgen.Target
		// Each route is a loadgen.Target; client-side routing to a
		// preference-list node would be one more case here.
		switch *route {
		case "any", "client":
			copts.Routing = *route == "client"
			switch *protocol {
			case "http":
				target, err = loadgen.NewClientTarget(addrs, copts)
			case "resp":
				var rt *loadgen.RESPTarget
				rt, err = loadgen.NewRESPTarget(addrs, copts)
				if err == nil {
					defer rt.Close()
					target = rt
				}
			default:
				return fmt.Errorf("%w: --protocol %q: want http or resp", errUsage, *protocol)
			}
			if err != nil {
				return fmt.Errorf("%w: --addr: %w", errUsage, err)
			}
		default:
			return fmt.Errorf("%w: --route %q: want any or client", errUsage, *route)
		}

		if *progress || (!*noProgress && isTerminal(stderr)) {
			bar := &progressLine{w: stderr, ops: cfg.Ops, duration: cfg.Duration}
			cfg.Progress = bar.show
		}
		stopProfile, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		res, err := loadgen.Run(ctx, cfg, target)
		if perr := stopProfile(); err == nil && perr != nil {
			return perr
		}
		if err != nil {
			if errors.Is(err, loadgen.ErrConfig) {
				return fmt.Errorf("%w: %w", errUsage, err)
			}
			return err
		}
		if cfg.Progress != nil {
			fmt.Fprintln(stderr)
		}
		if res.Interrupted {
			fmt.Fprintf(stderr, "interrupted after %v: partial results\n", res.Elapsed.Round(time.Millisecond))
		}
		if *asJSON {
			err = writeBenchJSON(stdout, res)
		} else {
			err = writeBenchTable(stdout, describeBench(&cfg, len(addrs), *rbw), res)
		}
		if err != nil {
			return err
		}
		for _, s := range res.Ops {
			if s.FirstError != "" {
				fmt.Fprintf(stderr, "%s: %d errors, first: %s\n", s.Op, s.Errors, s.FirstError)
			}
		}
		return nil
	}
}

func describeBench(c *loadgen.Config, nodes int, rbw bool) string {
	loop := fmt.Sprintf("closed loop, %d workers", c.Concurrency)
	if c.Rate > 0 {
		loop = fmt.Sprintf("open loop, %g ops/s, at most %d outstanding", c.Rate, c.MaxOutstanding)
	}
	writes := "blind writes"
	if rbw {
		writes = "read-before-write"
	}
	return fmt.Sprintf("%s; %d %s keys; mix %s; %d-byte values; %s; %d entry node(s)",
		loop, c.Keys, c.Dist, c.Mix, c.ValueSize, writes, nodes)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func writeBenchTable(w io.Writer, desc string, res *loadgen.Result) error {
	fmt.Fprintf(w, "%s; %v elapsed\n\n", desc, res.Elapsed.Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tcount\terrors\tnot_found\tmean_ms\tstd_ms\tp50_ms\tp99_ms\tp99.9_ms\tmax_ms\tops/s\t")
	for _, s := range res.Ops {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.1f\t\n", s.Op, s.Count, s.Errors, s.NotFound,
			ms(s.Mean), ms(s.Std), ms(s.P50), ms(s.P99), ms(s.P999), ms(s.Max), s.OpsPerSec)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if c := res.ClientCPUPerOp(); c > 0 {
		// What the load generator itself cost: on a machine it shares
		// with the cluster, this much of every request's CPU is not the
		// cluster's.
		_, err := fmt.Fprintf(w, "\nbench's own CPU: %.1f µs per request\n", float64(c.Nanoseconds())/1e3)
		return err
	}
	return nil
}

// benchLine is one operation's JSON line. The first ten keys are the
// contract scripts rely on; the rest are extra.
type benchLine struct {
	Op         string  `json:"op"`
	Count      uint64  `json:"count"`
	Errors     uint64  `json:"errors"`
	MeanMS     float64 `json:"mean_ms"`
	StdMS      float64 `json:"std_ms"`
	P50MS      float64 `json:"p50_ms"`
	P99MS      float64 `json:"p99_ms"`
	P999MS     float64 `json:"p999_ms"`
	MaxMS      float64 `json:"max_ms"`
	OpsPerSec  float64 `json:"ops_per_sec"`
	NotFound   uint64  `json:"not_found"`
	ElapsedS   float64 `json:"elapsed_s"`
	FirstError string  `json:"first_error,omitempty"`
	// ClientCPUUS is the load generator's own CPU per request of the
	// whole run, in µs (loadgen.Result.ClientCPUPerOp), 0 when unknown.
	ClientCPUUS float64 `json:"client_cpu_us_per_op,omitempty"`
	// Hist is the latency distribution in bins four to a power of two,
	// for charts (the dashboard draws it).
	Hist []histBin `json:"hist,omitempty"`
}

type histBin struct {
	UpToMS float64 `json:"le_ms"` // the bin holds latencies up to this
	Count  uint64  `json:"count"`
}

func histBins(h *loadgen.Histogram) []histBin {
	if h == nil {
		return nil
	}
	var out []histBin
	for _, b := range h.Bins(4) {
		out = append(out, histBin{UpToMS: ms(b.UpTo), Count: b.Count})
	}
	return out
}

func writeBenchJSON(w io.Writer, res *loadgen.Result) error {
	enc := json.NewEncoder(w)
	for _, s := range res.Ops {
		if err := enc.Encode(benchLine{
			Op: s.Op.String(), Count: s.Count, Errors: s.Errors,
			MeanMS: ms(s.Mean), StdMS: ms(s.Std), P50MS: ms(s.P50), P99MS: ms(s.P99), P999MS: ms(s.P999), MaxMS: ms(s.Max),
			OpsPerSec: s.OpsPerSec, NotFound: s.NotFound, ElapsedS: res.Elapsed.Seconds(), FirstError: s.FirstError,
			Hist: histBins(s.Latency), ClientCPUUS: float64(res.ClientCPUPerOp().Nanoseconds()) / 1e3,
		}); err != nil {
			return err
		}
	}
	return nil
}

// isTerminal reports whether w is a terminal, so that a progress line
// redrawn with \r does not litter a log file, a pipe or /dev/null (a
// character device, but no terminal: the terminal's own ioctl tells).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressLine redraws one stderr line: a bar towards the target (ops or
// duration), elapsed time and the rate so far.
type progressLine struct {
	w        io.Writer
	ops      int64
	duration time.Duration
	width    int // of the last line drawn, to blank it out
}

func (p *progressLine) show(pr loadgen.Progress) {
	var bar, target string
	if p.ops > 0 {
		bar, target = progressBar(int(min(pr.Done, p.ops)), int(p.ops), 30), fmt.Sprintf("%d/%d ops", pr.Done, p.ops)
	} else {
		bar = progressBar(int(min(pr.Elapsed, p.duration)/time.Millisecond), int(p.duration/time.Millisecond), 30)
		target = fmt.Sprintf("%d ops", pr.Done)
	}
	rate := 0.0
	if pr.Elapsed > 0 {
		rate = float64(pr.Done) / pr.Elapsed.Seconds()
	}
	line := fmt.Sprintf("%s %.1fs", bar, pr.Elapsed.Seconds())
	if p.duration > 0 {
		line += fmt.Sprintf("/%.0fs", p.duration.Seconds())
	}
	line += fmt.Sprintf("  %s  %.0f ops/s", target, rate)
	pad := max(p.width-len(line), 0)
	p.width = len(line)
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
}

// runLab runs one of the paper's experiments (package lab): JSON lines on
// stdout, progress on stderr, the chart's path last on stderr.
func runLab(ctx context.Context, name, cluster, out, format string, seed uint64) error {
	target, err := lab.ParseTarget(cluster)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	chart, err := lab.Run(ctx, name, lab.Options{Target: target, Out: out, Format: format, Seed: seed, JSON: stdout, Log: stderr})
	if errors.Is(err, lab.ErrOptions) {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "chart: %s\n", chart)
	return nil
}

func labNames() string {
	var names []string
	for _, e := range lab.Experiments() {
		names = append(names, e.Name)
	}
	return strings.Join(names, ", ")
}

// runSeedTable runs the seed table (package lab) and prints its rows: a
// table, or with --json one line per row in the shape of bench's lines
// plus config, route and floor_ms (the dashboard reads them).
func runSeedTable(ctx context.Context, o lab.SeedTableOptions, asJSON bool) error {
	o.Log = stderr
	rows, err := lab.SeedTable(ctx, o)
	if err != nil {
		return err
	}
	if asJSON {
		return writeSeedJSON(stdout, rows)
	}
	return writeSeedTable(stdout, rows, o)
}

func writeSeedTable(w io.Writer, rows []lab.SeedRow, o lab.SeedTableOptions) error {
	fmt.Fprintf(w, "seed table: %d nodes, %v one-way delay, %d requests per row in batches of %d\n\n", o.Nodes, o.Delay, o.Requests, o.Batch)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "config\troute\top\tcount\terrors\tmean_ms\tstd_ms\tp99.9_ms\tfloor_ms\tmean/floor\tp99.9/floor\t")
	for _, r := range rows {
		ratio := func(d time.Duration) string {
			if r.FloorMS == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f", ms(d)/r.FloorMS)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t%s\t\n", r.Config, r.Route, r.Op, r.Hist.Count(), r.Errors,
			ms(r.Hist.Mean()), ms(r.Hist.Std()), ms(r.Hist.Quantile(0.999)), r.FloorMS, ratio(r.Hist.Mean()), ratio(r.Hist.Quantile(0.999)))
	}
	return tw.Flush()
}

func writeSeedJSON(w io.Writer, rows []lab.SeedRow) error {
	enc := json.NewEncoder(w)
	for _, r := range rows {
		h := r.Hist
		line := map[string]any{
			"op": r.Op, "count": h.Count() + r.Errors, "errors": r.Errors,
			"mean_ms": ms(h.Mean()), "std_ms": ms(h.Std()), "p50_ms": ms(h.Quantile(0.5)), "p99_ms": ms(h.Quantile(0.99)),
			"p999_ms": ms(h.Quantile(0.999)), "max_ms": ms(h.Max()), "ops_per_sec": float64(h.Count()) / r.Took.Seconds(),
			"config": r.Config.String(), "route": r.Route, "floor_ms": r.FloorMS, "hist": histBins(h),
		}
		if err := enc.Encode(line); err != nil {
			return err
		}
	}
	return nil
}

// runFloors runs the floors experiment (package lab) and prints its two
// tables: the floors, then the cluster's medians beside them.
func runFloors(ctx context.Context) error {
	res, err := lab.Floors(ctx, lab.FloorsOptions{Log: stderr})
	if err != nil {
		return err
	}
	return writeFloors(stdout, res)
}

func writeFloors(w io.Writer, res lab.FloorsResult) error {
	f, put, get := res.Floors, res.Put, res.Get
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "floor\tmedian_ms\t")
	fmt.Fprintf(tw, "loopback TCP round trip\t%.3f\t\n", ms(f.RTT))
	fmt.Fprintf(tw, "fan-out round trip to two peers\t%.3f\t\n", ms(f.Fanout))
	fmt.Fprintf(tw, "one fsync (Pebble, 100-byte write)\t%.3f\t\n", ms(f.Fsync))
	fmt.Fprintf(tw, "three concurrent fsyncs, one disk\t%.3f\t\n", ms(f.Fsync3))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	putFloor, sharedFloor, getFloor := f.PutFloor(), f.SharedPutFloor(), f.GetFloor()
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op (1 client, client routing)\tp50_ms\tmean_ms\tp99_ms\tfloor_ms\tp50/floor\tshared-disk floor_ms\tp50/shared\t")
	fmt.Fprintf(tw, "put N=3 W=2\t%.3f\t%.3f\t%.3f\t%.3f\t%.2f\t%.3f\t%.2f\t\n", ms(put.P50), ms(put.Mean), ms(put.P99), ms(putFloor), ms(put.P50)/ms(putFloor), ms(sharedFloor), ms(put.P50)/ms(sharedFloor))
	fmt.Fprintf(tw, "get N=3 R=2\t%.3f\t%.3f\t%.3f\t%.3f\t%.2f\t%.3f\t%.2f\t\n", ms(get.P50), ms(get.Mean), ms(get.P99), ms(getFloor), ms(get.P50)/ms(getFloor), ms(getFloor), ms(get.P50)/ms(getFloor))
	return tw.Flush()
}

// startCPUProfile starts a CPU profile of this process into path (nothing
// when path is empty) and returns the function that ends it: the bench's
// own share of a run's CPU is a cost of every measurement (issue #11), and
// this shows where it goes.
func startCPUProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		return nil
	}, nil
}
