package sim

import (
	"bytes"
	"errors"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynago/dynago/dvv"
	"github.com/dynago/dynago/object"
)

var allFaults = []string{FaultPartition, FaultCrash, FaultRestart, FaultWipe, FaultJoin, FaultLeave}

func runSeed(t *testing.T, o RunOptions) Result {
	t.Helper()
	res, err := RunSeed(o)
	if err != nil {
		t.Fatalf("seed %d: %v", o.Seed, err)
	}
	return res
}

func TestRunSeedsWithAllFaultsLoseNothing(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		res := runSeed(t, RunOptions{Seed: seed, Faults: allFaults, Duration: 3 * time.Second})
		t.Log(res)
		if res.Failed() {
			t.Errorf("seed %d failed: %v\nlost: %q\nresurrected: %q", seed, res, res.LostDetails, res.ResurrectedDetails)
		}
		if res.Acked < 100 {
			t.Errorf("seed %d: only %d acknowledged writes in 3 s of virtual time; the workload did not run", seed, res.Acked)
		}
	}
}

func TestRunSeedReplaysExactly(t *testing.T) {
	run := func(seed uint64) (Result, string) {
		var trace bytes.Buffer
		res := runSeed(t, RunOptions{Seed: seed, Faults: allFaults, Duration: time.Second, Trace: &trace})
		return res, trace.String()
	}
	a, ta := run(7)
	b, tb := run(7)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("same seed, different results:\n%+v\n%+v", a, b)
	}
	if ta != tb {
		t.Fatal("same seed, different traces")
	}
	if c, tc := run(8); reflect.DeepEqual(a, c) || ta == tc {
		t.Fatal("different seeds, identical runs: the seed is not used")
	}
	for _, want := range []string{"client 1: put k", "-> ok dot ", "run: workload stopped"} {
		if !strings.Contains(ta, want) {
			t.Errorf("trace lacks %q", want)
		}
	}
}

// The fault schedule keeps at most one node down at a time and wipes at
// most once; every enabled kind shows up across a few seeds.
func TestFaultScheduleKeepsOneNodeDown(t *testing.T) {
	line := regexp.MustCompile(`fault: (crash|wipe|restart|partition) ?(n\d+)?`)
	seen := map[string]int{}
	for seed := uint64(1); seed <= 4; seed++ {
		var trace bytes.Buffer
		runSeed(t, RunOptions{Seed: seed, Faults: allFaults, Duration: 3 * time.Second, Trace: &trace})
		down, wipes := 0, 0
		for _, m := range line.FindAllStringSubmatch(trace.String(), -1) {
			seen[m[1]]++
			switch m[1] {
			case "crash", "wipe":
				down++
			case "restart":
				down--
			}
			if m[1] == "wipe" {
				wipes++
			}
			if down > 1 {
				t.Fatalf("seed %d: two nodes down at once", seed)
			}
		}
		if wipes > 1 {
			t.Fatalf("seed %d: %d wipes, want at most one", seed, wipes)
		}
	}
	for _, kind := range []string{"crash", "wipe", "restart", "partition"} {
		if seen[kind] == 0 {
			t.Errorf("no %s in 4 seeds: %v", kind, seen)
		}
	}

	var trace bytes.Buffer
	runSeed(t, RunOptions{Seed: 1, Faults: []string{FaultPartition}, Duration: 2 * time.Second, Trace: &trace})
	if got := line.FindAllStringSubmatch(trace.String(), -1); slices.ContainsFunc(got, func(m []string) bool { return m[1] != "partition" }) {
		t.Fatal("a node went down although only partitions were enabled")
	}
}

// Last-write-wins is the checker's negative control: on a hot keyspace it
// must lose acknowledged writes, while the same schedules with siblings
// lose none.
func TestLWWNegativeControlLosesWrites(t *testing.T) {
	lost := 0
	for seed := uint64(1); seed <= 3; seed++ {
		o := RunOptions{Seed: seed, Keys: 2, Clients: 8, Duration: time.Second, Faults: []string{FaultPartition}}
		safe := runSeed(t, o)
		if safe.Failed() {
			t.Fatalf("seed %d without LWW: %v %q", seed, safe, safe.LostDetails)
		}
		o.LWW = true
		res := runSeed(t, o)
		lost += res.Lost
		if len(res.LostDetails) != res.Lost {
			t.Fatalf("%d lost, %d details", res.Lost, len(res.LostDetails))
		}
	}
	if lost == 0 {
		t.Fatal("last-write-wins lost no acknowledged write in 3 seeds: the checker cannot see lost writes")
	}
}

func TestRunOptionsAreValidated(t *testing.T) {
	for _, o := range []RunOptions{
		{Faults: []string{"meteor"}},
		{R: 4},
		{N: 6},
		{Clients: -1},
	} {
		if _, err := RunSeed(o); !errors.Is(err, ErrBadRunOptions) {
			t.Errorf("%+v: err = %v, want ErrBadRunOptions", o, err)
		}
	}
}

