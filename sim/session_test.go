package sim

import (
	"testing"
	"time"
)

// sessionFaults are the fault schedules the session checker runs under:
// each kind alone, and all together.
var sessionFaults = [][]string{
	nil,
	{FaultPartition},
	{FaultCrash, FaultRestart},
	{FaultWipe},
	{FaultOutage},
	{FaultJoin, FaultLeave},
	{FaultPartition, FaultCrash, FaultRestart, FaultWipe, FaultOutage, FaultJoin, FaultLeave},
}

func TestSessionGuaranteesHoldAtR1W1UnderEveryFault(t *testing.T) {
	seeds := []uint64{1, 2}
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, faults := range sessionFaults {
		for _, seed := range seeds {
			res, err := RunSeed(RunOptions{Seed: seed, R: 1, W: 1, Faults: faults, Sessions: true, Duration: 4 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			s := res.Session
			if s.Reads < 50 || s.Writes < 50 {
				t.Fatalf("faults %v seed %d: only %d reads and %d writes checked", faults, seed, s.Reads, s.Writes)
			}
			t.Logf("faults %v seed %d: %s", faults, seed, s)
			if s.Violations() > 0 || res.Failed() {
				t.Errorf("faults %v seed %d: %s; %v\n%v", faults, seed, s, res, s.Details)
			}
		}
	}
}

// The control: the same clients without tokens. At R=1 W=1 a read through
// another node often reaches a replica the write has not reached yet, and
// the checker must see it; otherwise it could not fail.
func TestSessionControlWithoutTokensViolatesReadYourWrites(t *testing.T) {
	total := 0
	for _, faults := range [][]string{nil, {FaultPartition}} {
		res, err := RunSeed(RunOptions{Seed: 1, R: 1, W: 1, Faults: faults, Duration: 4 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("control, faults %v: %s", faults, res.Session)
		if res.Failed() {
			t.Errorf("control run failed a non-session guarantee: %v", res)
		}
		total += res.Session.ReadYourWrites
	}
	if total == 0 {
		t.Fatal("without session tokens at R=1 W=1 the checker found no read-your-writes violation: it cannot fail")
	}
}
