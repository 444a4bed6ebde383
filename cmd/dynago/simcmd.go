package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/dynago/dynago/sim"
)

// The simulator command: seeded runs of the deterministic simulator with a
// client workload and a fault schedule, checked for lost writes,
// resurrections and convergence.

func init() {
	register(command{name: "sim", summary: "run the deterministic simulator: sim run --seeds K",
		subs: []command{{name: "run", use: "[--seeds K | --seed S]", summary: "run seeded simulations and check every guarantee", long: simUsage, exit: simExitStatus, flags: runSim}}})
}

const simUsage = `Runs seeded simulations of a whole cluster in virtual time: concurrent
clients put, get and delete a few keys while faults are injected; then the
faults heal and the run checks that no acknowledged write was lost, that no
superseded value came back, and that the replicas converged (equal Merkle
roots, identical objects), measuring the virtual time convergence took.

One line per seed, then, as the last line, one JSON object:
{"seeds","acked","lost","resurrected","converged","max_convergence_ms","failed_seeds"}

--seed S replays one run exactly; add --trace for its event trace on stderr.
--lww runs the same schedules in last-write-wins mode as a negative
control: the checker must report lost writes.

--sessions makes every client a session carrying an X-Dynago-Session
token and checks, on every read that succeeded and every acknowledged
write, read-your-writes, monotonic reads, monotonic writes and
writes-follow-reads; a violation fails the seed. --session-control runs
the checker on clients without tokens: at --r 1 --w 1 it must find
read-your-writes violations. Both add "sessions" (counts per guarantee)
to the JSON line.`

const simExitStatus = `
Exit status: 0 when every seed passed; 1 when a seed lost or resurrected a
write or did not converge (with --lww: 1 when no write was lost, i.e. the
checker missed last-write-wins losing writes); 2 on bad usage.
`

// errSimFailed is returned when a run broke a guarantee, so the process
// exits 1.
var errSimFailed = errors.New("simulation failed")

// simSummary is the last line of `dynago sim run`.
type simSummary struct {
	Seeds            int      `json:"seeds"`
	Acked            int      `json:"acked"`
	Lost             int      `json:"lost"`
	Resurrected      int      `json:"resurrected"`
	Converged        bool     `json:"converged"`
	MaxConvergenceMs float64  `json:"max_convergence_ms"`
	FailedSeeds      []uint64 `json:"failed_seeds"`
	// Sessions: with --sessions or --session-control (simsession.go).
	Sessions *sessionTotals `json:"sessions,omitempty"`
}

// maxDetails bounds the violations printed per failing seed; the count is
// always exact, and --seed S --trace shows the rest.
const maxDetails = 10

