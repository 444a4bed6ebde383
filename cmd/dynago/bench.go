package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dynago/dynago/loadgen"
)

// The bench command: a workload against a running cluster, measured by
// package loadgen, reported as a table or as JSON lines.

func init() {
	register(command{name: "bench", summary: "measure a running cluster: a get/put/delete workload, latency percentiles", run: runBench})
}

const benchUsage = `bench [flags]

Runs a workload of gets, puts and deletes on keys bench-0..bench-(keys-1)
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
latencies and ops/s cover successes only.`

func runBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: dynago %s\n\nFlags:\n", benchUsage)
		fs.PrintDefaults()
	}
	addr := fs.String("addr", envDefault("DYNAGO_ADDR", defaultAddr),
		"comma-separated HTTP addresses of the nodes requests enter at (host:port or URL); env DYNAGO_ADDR")
	mix := fs.String("mix", "get=50,put=40,delete=10", "relative weights of the operations")
	keys := fs.Int("keys", 10000, "number of distinct keys")
	dist := fs.String("dist", "uniform", "key distribution: uniform or zipfian (s=1.1, bench-0 hottest)")
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
	route := fs.String("route", "any", "where requests enter: any (a random node of --addr) or client (the key's preference list, learned from the ring)")
	rbw := fs.Bool("read-before-write", false, "read each key before putting or deleting it, and write with the context read")
	preload := fs.Bool("preload", false, "write every key once before measuring")
	asJSON := fs.Bool("json", false, "print one JSON object per operation instead of a table")
	progress := fs.Bool("progress", false, "show progress on stderr even when it is not a terminal")
	noProgress := fs.Bool("no-progress", false, "never show progress")
	experiment := fs.String("experiment", "", "run a built-in experiment on its own local cluster instead: seed-table, floors")
	if _, err := parseArgs(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	switch *experiment {
	case "":
	case "seed-table":
		return runSeedTable(ctx, seedTableOptions{Nodes: 8, Requests: 1000, Batch: 10, Delay: 10 * time.Millisecond, JSON: *asJSON})
	case "floors":
		return runFloors(ctx, "")
	default:
		return fmt.Errorf("%w: --experiment %q: the experiments are seed-table and floors", errUsage, *experiment)
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
	copts := loadgen.ClientOptions{R: *r, W: *w, Timeout: *timeout, ReadBeforeWrite: *rbw,
		MaxConns: max(*concurrency, min(*maxOut, 64))}
	if *rate > 0 {
		copts.MaxConns = *maxOut
	}
	var target loadgen.Target
	// Each route is a loadgen.Target; client-side routing to a
	// preference-list node would be one more case here.
	switch *route {
	case "any", "client":
		copts.Routing = *route == "client"
		if target, err = loadgen.NewClientTarget(addrs, copts); err != nil {
			return fmt.Errorf("%w: --addr: %w", errUsage, err)
		}
	default:
		return fmt.Errorf("%w: --route %q: want any or client", errUsage, *route)
	}

	if *progress || (!*noProgress && isTerminal(stderr)) {
		bar := &progressLine{w: stderr, ops: cfg.Ops, duration: cfg.Duration}
		cfg.Progress = bar.show
	}
	res, err := loadgen.Run(ctx, cfg, target)
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
	return tw.Flush()
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
			Hist: histBins(s.Latency),
		}); err != nil {
			return err
		}
	}
	return nil
}

// isTerminal reports whether w is a character device, so that a progress
// line redrawn with \r does not litter a log file or a pipe.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
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