// The checker itself, on hand-made histories and final states.
func TestChecker(t *testing.T) {
	put := func(o object.Object, ctx dvv.VV, v, actor string) object.Object {
		return object.Update(o, ctx, object.Sibling{Value: []byte(v)}, actor)
	}
	del := func(o object.Object, ctx dvv.VV, actor string) object.Object {
		return object.Update(o, ctx, object.Sibling{Deleted: true}, actor)
	}
	a1 := dvv.Dot{Actor: "A", Counter: 1}
	onlyA := put(object.Object{}, nil, "a", "A") // "a" at A:1

	cases := []struct {
		name              string
		writes            []*writeRecord
		final             object.Object
		lost, resurrected int
		lostWord, resWord string
	}{{
		name:   "acknowledged value kept",
		writes: []*writeRecord{{key: "k", value: "a", dot: a1, outcome: outcomeAcked}},
		final:  onlyA,
	}, {
		name: "acknowledged value missing and nothing replaced it",
		writes: []*writeRecord{
			{key: "k", value: "a", dot: a1, outcome: outcomeAcked},
			{key: "k", value: "b", dot: dvv.Dot{Actor: "B", Counter: 1}, outcome: outcomeAcked},
		},
		final: put(object.Object{}, nil, "b", "B"),
		lost:  1, lostWord: `"a"`,
	}, {
		name: "replaced by an acknowledged write whose context covered it",
		writes: []*writeRecord{
			{key: "k", value: "a", dot: a1, outcome: outcomeAcked},
			{key: "k", value: "b", carried: dvv.VV{a1}, dot: dvv.Dot{Actor: "A", Counter: 2}, outcome: outcomeAcked},
		},
		final: put(onlyA, dvv.VV{a1}, "b", "A"),
	}, {
		name: "replaced by a delete of unknown outcome",
		writes: []*writeRecord{
			{key: "k", value: "a", dot: a1, outcome: outcomeAcked},
			{key: "k", del: true, carried: dvv.VV{a1}, outcome: outcomeUnknown},
		},
		final: del(onlyA, dvv.VV{a1}, "B"),
	}, {
		name: "a rejected write replaces nothing",
		writes: []*writeRecord{
			{key: "k", value: "a", dot: a1, outcome: outcomeAcked},
			{key: "k", del: true, carried: dvv.VV{a1}, outcome: outcomeRejected},
		},
		final: del(onlyA, dvv.VV{a1}, "B"),
		lost:  1, lostWord: `"a"`,
	}, {
		name: "a context on another key covers nothing here",
		writes: []*writeRecord{
			{key: "k", value: "a", dot: a1, outcome: outcomeAcked},
			{key: "other", del: true, carried: dvv.VV{a1}, outcome: outcomeAcked},
		},
		final: object.Object{},
		lost:  1, lostWord: `"a"`,
	}, {
		name: "value kept under a second dot (forward retried on another coordinator)",
		writes: []*writeRecord{
			{key: "k", value: "a", dot: a1, outcome: outcomeAcked},
			{key: "k", value: "b", carried: dvv.VV{a1}, outcome: outcomeAcked, dot: dvv.Dot{Actor: "A", Counter: 2}},
		},
		// "a" also went through coordinator C, whose copy nobody read.
		final: put(put(put(object.Object{}, nil, "a", "C"), nil, "a", "A"), dvv.VV{a1}, "b", "A"),
	}, {
		name: "deleted value live again",
		writes: []*writeRecord{
			{key: "k", value: "a", dot: a1, outcome: outcomeAcked},
			{key: "k", del: true, carried: dvv.VV{a1}, dot: dvv.Dot{Actor: "B", Counter: 1}, outcome: outcomeAcked},
		},
		final:       onlyA,
		resurrected: 1, resWord: `"a" (dot A:1) is live although the acknowledged delete k`,
	}, {
		name: "covered only by a write of unknown outcome: not resurrected",
		writes: []*writeRecord{
			{key: "k", value: "a", dot: a1, outcome: outcomeAcked},
			{key: "k", value: "b", carried: dvv.VV{a1}, outcome: outcomeUnknown},
		},
		final: onlyA,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := check(tc.writes, map[string]object.Object{"k": tc.final})
			if len(rep.lost) != tc.lost || len(rep.resurrected) != tc.resurrected {
				t.Fatalf("lost %q, resurrected %q; want %d lost, %d resurrected", rep.lost, rep.resurrected, tc.lost, tc.resurrected)
			}
			if tc.lost > 0 && !strings.Contains(rep.lost[0], tc.lostWord) {
				t.Errorf("lost report %q does not name %s", rep.lost[0], tc.lostWord)
			}
			if tc.resurrected > 0 && !strings.Contains(rep.resurrected[0], tc.resWord) {
				t.Errorf("resurrection report %q lacks %q", rep.resurrected[0], tc.resWord)
			}
		})
	}
}

// TestOutagesOfWholePreferenceListsLoseNothing: with N nodes down at once,
// writes through the survivors are coordinated on fallbacks only; once the
// nodes return, none of them may be lost and the replicas converge.
func TestOutagesOfWholePreferenceListsLoseNothing(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		res := runSeed(t, RunOptions{Seed: seed, Faults: []string{FaultOutage, FaultPartition}, Duration: 4 * time.Second})
		if res.Lost != 0 || res.Resurrected != 0 || !res.Converged {
			t.Fatalf("seed %d: %+v", seed, res)
		}
		if res.Acked == 0 {
			t.Fatalf("seed %d acknowledged nothing", seed)
		}
	}
}
