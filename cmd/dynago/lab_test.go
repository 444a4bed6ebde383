package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynago/dynago/lab"
	"github.com/dynago/dynago/loadgen"
)

// bench --experiment NAME reaches package lab: the simulator run prints
// its points as JSON lines and leaves the chart in --out.
func TestBenchRunsPaperExperimentInSimulator(t *testing.T) {
	dir := t.TempDir()
	out, errOut, err := runBenchCmd(t, "--experiment", "coordination", "--out", dir, "--seed", "2")
	if err != nil {
		t.Fatalf("bench --experiment coordination: %v\n%s", err, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 4 JSON lines (2 routes × put, get), got %q", out)
	}
	for _, l := range lines {
		var p struct {
			Experiment, Engine, Route, Op string
			Count                         int
		}
		if err := json.Unmarshal([]byte(l), &p); err != nil || p.Experiment != "coordination" || p.Engine != "sim" || p.Count == 0 {
			t.Fatalf("line %q: %+v %v", l, p, err)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "coordination.svg")); err != nil || st.Size() == 0 {
		t.Fatalf("chart: %v", err)
	}
	if !strings.Contains(errOut, "chart: "+filepath.Join(dir, "coordination.svg")) {
		t.Errorf("stderr does not name the chart: %q", errOut)
	}
}

func TestBenchRejectsBadPaperExperimentOptions(t *testing.T) {
	for _, args := range [][]string{
		{"--experiment", "no-such"},
		{"--experiment", "balance", "--out", t.TempDir(), "--chart", "gif"},
		{"--experiment", "balance", "--out", t.TempDir(), "--cluster", ","},
	} {
		if _, _, err := runBenchCmd(t, args...); !errors.Is(err, errUsage) {
			t.Errorf("bench %v: %v, want a usage error", args, err)
		}
	}
}

// bench --experiment seed-table --json: the dashboard draws its table from
// these lines, telling seed-table rows apart by floor_ms and showing
// config and route beside bench's columns.
func TestWriteSeedJSONLines(t *testing.T) {
	h := loadgen.NewHistogram()
	for _, d := range []time.Duration{20 * time.Millisecond, 22 * time.Millisecond} {
		h.Record(d)
	}
	rows := []lab.SeedRow{{Config: lab.SeedConfigs[0], Route: "client", Op: "put", Hist: h, FloorMS: 20, Errors: 1, Took: time.Second}}
	var b strings.Builder
	if err := writeSeedJSON(&b, rows); err != nil {
		t.Fatal(err)
	}
	var l struct {
		Op, Config, Route string
		Count, Errors     int
		MeanMS            float64 `json:"mean_ms"`
		FloorMS           float64 `json:"floor_ms"`
		OpsPerSec         float64 `json:"ops_per_sec"`
		Hist              []histBin
	}
	if err := json.Unmarshal([]byte(b.String()), &l); err != nil {
		t.Fatalf("%q: %v", b.String(), err)
	}
	if l.Op != "put" || l.Config != "N4R1W3" || l.Route != "client" || l.Count != 3 || l.Errors != 1 || l.FloorMS != 20 || l.OpsPerSec != 2 {
		t.Errorf("line %q read as %+v", b.String(), l)
	}
	if l.MeanMS < 20 || l.MeanMS > 22.5 || len(l.Hist) == 0 {
		t.Errorf("mean %v ms, %d histogram bins: want about 21 ms and some bins", l.MeanMS, len(l.Hist))
	}
}
