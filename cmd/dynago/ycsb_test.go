package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/httpapi/httpapitest"
	"github.com/dynago/dynago/loadgen"
)

// fakeCluster serves two nodes in front of one in-memory backend.
func fakeCluster(t *testing.T) string {
	t.Helper()
	b := httpapitest.New()
	var addrs []string
	for range 2 {
		srv := httptest.NewServer(httpapi.New(b, httpapi.Options{}))
		t.Cleanup(srv.Close)
		addrs = append(addrs, srv.Listener.Addr().String())
	}
	return strings.Join(addrs, ",")
}

func runYCSBCmdForTest(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	oldOut, oldErr := stdout, stderr
	stdout, stderr = &out, &errOut
	defer func() { stdout, stderr = oldOut, oldErr }()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err := commands["ycsb"].run(ctx, args)
	return out.String(), errOut.String(), err
}

// ycsbReport is YCSB's text output parsed: per "#" section, the value of
// each "[SECTION], Metric" line.
type ycsbReport map[string]map[string]float64

func parseYCSBText(t *testing.T, out string) ycsbReport {
	t.Helper()
	rep, section := ycsbReport{}, ""
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		switch {
		case l == "":
		case strings.HasPrefix(l, "# "):
			section = strings.SplitN(strings.TrimPrefix(l, "# "), ":", 2)[0]
			rep[section] = map[string]float64{}
		default:
			parts := strings.Split(l, ", ")
			if len(parts) != 3 || !strings.HasPrefix(parts[0], "[") || !strings.HasSuffix(parts[0], "]") || section == "" {
				t.Fatalf("line %q is not YCSB's [SECTION], Metric, value", l)
			}
			v, err := strconv.ParseFloat(parts[2], 64)
			if err != nil {
				t.Fatalf("line %q: value: %v", l, err)
			}
			rep[section][parts[0]+" "+parts[1]] = v
		}
	}
	return rep
}

func TestYCSBWorkloadAAgainstFakeCluster(t *testing.T) {
	out, errOut, err := runYCSBCmdForTest(t, "--addr", fakeCluster(t), "--workload", "a",
		"--records", "50", "--operations", "300", "--threads", "4", "--field-length", "20")
	if err != nil {
		t.Fatalf("ycsb: %v (stderr %s)", err, errOut)
	}
	rep := parseYCSBText(t, out)
	load, a := rep["YCSB load"], rep["YCSB workload a"]
	if load == nil || a == nil || len(rep) != 2 {
		t.Fatalf("sections %v, want the load and workload a:\n%s", rep, out)
	}
	if load["[INSERT] Operations"] != 50 || load["[INSERT] Return=OK"] != 50 {
		t.Fatalf("load: %v, want 50 OK inserts", load)
	}
	reads, updates := a["[READ] Operations"], a["[UPDATE] Operations"]
	if reads+updates != 300 || reads < 100 || updates < 100 {
		t.Fatalf("workload a: %v reads and %v updates, want 300 about evenly split:\n%s", reads, updates, out)
	}
	// Every record was loaded, so every read finds it.
	if a["[READ] Return=OK"] != reads || a["[UPDATE] Return=OK"] != updates {
		t.Fatalf("workload a: not every operation OK:\n%s", out)
	}
	for _, op := range []string{"[READ]", "[UPDATE]"} {
		lo, avg, p95, p99, hi := a[op+" MinLatency(us)"], a[op+" AverageLatency(us)"],
			a[op+" 95thPercentileLatency(us)"], a[op+" 99thPercentileLatency(us)"], a[op+" MaxLatency(us)"]
		if lo <= 0 || lo > avg || avg > hi || lo > p95 || p95 > p99 || p99 > hi {
			t.Errorf("%s latencies out of order: min %v avg %v p95 %v p99 %v max %v", op, lo, avg, p95, p99, hi)
		}
	}
	if a["[OVERALL] RunTime(ms)"] < 0 || a["[OVERALL] Throughput(ops/sec)"] <= 0 {
		t.Errorf("overall: %v", a)
	}
}

func TestYCSBAllAsJSONSkipsE(t *testing.T) {
	out, errOut, err := runYCSBCmdForTest(t, "--addr", fakeCluster(t), "--workload", "all", "--json",
		"--records", "30", "--operations", "100", "--threads", "2", "--route", "client")
	if err != nil {
		t.Fatalf("ycsb all: %v (stderr %s)", err, errOut)
	}
	if !strings.Contains(errOut, "workload e skipped") || !strings.Contains(errOut, "range scans") {
		t.Errorf("stderr %q does not say why e was skipped", errOut)
	}
	counts := map[string]map[string]uint64{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var raw map[string]any
		if err := json.Unmarshal([]byte(l), &raw); err != nil {
			t.Fatalf("line %q is not JSON: %v", l, err)
		}
		for _, k := range []string{"workload", "op", "count", "errors", "mean_ms", "std_ms", "p50_ms", "p99_ms", "p999_ms", "max_ms", "ops_per_sec"} {
			if _, ok := raw[k]; !ok {
				t.Fatalf("line %q lacks key %q", l, k)
			}
		}
		var yl ycsbLine
		if err := json.Unmarshal([]byte(l), &yl); err != nil {
			t.Fatal(err)
		}
		if yl.Errors != 0 || yl.NotFound != 0 {
			t.Errorf("%s %s: %d errors, %d not found", yl.Workload, yl.Op, yl.Errors, yl.NotFound)
		}
		if counts[yl.Workload] == nil {
			counts[yl.Workload] = map[string]uint64{}
		}
		counts[yl.Workload][yl.Op] = yl.Count
	}
	if len(counts) != 6 || counts["e"] != nil || counts["load"]["INSERT"] != 30 {
		t.Fatalf("workloads reported: %v, want load, a, b, c, d and f", counts)
	}
	if c := counts["c"]; len(c) != 1 || c["READ"] != 100 {
		t.Errorf("workload c: %v, want 100 reads only", c)
	}
	if d := counts["d"]; d["READ"]+d["INSERT"] != 100 || d["INSERT"] == 0 {
		t.Errorf("workload d: %v, want reads and some inserts", d)
	}
	// A read-modify-write is also a READ and an UPDATE, as in YCSB.
	if f := counts["f"]; f["READ-MODIFY-WRITE"] == 0 || f["UPDATE"] != f["READ-MODIFY-WRITE"] ||
		f["READ"] != 100 {
		t.Errorf("workload f: %v, want READ 100 and UPDATE = READ-MODIFY-WRITE", f)
	}
}

func TestYCSBRefusesWhatItCannotRun(t *testing.T) {
	out, _, err := runYCSBCmdForTest(t, "--addr", fakeCluster(t), "--workload", "e")
	if !errors.Is(err, loadgen.ErrYCSBUnsupported) || out != "" {
		t.Fatalf("workload e: %v, output %q; want ErrYCSBUnsupported before any load", err, out)
	}
	for _, args := range [][]string{
		{"--workload", "g"},
		{"--route", "nearest"},
		{"--threads", "0"},
		{"--field-length", "-1"},
	} {
		if _, _, err := runYCSBCmdForTest(t, append([]string{"--addr", "127.0.0.1:1"}, args...)...); !errors.Is(err, errUsage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	// The load must succeed: against a dead node it fails, after its report.
	out, _, err = runYCSBCmdForTest(t, "--addr", "127.0.0.1:1", "--records", "3", "--threads", "1")
	if err == nil || !strings.Contains(out, "[INSERT], Return=ERROR, 3") {
		t.Fatalf("load against a dead node: %v, output %q", err, out)
	}
}
