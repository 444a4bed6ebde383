package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ErrUnknown is returned by Run for a name that is not an experiment.
var ErrUnknown = errors.New("lab: unknown experiment")

// ErrOptions is wrapped by the errors about bad options: a target an
// experiment cannot use, a missing output directory.
var ErrOptions = errors.New("lab: bad options")

// Target says where an experiment runs. The zero Target is the simulator.
type Target struct {
	// Dev starts local clusters of the dynago binary (Options.Binary),
	// one per configuration the experiment needs, and stops them after.
	Dev bool
	// Addrs are the HTTP addresses of a running cluster (host:port or
	// URL).
	Addrs []string
}

// ParseTarget reads a --cluster value: "" or "sim" for the simulator,
// "dev" for local clusters, else comma-separated HTTP addresses.
func ParseTarget(s string) (Target, error) {
	switch s = strings.TrimSpace(s); s {
	case "", "sim":
		return Target{}, nil
	case "dev":
		return Target{Dev: true}, nil
	}
	var t Target
	for a := range strings.SplitSeq(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			t.Addrs = append(t.Addrs, a)
		}
	}
	if len(t.Addrs) == 0 {
		return Target{}, fmt.Errorf("%w: --cluster %q names no address", ErrOptions, s)
	}
	return t, nil
}

// Engine names the target in output: sim, dev or live.
func (t Target) Engine() string {
	switch {
	case t.Dev:
		return "dev"
	case len(t.Addrs) > 0:
		return "live"
	}
	return "sim"
}

// Options are what every experiment takes.
type Options struct {
	Target Target
	// Out is the directory the chart is written to (created if needed).
	Out string
	// Format is the chart's: svg (default) or png.
	Format string
	Seed   uint64 // seeds the workload and the simulator; 0 means 1
	// Binary is the dynago executable dev clusters run; default: this
	// executable.
	Binary string
	// JSON receives the data points, one JSON object a line.
	JSON io.Writer
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

func (o *Options) defaults() error {
	if o.Out == "" {
		return fmt.Errorf("%w: an output directory (--out) is required", ErrOptions)
	}
	switch o.Format {
	case "":
		o.Format = "svg"
	case "svg", "png":
	default:
		return fmt.Errorf("%w: chart format %q (want svg or png)", ErrOptions, o.Format)
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.JSON == nil {
		o.JSON = io.Discard
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return os.MkdirAll(o.Out, 0o755)
}

// chartPath is where the chart of experiment name goes.
func (o *Options) chartPath(name string) string { return filepath.Join(o.Out, name+"."+o.Format) }

func (o *Options) logf(format string, args ...any) { fmt.Fprintf(o.Log, format+"\n", args...) }

// emit writes one data point as a JSON line.
func (o *Options) emit(v any) error { return json.NewEncoder(o.JSON).Encode(v) }

// Experiment describes one experiment.
type Experiment struct {
	Name    string
	Section string // of the Dynamo paper
	Summary string
	run     func(ctx context.Context, o Options) (chart string, err error)
}

var experiments = []Experiment{
	{Name: "balance", Section: "§6.2, Figure 8", Summary: "fraction of nodes more than 15 % above the mean load, against request rate, for Q = 64, 256, 1024 and uniform or zipfian keys", run: runBalance},
	{Name: "divergence", Section: "§6.3", Summary: "share of reads returning 1, 2, 3, 4+ versions under a shopping-cart workload, with and without failures", run: runDivergence},
	{Name: "coordination", Section: "§6.4, Table 2", Summary: "client-driven against server-driven coordination: mean and p99.9 latency of reads and writes", run: runCoordination},
	{Name: "durability-latency", Section: "§6.1", Summary: "put latency percentiles for W = 1..N, fsync on and off", run: runDurability},
}

// Experiments lists the experiments.
func Experiments() []Experiment { return slices.Clone(experiments) }

// Known reports whether name is an experiment of this package.
func Known(name string) bool {
	return slices.ContainsFunc(experiments, func(e Experiment) bool { return e.Name == name })
}

// Run runs the named experiment, writes its data points to o.JSON and its
// chart into o.Out, and returns the chart's path.
func Run(ctx context.Context, name string, o Options) (string, error) {
	i := slices.IndexFunc(experiments, func(e Experiment) bool { return e.Name == name })
	if i < 0 {
		return "", fmt.Errorf("%w %q", ErrUnknown, name)
	}
	if err := o.defaults(); err != nil {
		return "", err
	}
	return experiments[i].run(ctx, o)
}

// onEngine runs an experiment's simulator half or its live half, as the
// target says; both take the same configuration, chosen for that target.
func onEngine[C, P any](ctx context.Context, o Options, cfg C, sim, live func(context.Context, Options, C) ([]P, error)) ([]P, error) {
	if o.Target.Engine() == "sim" {
		return sim(ctx, o, cfg)
	}
	return live(ctx, o, cfg)
}
