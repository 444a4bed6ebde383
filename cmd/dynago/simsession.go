package main

import (
	"fmt"

	"github.com/dynago/dynago/sim"
)

// Session checking in `dynago sim run`: --sessions makes every client a
// session carrying a token (violations fail the seed); --session-control
// runs the same checker without tokens as a negative control, which must
// find read-your-writes violations (it does at R=1 W=1).

// sessionTotals is the "sessions" member of the summary line: violations
// per guarantee over all seeds.
type sessionTotals struct {
	Tokens            bool `json:"tokens"`
	Reads             int  `json:"reads"`
	Writes            int  `json:"writes"`
	Unavailable       int  `json:"session_unavailable"`
	ReadYourWrites    int  `json:"read_your_writes"`
	MonotonicReads    int  `json:"monotonic_reads"`
	MonotonicWrites   int  `json:"monotonic_writes"`
	WritesFollowReads int  `json:"writes_follow_reads"`
}

func (t *sessionTotals) add(r sim.SessionReport) {
	t.Reads += r.Reads
	t.Writes += r.Writes
	t.Unavailable += r.Unavailable
	t.ReadYourWrites += r.ReadYourWrites
	t.MonotonicReads += r.MonotonicReads
	t.MonotonicWrites += r.MonotonicWrites
	t.WritesFollowReads += r.WritesFollowReads
}

// printSessionSeed prints one seed's session verdict under its line, and
// the violations when tokens were carried (they fail the seed then).
func printSessionSeed(r sim.Result, quiet bool) {
	if !quiet || r.Failed() {
		fmt.Fprintf(stdout, "  sessions: %s\n", r.Session)
	}
	if r.Sessions && r.Session.Violations() > 0 {
		printDetails("session", r.Session.Details)
	}
}

// sessionControlVerdict judges a --session-control run.
func sessionControlVerdict(t *sessionTotals) error {
	if t.ReadYourWrites == 0 {
		return fmt.Errorf("%w: session control: clients without tokens saw no read-your-writes violation in %d reads, so the checker (or the workload) cannot see them; try --r 1 --w 1", errSimFailed, t.Reads)
	}
	fmt.Fprintf(stderr, "note: session control passed: without tokens, %d of %d reads missed the session's own writes, and the checker caught them\n", t.ReadYourWrites, t.Reads)
	return nil
}
