package dashboard

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dynago/dynago/api"
)

// BenchBinary is implemented by controllers that can run benchmarks: it
// returns the path of the dynago binary, which the presets run as
// `dynago bench ...` against the cluster's nodes. The numbers are the
// bench tool's own, not the browser's, so the page shows what the CLI
// would print.
type BenchBinary interface {
	Binary() string
}

// BenchPreset is a named bench run the page offers.
type BenchPreset struct {
	Name        string   `json:"name"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Args        []string `json:"args"` // after `dynago bench`; --addr, --json and --progress are added
	// OwnCluster is set for experiments that start their own local
	// cluster (the seed table), so --addr is not passed.
	OwnCluster bool `json:"own_cluster"`
	// Chart is set for the paper's experiments (package lab): the run
	// gets --out, a directory of its own, and the page shows the chart
	// it draws there (Chart is the file's name).
	Chart string `json:"chart,omitempty"`
}

// BenchPresets are the runs the Experiments view offers. The workloads
// take the cluster's default R and W, so changing them (PUT
// /admin/defaults on every node) and running a preset again shows what the
// quorums cost.
var BenchPresets = []BenchPreset{
	{Name: "mixed", Title: "Mixed 50/40/10", Description: "50% get, 40% put, 10% delete over 1,000 keys, 8 workers, 5 s, entering at random nodes",
		Args: []string{"--mix", "get=50,put=40,delete=10", "--keys", "1000", "--concurrency", "8", "--duration", "5s", "--preload"}},
	{Name: "read-heavy", Title: "Read-heavy 95/5", Description: "95% get, 5% put over 1,000 keys, 8 workers, 5 s",
		Args: []string{"--mix", "get=95,put=5", "--keys", "1000", "--concurrency", "8", "--duration", "5s", "--preload"}},
	{Name: "write-only", Title: "Writes only", Description: "100% put of 100-byte values over 1,000 keys, 8 workers, 5 s",
		Args: []string{"--mix", "put=1", "--keys", "1000", "--concurrency", "8", "--duration", "5s"}},
	{Name: "client-routed", Title: "Mixed, client-routed", Description: "as Mixed, but the client sends each request to the key's preference list (Dynamo's client-driven coordination)",
		Args: []string{"--mix", "get=50,put=40,delete=10", "--keys", "1000", "--concurrency", "8", "--duration", "5s", "--preload", "--route", "client"}},
	{Name: "seed-table", Title: "Seed table (N=4, 10 ms delay)", Description: "the original Dynamo simulator's experiment on its own 8-node cluster: R1W3 and R3W1, random entry and client routing, each beside its physical floor; about a minute",
		Args: []string{"--experiment", "seed-table"}, OwnCluster: true},
	{Name: "paper-balance", Title: "Paper §6.2: load balance (simulator)", Description: "fraction of 16 simulated nodes more than 15% above the mean load, against request rate, for Q = 64, 256, 1024, uniform and zipfian keys; about a minute",
		Args: []string{"--experiment", "balance"}, OwnCluster: true, Chart: "balance.svg"},
	{Name: "paper-divergence", Title: "Paper §6.3: divergent versions (simulator)", Description: "share of reads returning 1, 2, 3, 4+ versions under a shopping-cart workload, with and without failures; about 15 s",
		Args: []string{"--experiment", "divergence"}, OwnCluster: true, Chart: "divergence.svg"},
	{Name: "paper-coordination", Title: "Paper §6.4: client- against server-driven coordination (simulator)", Description: "mean and p99.9 latency of reads and writes, entering at random nodes or at the key's coordinator; about 10 s",
		Args: []string{"--experiment", "coordination"}, OwnCluster: true, Chart: "coordination.svg"},
	{Name: "paper-durability", Title: "Paper §6.1: put latency against W, fsync on and off (simulator)", Description: "put latency percentiles for W = 1..3 with the simulated fsync on and off; about 10 s",
		Args: []string{"--experiment", "durability-latency"}, OwnCluster: true, Chart: "durability-latency.svg"},
}

// BenchRun is the state of the current or last run, as GET api/bench
// returns it.
type BenchRun struct {
	ID       int               `json:"id"`
	Preset   string            `json:"preset"`
	Args     []string          `json:"args"`
	Started  time.Time         `json:"started"`
	Running  bool              `json:"running"`
	ElapsedS float64           `json:"elapsed_s"`
	Progress string            `json:"progress"` // the bench tool's last progress line
	Results  []json.RawMessage `json:"results"`  // its --json lines
	Error    string            `json:"error,omitempty"`
	// Chart is the URL of the chart the run drew (paper experiments),
	// once it ended well.
	Chart string `json:"chart,omitempty"`
}

// benchRunner runs one preset at a time: two at once would measure each
// other.
type benchRunner struct {
	binary string
	addrs  func() []string

	mu     sync.Mutex
	closed bool // stop ran: no new run may start
	run    *BenchRun
	cancel context.CancelFunc
	done   chan struct{}
	// outDir holds the current or last run's chart; removed when the next
	// run starts and when the dashboard stops.
	outDir string
	chart  string // path of the last run's chart, once it exists
}

var (
	errBenchBusy   = errors.New("a benchmark is already running; wait for it or cancel it")
	errBenchClosed = errors.New("the dashboard is shutting down")
)

func (b *benchRunner) start(name string) (BenchRun, error) {
	var preset *BenchPreset
	for i := range BenchPresets {
		if BenchPresets[i].Name == name {
			preset = &BenchPresets[i]
		}
	}
	if preset == nil {
		return BenchRun{}, fmt.Errorf("%w: %q", errUnknownPreset, name)
	}
	args := append([]string{"bench"}, preset.Args...)
	if !preset.OwnCluster {
		addrs := b.addrs()
		if len(addrs) == 0 {
			return BenchRun{}, errors.New("no node is running")
		}
		args = append(args, "--addr", strings.Join(addrs, ","), "--progress")
	}
	args = append(args, "--json")

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return BenchRun{}, errBenchClosed
	}
	if b.run != nil && b.run.Running {
		return BenchRun{}, errBenchBusy
	}
	b.removeOut()
	if preset.Chart != "" {
		dir, err := os.MkdirTemp("", "dynago-dashboard-experiment-")
		if err != nil {
			return BenchRun{}, err
		}
		b.outDir = dir
		args = append(args, "--out", dir, "--chart", "svg")
	}
	outDir := b.outDir
	id := 1
	if b.run != nil {
		id = b.run.ID + 1
	}
	// The run outlives the request that started it; it ends on its own,
	// on cancel, or when the dashboard stops (close).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	cmd := exec.CommandContext(ctx, b.binary, args...)
	// Interrupt, as Ctrl-C would: the seed table then stops the cluster
	// it started instead of leaving its nodes behind. Killed if it has
	// not ended 10 s later.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	// Pipes the exec package copies into, rather than StdoutPipe: with
	// those, Wait may only run after every read finished, which never
	// happens while a grandchild holds the output open. Here Wait returns
	// at most WaitDelay after the process ended, and closing the writers
	// then ends the readers.
	stdout, outW := io.Pipe()
	stderr, errW := io.Pipe()
	cmd.Stdout, cmd.Stderr = outW, errW
	if err := cmd.Start(); err != nil {
		cancel()
		return BenchRun{}, fmt.Errorf("starting %s: %w", b.binary, err)
	}
	b.run = &BenchRun{ID: id, Preset: name, Args: args[1:], Started: time.Now(), Running: true, Results: []json.RawMessage{}}
	b.cancel = cancel
	done := make(chan struct{})
	b.done = done
	run := b.run
	go func() {
		defer close(done)
		defer cancel()
		var wg sync.WaitGroup
		wg.Add(2)
		var errTail tail
		go func() { defer wg.Done(); b.readProgress(run, stderr, &errTail) }()
		go func() { defer wg.Done(); b.readResults(run, stdout) }()
		err := cmd.Wait()
		outW.Close()
		errW.Close()
		wg.Wait()
		b.mu.Lock()
		defer b.mu.Unlock()
		run.Running = false
		run.ElapsedS = time.Since(run.Started).Seconds()
		switch {
		case ctx.Err() == context.Canceled:
			run.Error = "canceled"
		case err != nil:
			run.Error = strings.TrimSpace(fmt.Sprintf("%v: %s", err, errTail.String()))
		case preset.Chart != "":
			path := filepath.Join(outDir, preset.Chart)
			if _, err := os.Stat(path); err == nil && b.outDir == outDir {
				b.chart = path
				run.Chart = fmt.Sprintf("api/bench/chart?run=%d", run.ID)
			}
		}
	}()
	return b.snapshot(), nil
}

// readProgress keeps the bench tool's latest progress line. The progress
// bar redraws itself with \r, so both \r and \n end a line.
func (b *benchRunner) readProgress(run *BenchRun, r io.Reader, errTail *tail) {
	sc := bufio.NewScanner(r)
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
			return i + 1, data[:i], nil
		}
		if atEOF && len(data) > 0 {
			return len(data), data, nil
		}
		return 0, nil, nil
	})
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		errTail.add(line)
		b.mu.Lock()
		run.Progress = line
		b.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, r)
}

func (b *benchRunner) readResults(run *BenchRun, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		// One JSON object per operation; anything else is not a result.
		if len(line) == 0 || line[0] != '{' || !json.Valid(line) {
			continue
		}
		b.mu.Lock()
		run.Results = append(run.Results, json.RawMessage(bytes.Clone(line)))
		b.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, r)
}

func (b *benchRunner) snapshot() BenchRun {
	if b.run == nil {
		return BenchRun{}
	}
	r := *b.run
	r.Results = append([]json.RawMessage{}, b.run.Results...) // [] not null, for the page
	if r.Running {
		r.ElapsedS = time.Since(r.Started).Seconds()
	}
	return r
}

// removeOut deletes the last run's chart directory. b.mu is held.
func (b *benchRunner) removeOut() {
	if b.outDir != "" {
		os.RemoveAll(b.outDir)
	}
	b.outDir, b.chart = "", ""
}

// cancelRun interrupts the running preset, if any, and waits for it.
func (b *benchRunner) cancelRun() {
	b.mu.Lock()
	cancel, done := b.cancel, b.done
	b.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// stop cancels the running preset and refuses new ones: the dashboard is
// going away, and a run started now would outlive it.
func (b *benchRunner) stop() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cancelRun()
	b.mu.Lock()
	b.removeOut()
	b.mu.Unlock()
}

var errUnknownPreset = errors.New("unknown bench preset")

// tail keeps the last few lines of the bench tool's stderr, to explain a
// failed run.
type tail struct {
	mu    sync.Mutex
	lines []string
}

func (t *tail) add(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, s)
	if len(t.lines) > 5 {
		t.lines = t.lines[1:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "; ")
}

// benchRoutes serves the bench API on mux.
func (b *benchRunner) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/bench/presets", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, BenchPresets)
	})
	mux.HandleFunc("GET /api/bench", func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		run := b.snapshot()
		has := b.run != nil
		b.mu.Unlock()
		if !has {
			writeJSON(w, http.StatusOK, struct {
				Run *BenchRun `json:"run"`
			}{})
			return
		}
		writeJSON(w, http.StatusOK, struct {
			Run *BenchRun `json:"run"`
		}{&run})
	})
	mux.HandleFunc("POST /api/bench", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Preset string `json:"preset"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			writeError(w, http.StatusBadRequest, api.CodeBadRequest, `want {"preset":NAME}: `+err.Error())
			return
		}
		run, err := b.start(body.Preset)
		switch {
		case errors.Is(err, errUnknownPreset):
			writeError(w, http.StatusBadRequest, api.CodeBadRequest, err.Error())
		case errors.Is(err, errBenchBusy):
			writeError(w, http.StatusConflict, "busy", err.Error())
		case errors.Is(err, errBenchClosed):
			writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		case err != nil:
			writeError(w, http.StatusInternalServerError, "internal", err.Error())
		default:
			writeJSON(w, http.StatusAccepted, struct {
				Run *BenchRun `json:"run"`
			}{&run})
		}
	})
	mux.HandleFunc("GET /api/bench/chart", func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		path := b.chart
		b.mu.Unlock()
		if path == "" {
			writeError(w, http.StatusNotFound, "not_found", "no run has drawn a chart")
			return
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			writeError(w, http.StatusNotFound, "not_found", "the chart is gone")
			return
		}
		// The SVG is the plotting library's, shown through <img>, which
		// runs no script; the policy keeps it inert if opened directly.
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(raw)
	})
	mux.HandleFunc("DELETE /api/bench", func(w http.ResponseWriter, r *http.Request) {
		b.cancelRun()
		b.mu.Lock()
		run := b.snapshot()
		b.mu.Unlock()
		writeJSON(w, http.StatusOK, struct {
			Run *BenchRun `json:"run"`
		}{&run})
	})
}
