package main

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/dynago/dynago/chaos"
)

// The exit status is what make test asserts: a run passes only when it
// converged and lost nothing; the --lww negative control passes only when
// the checker caught a loss.
func TestChaosVerdict(t *testing.T) {
	oldErr := stderr
	stderr = io.Discard
	defer func() { stderr = oldErr }()
	for _, tc := range []struct {
		name string
		rep  chaos.Report
		pass bool
	}{
		{"clean", chaos.Report{Acked: 10, Converged: true, Valid: true}, true},
		{"lost", chaos.Report{Acked: 10, Lost: 1, LostElements: []string{"k/e"}, Converged: true}, false},
		{"unexpected", chaos.Report{Acked: 10, Unexpected: 1, UnexpectedElements: []string{"k/x"}, Converged: true}, false},
		{"heal failed", chaos.Report{Acked: 10, Converged: true, HealError: "n3 exited without being killed"}, false},
		{"not converged", chaos.Report{Acked: 10, Converged: false, Unconverged: "n1 sees n2 dead"}, false},
		{"lww caught", chaos.Report{LWW: true, Acked: 10, Lost: 3}, true},
		{"lww missed", chaos.Report{LWW: true, Acked: 10, Converged: true}, false},
	} {
		err := chaosVerdict(tc.rep)
		if (err == nil) != tc.pass || (err != nil && !errors.Is(err, errChaosFailed)) {
			t.Errorf("%s: verdict %v, want pass=%v", tc.name, err, tc.pass)
		}
	}
}

func TestChaosRejectsBadFlags(t *testing.T) {
	oldErr := stderr
	stderr = io.Discard
	defer func() { stderr = oldErr }()
	for _, args := range [][]string{
		{"--nemesis", "kill,meteor"},
		{"--duration", "-1s"},
		{"--clients", "0"},
		{"extra"},
	} {
		if _, err := execute(context.Background(), append([]string{"chaos"}, args...)); !errors.Is(err, errUsage) {
			t.Errorf("dynago chaos %v: %v, want a usage error before any node starts", args, err)
		}
	}
}
