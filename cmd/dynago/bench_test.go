package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynago/dynago/httpapi/httpapitest"
	"github.com/dynago/dynago/node"
)

// runBenchCmd runs bench and returns its stdout and stderr.
func runBenchCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	oldOut, oldErr := stdout, stderr
	stdout, stderr = &out, &errOut
	defer func() { stdout, stderr = oldOut, oldErr }()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err := execute(ctx, append([]string{"bench"}, args...))
	return out.String(), errOut.String(), err
}

// parseBenchJSON decodes bench --json output, one object per line, and
// checks every line carries exactly the contract's keys (plus extras).
func parseBenchJSON(t *testing.T, out string) map[string]benchLine {
	t.Helper()
	lines := map[string]benchLine{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var raw map[string]any
		if err := json.Unmarshal([]byte(l), &raw); err != nil {
			t.Fatalf("line %q is not JSON: %v", l, err)
		}
		for _, k := range []string{"op", "count", "errors", "mean_ms", "std_ms", "p50_ms", "p99_ms", "p999_ms", "max_ms", "ops_per_sec"} {
			if _, ok := raw[k]; !ok {
				t.Fatalf("line %q lacks key %q", l, k)
			}
		}
		var bl benchLine
		if err := json.Unmarshal([]byte(l), &bl); err != nil {
			t.Fatal(err)
		}
		lines[bl.Op] = bl
	}
	return lines
}

func TestBenchJSONAgainstFakeCluster(t *testing.T) {
	// Two nodes in front of one fake backend: requests enter at either.
	b := httpapitest.New()
	addrs := httpapitest.Serve(t, b, 2)
	out, _, err := runBenchCmd(t, "--addr", strings.Join(addrs, ","), "--ops", "500", "--json",
		"--keys", "50", "--value-size", "16", "--concurrency", "4", "--r", "1", "--w", "3", "--preload",
		"--read-before-write")
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	lines := parseBenchJSON(t, out)
	if len(lines) != 3 {
		t.Fatalf("got lines for %v, want get, put and delete", slices.Collect(func(yield func(string) bool) {
			for k := range lines {
				yield(k)
			}
		}))
	}
	var total uint64
	for op, l := range lines {
		total += l.Count
		if l.Errors != 0 || l.FirstError != "" {
			t.Errorf("%s: %d errors (%s)", op, l.Errors, l.FirstError)
		}
		if l.Count == 0 || l.OpsPerSec <= 0 || l.MaxMS <= 0 || l.P50MS > l.P99MS || l.P99MS > l.P999MS || l.P999MS > l.MaxMS {
			t.Errorf("%s: implausible line %+v", op, l)
		}
		var binned uint64
		for _, b := range l.Hist {
			binned += b.Count
		}
		if ok := l.Count - l.Errors; binned != ok || len(l.Hist) == 0 {
			t.Errorf("%s: histogram holds %d of %d answers: %+v", op, binned, ok, l.Hist)
		} else if last := l.Hist[len(l.Hist)-1]; last.UpToMS < l.MaxMS || last.Count == 0 {
			t.Errorf("%s: last bin %+v; want it to hold the max, %v ms", op, last, l.MaxMS)
		}
	}
	if total != 500 {
		t.Fatalf("%d operations reported, want 500", total)
	}
	// A tenth of the operations are deletes carrying the context read, so
	// some gets miss; they count as not found, never as errors.
	if lines["get"].NotFound == 0 || lines["get"].NotFound == lines["get"].Count {
		t.Errorf("get: %d of %d not found", lines["get"].NotFound, lines["get"].Count)
	}
	// The backend saw the preload (one put per key), then the 500, each
	// put and delete (preload's too) preceded by its read, with the
	// quorums asked for.
	reqs := b.Requests()
	if want := 2*50 + 500 + int(lines["put"].Count+lines["delete"].Count); len(reqs) != want {
		t.Fatalf("backend served %d requests, want %d", len(reqs), want)
	}
	for _, r := range reqs {
		if r.Op == node.OpDelete && len(r.Context) == 0 {
			t.Fatal("a delete without the context read")
		}
		if (r.Op == node.OpGet && r.R != 1) || (r.Op != node.OpGet && r.W != 3) {
			t.Fatalf("request %v with r=%d w=%d, want r=1 w=3", r.Op, r.R, r.W)
		}
		if !strings.HasPrefix(string(r.Key), "bench-") {
			t.Fatalf("key %q", r.Key)
		}
		if r.Op == node.OpPut && len(r.Value) != 16 {
			t.Fatalf("put of %d bytes, want 16", len(r.Value))
		}
	}
}