func runSim(fs *flag.FlagSet) runFunc {
	var o sim.RunOptions
	seeds := fs.Int("seeds", 10, "run seeds 1..K")
	seed := fs.Uint64("seed", 0, "run only this seed (replay)")
	faults := fs.String("faults", "partition,crash,restart,wipe", "comma-separated faults to inject: partition, crash, restart, wipe, join, leave, outage; empty for none")
	fs.IntVar(&o.Nodes, "nodes", 5, "nodes in the cluster")
	fs.IntVar(&o.Clients, "clients", 4, "concurrent closed-loop clients")
	fs.IntVar(&o.Keys, "keys", 8, "keys the clients share (few, so that writes conflict)")
	fs.IntVar(&o.N, "n", 3, "replicas per key")
	fs.IntVar(&o.R, "r", 2, "read quorum")
	fs.IntVar(&o.W, "w", 2, "write quorum")
	fs.IntVar(&o.Partitions, "partitions", 64, "partitions Q, a power of two")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "virtual time of workload and faults per seed")
	fs.BoolVar(&o.LWW, "lww", false, "last-write-wins mode: a negative control that must lose writes")
	fs.BoolVar(&o.Sessions, "sessions", false, "clients carry session tokens; print session-guarantee violations per guarantee (they fail the seed)")
	sessionControl := fs.Bool("session-control", false, "check session guarantees without tokens: a negative control that must find read-your-writes violations (use --r 1 --w 1)")
	trace := fs.Bool("trace", false, "write the event trace to stderr (use with --seed)")
	quiet := fs.Bool("quiet", false, "print only the JSON summary (and failing seeds' details)")
	parallel := fs.Int("parallel", runtime.GOMAXPROCS(0), "seeds run at once (each run is single-threaded and deterministic; the output order is fixed)")
	return func(ctx context.Context, _ []string) error {
		seedSet := false
		fs.Visit(func(f *flag.Flag) { seedSet = seedSet || f.Name == "seed" })
		var list []uint64
		switch {
		case seedSet:
			list = []uint64{*seed}
		case *seeds < 1:
			return fmt.Errorf("%w: --seeds must be at least 1", errUsage)
		default:
			for s := 1; s <= *seeds; s++ {
				list = append(list, uint64(s))
			}
		}
		for f := range strings.SplitSeq(*faults, ",") {
			if f = strings.TrimSpace(f); f != "" {
				o.Faults = append(o.Faults, f)
			}
		}
		if *parallel < 1 {
			return fmt.Errorf("%w: --parallel must be at least 1", errUsage)
		}
		if *trace {
			// Traces of concurrent runs would interleave.
			o.Trace, *parallel = stderr, 1
		}

		results, err := runSeeds(ctx, o, list, *parallel)
		if err != nil {
			if errors.Is(err, sim.ErrBadRunOptions) {
				return fmt.Errorf("%w: %w", errUsage, err)
			}
			return err
		}

		sum := simSummary{Seeds: len(results), Converged: true, FailedSeeds: []uint64{}}
		if o.Sessions || *sessionControl {
			sum.Sessions = &sessionTotals{Tokens: o.Sessions}
		}
		for _, r := range results {
			sum.Acked += r.Acked
			sum.Lost += r.Lost
			sum.Resurrected += r.Resurrected
			sum.Converged = sum.Converged && r.Converged
			if r.Converged {
				sum.MaxConvergenceMs = math.Max(sum.MaxConvergenceMs, r.ConvergenceMs)
			}
			if r.Failed() {
				sum.FailedSeeds = append(sum.FailedSeeds, r.Seed)
			}
			if !*quiet || (r.Failed() && !o.LWW) {
				fmt.Fprintln(stdout, r)
			}
			if r.Failed() && !o.LWW {
				printDetails("lost", r.LostDetails)
				printDetails("resurrected", r.ResurrectedDetails)
			}
			if sum.Sessions != nil {
				sum.Sessions.add(r.Session)
				printSessionSeed(r, *quiet)
			}
		}
		line, err := json.Marshal(sum)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", line)

		if o.LWW {
			if sum.Lost == 0 {
				return fmt.Errorf("%w: negative control: last-write-wins lost no acknowledged write, so the checker (or the workload) cannot see lost writes", errSimFailed)
			}
			fmt.Fprintf(stderr, "note: negative control passed: last-write-wins lost %d acknowledged writes in %d of %d seeds, and the checker caught them\n",
				sum.Lost, len(sum.FailedSeeds), sum.Seeds)
			return nil
		}
		if *sessionControl && !o.Sessions && len(sum.FailedSeeds) == 0 {
			return sessionControlVerdict(sum.Sessions)
		}
		if len(sum.FailedSeeds) > 0 {
			return fmt.Errorf("%w: %d of %d seeds failed: %v (replay one with --seed S --trace)", errSimFailed, len(sum.FailedSeeds), sum.Seeds, sum.FailedSeeds)
		}
		return nil
	}
}

func printDetails(what string, details []string) {
	for i, d := range details {
		if i == maxDetails {
			fmt.Fprintf(stdout, "  ... %d more %s\n", len(details)-maxDetails, what)
			break
		}
		fmt.Fprintf(stdout, "  %s: %s\n", what, d)
	}
}

// runSeeds runs the seeds of list, up to parallel at once, and returns the
// results in list order. Runs share nothing, so parallelism changes only
// the wall time, never a result.
func runSeeds(ctx context.Context, o sim.RunOptions, list []uint64, parallel int) ([]sim.Result, error) {
	results := make([]sim.Result, len(list))
	errs := make([]error, len(list))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(parallel, len(list)) {
		wg.Go(func() {
			for i := range next {
				so := o
				so.Seed = list[i]
				results[i], errs[i] = sim.RunSeed(so)
			}
		})
	}
feed:
	for i := range list {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, err := range errs {
		if err != nil {
			return nil, err // every seed fails alike on bad options: report one
		}
	}
	return results, nil
}
