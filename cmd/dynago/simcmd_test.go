package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// lastJSON parses the summary the command prints as its last line.
func lastJSON(t *testing.T, out string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var sum map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		t.Fatalf("last line %q is not JSON: %v", lines[len(lines)-1], err)
	}
	return sum
}

func TestSimRunPrintsSeedsThenSummary(t *testing.T) {
	out, err := run(t, "", "sim", "run", "--seeds", "3", "--duration", "1s", "--faults", "partition,crash,restart,wipe")
	if err != nil {
		t.Fatalf("dynago sim run: %v\n%s", err, out)
	}
	for _, s := range []string{"seed 1:", "seed 2:", "seed 3:"} {
		if !strings.Contains(out, s) {
			t.Errorf("no line for %s in\n%s", s, out)
		}
	}
	sum := lastJSON(t, out)
	if sum["seeds"] != 3.0 || sum["lost"] != 0.0 || sum["resurrected"] != 0.0 || sum["converged"] != true {
		t.Errorf("summary %v", sum)
	}
	if acked, _ := sum["acked"].(float64); acked < 100 {
		t.Errorf("acked = %v; the workload did not run", sum["acked"])
	}
	if ms, ok := sum["max_convergence_ms"].(float64); !ok || ms < 0 || ms > 120000 {
		t.Errorf("max_convergence_ms = %v", sum["max_convergence_ms"])
	}
	if failed, ok := sum["failed_seeds"].([]any); !ok || len(failed) != 0 {
		t.Errorf("failed_seeds = %#v, want []", sum["failed_seeds"])
	}

	// Quiet: only the summary; --seed replays one seed with the same result.
	quiet, err := run(t, "", "sim", "run", "--seeds", "3", "--duration", "1s", "--quiet", "--parallel", "1", "--faults", "partition,crash,restart,wipe")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(quiet, "\n") != 1 || lastJSON(t, quiet)["acked"] != sum["acked"] {
		t.Errorf("quiet output %q; want one summary line with acked=%v", quiet, sum["acked"])
	}
	one, err := run(t, "", "sim", "run", "--seed", "2", "--duration", "1s", "--faults", "partition,crash,restart,wipe")
	if err != nil {
		t.Fatal(err)
	}
	line2 := lineWithPrefix(out, "seed 2:")
	if got := lineWithPrefix(one, "seed 2:"); got == "" || got != line2 {
		t.Errorf("--seed 2 printed %q; --seeds 3 printed %q", got, line2)
	}

}

func lineWithPrefix(out, prefix string) string {
	for l := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// --lww is a negative control: it succeeds only when the checker reports
// lost writes.
func TestSimRunLWWNegativeControl(t *testing.T) {
	out, err := run(t, "", "sim", "run", "--lww", "--seeds", "2", "--keys", "2", "--clients", "8", "--duration", "1s", "--faults", "partition")
	if err != nil {
		t.Fatalf("negative control failed: %v\n%s", err, out)
	}
	sum := lastJSON(t, out)
	if lost, _ := sum["lost"].(float64); lost == 0 {
		t.Fatalf("summary %v: no lost writes under last-write-wins", sum)
	}
	if failed, _ := sum["failed_seeds"].([]any); len(failed) == 0 {
		t.Errorf("seeds that lost writes are not listed as failed: %v", sum)
	}
}

// A negative control that loses nothing means the checker is blind: with
// too short a run to write anything twice, --lww must fail.
func TestSimRunLWWWithoutLossFails(t *testing.T) {
	out, err := run(t, "", "sim", "run", "--lww", "--seeds", "1", "--duration", "1ms", "--faults", "")
	if !errors.Is(err, errSimFailed) {
		t.Fatalf("err = %v, want errSimFailed; output\n%s", err, out)
	}
	if lost := lastJSON(t, out)["lost"]; lost != 0.0 {
		t.Fatalf("lost = %v in a 1 ms run", lost)
	}
}

func TestSimRunUsage(t *testing.T) {
	for _, args := range [][]string{
		{"sim"},
		{"sim", "walk"},
		{"sim", "run", "--faults", "meteor"},
		{"sim", "run", "--seeds", "0"},
		{"sim", "run", "--r", "4"},
		{"sim", "run", "extra"},
	} {
		if _, err := run(t, "", args...); !errors.Is(err, errUsage) {
			t.Errorf("dynago %s: err = %v, want a usage error", strings.Join(args, " "), err)
		}
	}
	if out, err := run(t, "", "sim", "run", "-h"); err != nil || !strings.Contains(out, "--seeds") {
		t.Errorf("-h: %v, %q", err, out)
	}
}
