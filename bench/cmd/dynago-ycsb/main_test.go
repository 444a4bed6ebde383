package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynago/dynago/bench/ycsb/dynagodb"
	"github.com/dynago/dynago/server"
	"github.com/dynago/dynago/server/servertest"
)

// startCluster runs n in-process dynago nodes (gRPC, Pebble, N=3, R=W=2,
// lab timings) and returns their HTTP addresses.
func startCluster(t *testing.T, n int) []string {
	t.Helper()
	return servertest.HTTPAddrs(servertest.StartCluster(t, n, func(c *server.Config) { c.Preset = "lab" }))
}

// ycsbOp is one line of go-ycsb's plain measurement output:
// "READ   - Takes(s): 1.0, Count: 250, OPS: 250.0, Avg(us): 812, ...".
type ycsbOp map[string]float64

func parseMeasurements(t *testing.T, out string) map[string]ycsbOp {
	t.Helper()
	ops := map[string]ycsbOp{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		name, rest, ok := strings.Cut(l, " - ")
		if !ok {
			t.Fatalf("line %q is not go-ycsb's OP - Metric: value, ...", l)
		}
		m := ycsbOp{}
		for _, kv := range strings.Split(rest, ", ") {
			k, v, ok := strings.Cut(kv, ": ")
			f, err := strconv.ParseFloat(v, 64)
			if !ok || err != nil {
				t.Fatalf("line %q: metric %q", l, kv)
			}
			m[k] = f
		}
		ops[strings.TrimSpace(name)] = m
	}
	return ops
}

// runPhase runs dynago-ycsb with args plus the output file and returns
// the parsed measurements.
func runPhase(t *testing.T, ctx context.Context, args ...string) map[string]ycsbOp {
	t.Helper()
	file := filepath.Join(t.TempDir(), "measurements.txt")
	var out bytes.Buffer
	if err := run(ctx, append(args, "-p", "measurement.output_file="+file), &out); err != nil {
		t.Fatalf("dynago-ycsb %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	if !strings.Contains(out.String(), "Run finished, takes") {
		t.Fatalf("no timing line in:\n%s", out.String())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dynago-ycsb %s:\n%s", args[0], b)
	return parseMeasurements(t, string(b))
}

func TestWorkloadAAgainstInProcessCluster(t *testing.T) {
	addrs := startCluster(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	const records, operations = 200, 500
	// go-ycsb v1.0.3's key and operation generators are shared by all
	// worker threads and write their last value unsynchronized
	// (generator.Number.SetLastValue), which the race detector reports:
	// under it, one worker thread. The binding's own concurrency is tested
	// in package dynagodb.
	threads := 4
	if raceEnabled {
		threads = 1
	}
	common := []string{
		"-P", "../../workloads/workloada",
		"-p", "dynago.addrs=" + strings.Join(addrs, ","),
		"-p", "recordcount=" + strconv.Itoa(records),
		"-p", "operationcount=" + strconv.Itoa(operations),
		// go-ycsb's zipfian key chooser includes key number recordcount,
		// which the load never inserts (its reads are READ_ERRORs, not
		// found); uniform chooses among the loaded keys only, so every
		// operation must succeed.
		"-p", "requestdistribution=uniform",
		// Every read checks the values the workload wrote.
		"-p", "dataintegrity=true",
		"--threads", strconv.Itoa(threads),
	}
	for _, route := range []string{"any", "client"} {
		t.Run("route="+route, func(t *testing.T) {
			table := "usertable_" + route // a fresh key space per run
			args := append(append([]string(nil), common...), "-p", "dynago.route="+route, "--table", table)

			load := runPhase(t, ctx, append([]string{"load", "dynago"}, args...)...)
			if n := load["INSERT"]["Count"]; n != records {
				t.Errorf("load: %v inserts, want %d (%v)", n, records, load)
			}
			for op := range load {
				if strings.HasSuffix(op, "_ERROR") {
					t.Errorf("load: %s: %v", op, load[op])
				}
			}

			a := runPhase(t, ctx, append([]string{"run"}, args...)...)
			reads, updates := a["READ"]["Count"], a["UPDATE"]["Count"]
			if reads == 0 || updates == 0 || reads+updates != operations || a["TOTAL"]["Count"] != operations {
				t.Errorf("run: READ %v + UPDATE %v (TOTAL %v), want both > 0 and %d in all", reads, updates, a["TOTAL"]["Count"], operations)
			}
			for op, m := range a {
				switch {
				case strings.HasSuffix(op, "_ERROR"):
					t.Errorf("run: %s: %v", op, m)
				case op != "READ" && op != "UPDATE" && op != "TOTAL":
					t.Errorf("run: unexpected operation %s", op)
				case m["Avg(us)"] <= 0 || m["99th(us)"] < m["Avg(us)"]/10:
					t.Errorf("run: %s latencies look wrong: %v", op, m)
				}
			}
		})
	}
}

func TestRefusesWhatItCannotRun(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		want error
	}{
		{nil, errUsage},
		{[]string{"shell"}, errUsage},
		{[]string{"run", "mysql"}, errUsage},
		{[]string{"run", "-x"}, errUsage},
		{[]string{"run", "-p", "recordcount"}, nil},
		{[]string{"run", "-P", "no/such/file"}, nil},
		{[]string{"run", "-p", "operationcount=2", "--threads", "4"}, nil},
		{[]string{"run", "-P", "../../workloads/workloada", "-p", "scanproportion=0.95", "-p", "operationcount=10"}, dynagodb.ErrScanUnsupported},
	} {
		err := run(ctx, tc.args, io.Discard)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%q: err = %v, want %v", tc.args, err, tc.want)
		}
	}
}
