package main

import (
	"errors"
	"strings"
	"testing"
)

func TestSimRunSessionsPrintsViolationsPerGuarantee(t *testing.T) {
	out, err := run(t, "", "sim", "run", "--seeds", "2", "--duration", "2s", "--r", "1", "--w", "1", "--sessions", "--faults", "partition,crash,restart")
	if err != nil {
		t.Fatalf("dynago sim run --sessions: %v\n%s", err, out)
	}
	if strings.Count(out, "  sessions: reads=") != 2 {
		t.Errorf("want one sessions line per seed in\n%s", out)
	}
	sess, ok := lastJSON(t, out)["sessions"].(map[string]any)
	if !ok {
		t.Fatalf("summary has no sessions member:\n%s", out)
	}
	for _, g := range []string{"read_your_writes", "monotonic_reads", "monotonic_writes", "writes_follow_reads"} {
		if v, ok := sess[g].(float64); !ok || v != 0 {
			t.Errorf("%s = %v, want 0 with tokens", g, sess[g])
		}
	}
	if reads, _ := sess["reads"].(float64); reads < 50 || sess["tokens"] != true {
		t.Errorf("sessions = %v: too few reads checked", sess)
	}

	// The control must find read-your-writes violations, and says so.
	out, err = run(t, "", "sim", "run", "--seeds", "2", "--duration", "2s", "--r", "1", "--w", "1", "--session-control", "--faults", "", "--quiet")
	if err != nil {
		t.Fatalf("--session-control: %v\n%s", err, out)
	}
	sess = lastJSON(t, out)["sessions"].(map[string]any)
	if v, _ := sess["read_your_writes"].(float64); v == 0 || sess["tokens"] != false {
		t.Errorf("control sessions = %v, want read-your-writes violations without tokens", sess)
	}
	// With quorums that overlap and no faults the control finds nothing,
	// and the command fails rather than claim a checker that cannot fail.
	out, err = run(t, "", "sim", "run", "--seeds", "1", "--duration", "1s", "--r", "3", "--w", "3", "--session-control", "--faults", "", "--quiet")
	if !errors.Is(err, errSimFailed) {
		t.Errorf("control at R=3 W=3: err = %v, want errSimFailed\n%s", err, out)
	}
}
