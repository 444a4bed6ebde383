package dashboard

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dynago/dynago/internal/testutil"
)

// benchControl is a fakeControl whose "dynago binary" is a script that
// records its arguments and prints what `dynago bench --json` prints.
type benchControl struct {
	fakeControl
	binary string
}

func (b *benchControl) Binary() string { return b.binary }

func fakeBench(t *testing.T, script string) *benchControl {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "dynago")
	body := "#!/bin/sh\necho \"$@\" > " + filepath.Join(dir, "args") + "\n" + script
	if err := os.WriteFile(bin, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return &benchControl{
		fakeControl: fakeControl{nodes: []NodeInfo{
			{ID: "n1", HTTPAddr: "127.0.0.1:9101", Running: true},
			{ID: "n2", HTTPAddr: "127.0.0.1:9102", Running: false},
			{ID: "n3", HTTPAddr: "127.0.0.1:9103", Running: true},
		}},
		binary: bin,
	}
}

func benchState(t *testing.T, h http.Handler) BenchRun {
	t.Helper()
	rec := do(t, h, "GET", "/api/bench", nil, nil)
	var body struct{ Run *BenchRun }
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("GET /api/bench: %d %s", rec.Code, rec.Body)
	}
	if body.Run == nil {
		return BenchRun{}
	}
	return *body.Run
}

func waitBench(t *testing.T, h http.Handler) BenchRun {
	t.Helper()
	var r BenchRun
	testutil.EventuallyNil(t, 10*time.Second, func() error {
		if r = benchState(t, h); r.Running {
			return fmt.Errorf("bench still running: %+v", r)
		}
		return nil
	})
	return r
}

func TestBenchPresetRunsTheBenchToolAgainstRunningNodes(t *testing.T) {
	ctl := fakeBench(t, `printf 'preloading\r50%% done\r' >&2
echo '{"op":"get","count":10,"errors":0,"mean_ms":1.5,"hist":[{"le_ms":2,"count":10}]}'
echo '{"op":"put","count":5,"errors":0,"mean_ms":2.5}'
`)
	dev := DevHandler(ctl)
	defer dev.Close()
	if r := benchState(t, dev); r.ID != 0 {
		t.Fatalf("a run before any was started: %+v", r)
	}
	rec := do(t, dev, "GET", "/api/config", nil, nil)
	if !strings.Contains(rec.Body.String(), `"bench":true`) {
		t.Fatalf("api/config does not offer bench: %s", rec.Body)
	}
	rec = do(t, dev, "POST", "/api/bench", strings.NewReader(`{"preset":"read-heavy"}`), nil)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("POST /api/bench: %d %s", rec.Code, rec.Body)
	}
	r := waitBench(t, dev)
	if r.Error != "" || r.Preset != "read-heavy" || len(r.Results) != 2 || r.Progress != "50% done" {
		t.Fatalf("finished run: %+v", r)
	}
	var get struct {
		Op   string
		Hist []struct {
			LeMS  float64 `json:"le_ms"`
			Count int
		}
	}
	if err := json.Unmarshal(r.Results[0], &get); err != nil || get.Op != "get" || len(get.Hist) != 1 {
		t.Fatalf("first result %s: %v", r.Results[0], err)
	}
	args, err := os.ReadFile(filepath.Join(filepath.Dir(ctl.binary), "args"))
	if err != nil {
		t.Fatal(err)
	}
	// Only the running nodes, and JSON output.
	if a := string(args); !strings.HasPrefix(a, "bench --mix get=95,put=5") ||
		!strings.Contains(a, "--addr 127.0.0.1:9101,127.0.0.1:9103 ") || !strings.HasSuffix(strings.TrimSpace(a), "--json") {
		t.Fatalf("bench ran with %q", a)
	}
}

func TestBenchRejectsBadPresetsAndSecondRuns(t *testing.T) {
	// exec: cancelling interrupts the process as Ctrl-C would, which ends
	// sleep (and dynago bench) at once, while a shell would first wait for
	// its foreground child.
	ctl := fakeBench(t, "exec sleep 5\n")
	dev := DevHandler(ctl)
	defer dev.Close()
	for _, body := range []string{`{"preset":"nope"}`, `nonsense`, `{"preset":"mixed","x":1}`} {
		if rec := do(t, dev, "POST", "/api/bench", strings.NewReader(body), nil); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"error"`) {
			t.Errorf("POST %s: %d %s; want 400 with a JSON error", body, rec.Code, rec.Body)
		}
	}
	if rec := do(t, dev, "POST", "/api/bench", strings.NewReader(`{"preset":"mixed"}`), nil); rec.Code != http.StatusAccepted {
		t.Fatalf("first run: %d %s", rec.Code, rec.Body)
	}
	if rec := do(t, dev, "POST", "/api/bench", strings.NewReader(`{"preset":"mixed"}`), nil); rec.Code != http.StatusConflict {
		t.Fatalf("second run while the first runs: %d %s; want 409", rec.Code, rec.Body)
	}
	began := time.Now()
	rec := do(t, dev, "DELETE", "/api/bench", nil, nil)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"error":"canceled"`) || time.Since(began) > 4*time.Second {
		t.Fatalf("cancel: %d %s after %v", rec.Code, rec.Body, time.Since(began))
	}
}

