package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/dynago/dynago/chaos"
	"github.com/dynago/dynago/devcluster"
)

func init() {
	register(command{name: "chaos", summary: "run a Jepsen-style set test on a fresh local cluster under faults", long: chaosUsage, exit: chaosExitStatus, flags: runChaos})
}

const chaosUsage = `Starts a fresh local cluster of real 'dynago server' processes (this
binary), then for --duration: --clients clients add unique elements to
--keys sets by read-modify-write with the context (siblings merged as a
union), each request through a random node, while a nemesis injects one
fault at a time: SIGKILL and restart, SIGSTOP/SIGCONT pauses, short
partitions, partitions longer than --dead-timeout, and wiped data
directories. Then it heals everything, waits up to --converge-timeout for
every node to return the same set for every key, reads every set and
checks it: an element acknowledged (2xx) but missing is lost; an element
no client wrote is unexpected; a failed write may go either way.

Progress goes to stderr; the last line on stdout is one JSON object:
{"seed","attempted","acked","indeterminate","lost","unexpected",
 "read_availability","write_availability","converged","convergence_s",
 "nemesis",...,"valid"}

--lww runs every node last-write-wins: the negative control, which must
lose acknowledged elements.`

const chaosExitStatus = `
Exit status: 0 when the run converged and lost nothing and saw nothing
unexpected; 1 otherwise (with --lww: 0 when the checker caught lost
elements, 1 when nothing was lost, i.e. the checker missed
last-write-wins losing writes); 2 on bad usage.
`

// errChaosFailed makes the process exit 1 after the report is printed.
var errChaosFailed = errors.New("chaos run failed")

func runChaos(fs *flag.FlagSet) runFunc {
	var cfg chaos.Config
	var dc devcluster.Config
	fs.DurationVar(&cfg.Duration, "duration", chaos.DefaultDuration, "how long the clients and the nemesis run (healing and convergence come after)")
	fs.IntVar(&dc.Nodes, "nodes", 5, "number of nodes")
	fs.IntVar(&cfg.Clients, "clients", chaos.DefaultClients, "concurrent clients")
	fs.IntVar(&cfg.Keys, "keys", chaos.DefaultKeys, "number of keys (sets)")
	seed := fs.Uint64("seed", 0, "seed of every random choice (default: a random seed, printed)")
	nemesis := fs.String("nemesis", strings.Join(chaos.AllNemeses, ","), "faults to mix, comma-separated, or all, or none")
	fs.BoolVar(&cfg.LWW, "lww", false, "run the nodes last-write-wins: a negative control that must lose elements")
	fs.IntVar(&dc.HTTPBasePort, "http-base-port", 0, "node i serves HTTP on this port + i - 1, RPC 100 and gossip 200 above (default: free ports)")
	keep := fs.Bool("keep", false, "keep the nodes' data directory and logs (a failed run always keeps them)")
	fs.DurationVar(&cfg.DeadTimeout, "dead-timeout", chaos.DefaultDeadTimeout, "how long the cluster takes to declare a cut-off node dead and give up on it; long partitions last this plus 2-5s")
	fs.DurationVar(&cfg.ConvergeTimeout, "converge-timeout", chaos.DefaultConvergeTimeout, "bound on the wait for convergence after the final heal")
	return func(ctx context.Context, _ []string) error {
		var err error
		if cfg.Nemesis, err = chaos.ParseNemesis(*nemesis); err != nil {
			return fmt.Errorf("%w: --nemesis: %v", errUsage, err)
		}
		cfg.Seed = *seed
		seedSet := false
		fs.Visit(func(f *flag.Flag) { seedSet = seedSet || f.Name == "seed" })
		if !seedSet {
			cfg.Seed = rand.Uint64N(1 << 31)
		}
		switch {
		case cfg.Duration <= 0 || cfg.DeadTimeout <= 0 || cfg.ConvergeTimeout <= 0:
			return fmt.Errorf("%w: --duration, --dead-timeout and --converge-timeout must be positive", errUsage)
		case cfg.Clients < 1 || cfg.Keys < 1 || dc.Nodes < 1:
			return fmt.Errorf("%w: --nodes, --clients and --keys must be at least 1", errUsage)
		}
		if dc.HTTPBasePort == 0 {
			if dc.HTTPBasePort, err = devcluster.FreePortBase(dc.Nodes); err != nil {
				return err
			}
		}
		if cfg.LWW {
			dc.ExtraArgs = append(dc.ExtraArgs, "--lww")
		}
		logf := func(format string, a ...any) {
			fmt.Fprintf(stderr, "chaos: "+format+"\n", a...)
		}
		cfg.Log = logf

		logf("seed %d; starting %d nodes (HTTP ports from %d)%s", cfg.Seed, dc.Nodes, dc.HTTPBasePort, map[bool]string{true: ", last-write-wins"}[cfg.LWW])
		startCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
		c, err := devcluster.Start(startCtx, dc)
		cancel()
		if err != nil {
			return err
		}
		failed := false
		defer func() {
			// A failed run keeps its nodes' data and logs: they are the evidence.
			kept := *keep || failed
			c.Cleanup(kept)
			if kept {
				logf("data and logs kept in %s", c.DataDir)
			}
		}()
		logf("cluster up, data in %s; running for %v with nemesis %q", c.DataDir, cfg.Duration, strings.Join(cfg.Nemesis, ","))

		rep, err := chaos.Run(ctx, chaos.NewProcesses(c), cfg)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted: every fault healed, nothing checked: %w", err)
			}
			failed = true
			return err
		}
		line, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", line)
		err = chaosVerdict(rep)
		failed = err != nil
		return err
	}
}

// chaosVerdict turns a report into the exit status.
func chaosVerdict(rep chaos.Report) error {
	if rep.LWW {
		if rep.Lost == 0 {
			return fmt.Errorf("%w: negative control: last-write-wins lost none of %d acknowledged elements, so the checker (or the workload) cannot see lost writes", errChaosFailed, rep.Acked)
		}
		fmt.Fprintf(stderr, "chaos: negative control passed: last-write-wins lost %d of %d acknowledged elements, and the checker caught them\n", rep.Lost, rep.Acked)
		return nil
	}
	var why []string
	if rep.Lost > 0 {
		why = append(why, fmt.Sprintf("%d acknowledged elements lost (e.g. %s)", rep.Lost, strings.Join(rep.LostElements[:min(3, len(rep.LostElements))], ", ")))
	}
	if rep.Unexpected > 0 {
		why = append(why, fmt.Sprintf("%d unexpected elements (e.g. %s)", rep.Unexpected, strings.Join(rep.UnexpectedElements[:min(3, len(rep.UnexpectedElements))], ", ")))
	}
	if rep.HealError != "" {
		why = append(why, "the final heal failed: "+rep.HealError)
	}
	if !rep.Converged {
		why = append(why, fmt.Sprintf("not converged %gs after the final heal: %s", rep.ConvergenceS, rep.Unconverged))
	}
	if len(why) > 0 {
		return fmt.Errorf("%w: %s (seed %d)", errChaosFailed, strings.Join(why, "; "), rep.Seed)
	}
	fmt.Fprintf(stderr, "chaos: passed: %d acknowledged elements, none lost; converged %gs after the final heal\n", rep.Acked, rep.ConvergenceS)
	return nil
}