func TestBenchCountsQuorumFailuresAsErrors(t *testing.T) {
	addr, b := cliNode(t)
	for range 7 {
		b.Fail(node.Reply{Code: node.CodeQuorumFailed, Acks: 1, Required: 2, Err: "timeout"})
	}
	out, errOut, err := runBenchCmd(t, "--addr", addr, "--ops", "100", "--json", "--mix", "put=1", "--concurrency", "1")
	if err != nil {
		t.Fatal(err)
	}
	put := parseBenchJSON(t, out)["put"]
	if put.Count != 100 || put.Errors != 7 || !strings.Contains(put.FirstError, "quorum") {
		t.Fatalf("put line %+v: want 100 puts, 7 quorum errors", put)
	}
	if !strings.Contains(errOut, "put: 7 errors") {
		t.Errorf("stderr %q does not report the errors", errOut)
	}
}

func TestBenchTableAndProgress(t *testing.T) {
	addr, _ := cliNode(t)
	out, errOut, err := runBenchCmd(t, "--addr", addr, "--duration", "300ms", "--rate", "200",
		"--dist", "zipfian", "--mix", "get=1,put=1", "--progress", "--read-before-write")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "open loop, 200 ops/s") || !strings.Contains(out, "read-before-write") {
		t.Errorf("table header does not describe the run:\n%s", out)
	}
	var rows []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 11 {
			rows = append(rows, f[0])
		}
	}
	if !slices.Equal(rows, []string{"op", "get", "put"}) {
		t.Errorf("table rows %v, want header, get and put:\n%s", rows, out)
	}
	if !strings.Contains(errOut, "\r[") || !strings.Contains(errOut, "ops/s") {
		t.Errorf("--progress drew no progress line: %q", errOut)
	}
}

func TestBenchUsageErrors(t *testing.T) {
	addr, _ := cliNode(t)
	for _, args := range [][]string{
		{"--route", "nearest"},
		{"--ops", "10", "--duration", "1s"},
		{"--mix", "get=1,scan=2"},
		{"--dist", "normal"},
		{"--keys", "0", "--ops", "1"},
		{"--rate", "10", "--max-outstanding", "0", "--ops", "1"},
		{"--progress", "--no-progress"},
		{"extra-arg"},
	} {
		_, _, err := runBenchCmd(t, append([]string{"--addr", addr}, args...)...)
		if !errors.Is(err, errUsage) {
			t.Errorf("bench %v = %v, want a usage error", args, err)
		}
	}
}

// --cpuprofile writes a profile pprof can read, and a path that cannot be
// created is an error before any request is sent.
func TestBenchCPUProfile(t *testing.T) {
	b := httpapitest.New()
	addrs := httpapitest.Serve(t, b, 1)
	path := filepath.Join(t.TempDir(), "bench.prof")
	if _, _, err := runBenchCmd(t, "--addr", addrs[0], "--ops", "200", "--keys", "10", "--cpuprofile", path); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A CPU profile is a gzipped protobuf (pprof's format).
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("--cpuprofile wrote no gzipped profile: %v", err)
	}
	if n, err := io.Copy(io.Discard, zr); err != nil || n == 0 {
		t.Fatalf("--cpuprofile: %d bytes of profile, %v", n, err)
	}
	before := len(b.Requests())
	_, _, err = runBenchCmd(t, "--addr", addrs[0], "--ops", "10", "--cpuprofile", filepath.Join(t.TempDir(), "no", "such", "dir", "p"))
	if err == nil || !strings.Contains(err.Error(), "--cpuprofile") {
		t.Fatalf("unwritable --cpuprofile: %v, want an error naming the flag", err)
	}
	if n := len(b.Requests()) - before; n != 0 {
		t.Errorf("%d requests sent despite the unwritable profile", n)
	}
}