func TestBenchFailureIsReported(t *testing.T) {
	ctl := fakeBench(t, "echo 'bench: no node answers at 127.0.0.1:9101' >&2\nexit 1\n")
	dev := DevHandler(ctl)
	defer dev.Close()
	do(t, dev, "POST", "/api/bench", strings.NewReader(`{"preset":"write-only"}`), nil)
	r := waitBench(t, dev)
	if !strings.Contains(r.Error, "no node answers") {
		t.Fatalf("failed run: %+v; want its stderr in error", r)
	}
}

func TestBenchAbsentWithoutABinary(t *testing.T) {
	dev := DevHandler(&fakeControl{})
	if rec := do(t, dev, "POST", "/api/bench", strings.NewReader(`{"preset":"mixed"}`), nil); rec.Code != http.StatusNotFound {
		t.Fatalf("POST /api/bench with no bench binary: %d", rec.Code)
	}
	if rec := do(t, dev, "GET", "/api/config", nil, nil); !strings.Contains(rec.Body.String(), `"bench":false`) {
		t.Fatalf("api/config: %s", rec.Body)
	}
}

func TestBenchResultsAreAnArrayWhileEmpty(t *testing.T) {
	ctl := fakeBench(t, "exec sleep 2\n")
	dev := DevHandler(ctl)
	defer dev.Close()
	rec := do(t, dev, "POST", "/api/bench", strings.NewReader(`{"preset":"mixed"}`), nil)
	if !strings.Contains(rec.Body.String(), `"results":[]`) {
		t.Fatalf("POST answer %s; want results [] before any line arrived", rec.Body)
	}
	if rec := do(t, dev, "GET", "/api/bench", nil, nil); !strings.Contains(rec.Body.String(), `"results":[]`) {
		t.Fatalf("GET answer %s; want results []", rec.Body)
	}
}

func TestNoBenchStartsAfterClose(t *testing.T) {
	dev := DevHandler(fakeBench(t, "exec sleep 5\n"))
	dev.Close()
	if rec := do(t, dev, "POST", "/api/bench", strings.NewReader(`{"preset":"mixed"}`), nil); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("POST /api/bench after Close: %d %s, want 503", rec.Code, rec.Body)
	}
}

// TestBenchCancelEndsEvenIfAGrandchildHoldsTheOutput: a run that ignores
// the interrupt and leaves a process holding its output open is killed
// after WaitDelay, and cancelling returns then, not when the grandchild
// ends.
func TestBenchCancelEndsEvenIfAGrandchildHoldsTheOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the 10 s kill delay")
	}
	ctl := fakeBench(t, "trap '' INT\nd=$(dirname \"$0\")\n(sleep 25) &\necho $! > \"$d/children\"\nsleep 25 &\necho $! >> \"$d/children\"\nwait\n")
	dev := DevHandler(ctl)
	defer dev.Close()
	// The script's children outlive its kill; they are the test's own
	// doing, so they end with the test.
	defer func() {
		b, _ := os.ReadFile(filepath.Join(filepath.Dir(ctl.binary), "children"))
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}()
	do(t, dev, "POST", "/api/bench", strings.NewReader(`{"preset":"mixed"}`), nil)
	time.Sleep(300 * time.Millisecond)
	began := time.Now()
	rec := do(t, dev, "DELETE", "/api/bench", nil, nil)
	if d := time.Since(began); d > 15*time.Second || !strings.Contains(rec.Body.String(), `"running":false`) {
		t.Fatalf("cancel answered after %v: %s", d, rec.Body)
	}
}

func TestPaperExperimentChartIsServed(t *testing.T) {
	ctl := fakeBench(t, `while [ $# -gt 0 ]; do [ "$1" = --out ] && out=$2; shift; done
echo '<svg xmlns="http://www.w3.org/2000/svg"><rect width="1" height="1"/></svg>' > "$out/divergence.svg"
echo '{"experiment":"divergence","engine":"sim","failures":false,"shares":[1,0,0,0]}'
`)
	dev := DevHandler(ctl)
	defer dev.Close()
	if rec := do(t, dev, "GET", "/api/bench/chart", nil, nil); rec.Code != http.StatusNotFound {
		t.Fatalf("chart before any run: %d", rec.Code)
	}
	rec := do(t, dev, "POST", "/api/bench", strings.NewReader(`{"preset":"paper-divergence"}`), nil)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("POST /api/bench: %d %s", rec.Code, rec.Body)
	}
	r := waitBench(t, dev)
	if r.Error != "" || len(r.Results) != 1 || r.Chart != "api/bench/chart?run=1" {
		t.Fatalf("finished run: %+v", r)
	}
	args, err := os.ReadFile(filepath.Join(filepath.Dir(ctl.binary), "args"))
	if err != nil {
		t.Fatal(err)
	}
	if a := string(args); !strings.HasPrefix(a, "bench --experiment divergence ") || !strings.Contains(a, " --out /") || strings.Contains(a, "--addr") {
		t.Fatalf("bench ran with %q", a)
	}
	rec = do(t, dev, "GET", "/api/bench/chart", nil, nil)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "image/svg+xml" || !strings.Contains(rec.Body.String(), "<svg") {
		t.Fatalf("GET chart: %d %q %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
}
