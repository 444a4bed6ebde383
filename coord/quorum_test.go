package coord

import (
	"errors"
	"fmt"
	"testing"

	"github.com/dynago/dynago/dvv"
	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
)

func TestCheckQuorum(t *testing.T) {
	for _, tc := range []struct {
		q, n int
		ok   bool
	}{{1, 3, true}, {3, 3, true}, {0, 3, false}, {4, 3, false}, {-1, 3, false}, {1, 1, true}} {
		err := CheckQuorum("w", tc.q, tc.n)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrBadQuorum)) {
			t.Errorf("CheckQuorum(%d, %d) = %v", tc.q, tc.n, err)
		}
	}
}

func TestQuorum(t *testing.T) {
	type step struct {
		from ring.NodeID
		ok   bool
		want Outcome
	}
	for _, tc := range []struct {
		name            string
		required, total int
		steps           []step
	}{
		{"W=2 of 3 succeeds on the second ack", 2, 3, []step{{"a", true, Pending}, {"b", true, Succeeded}, {"c", true, Decided}}},
		{"duplicate acks count once", 2, 3, []step{{"a", true, Pending}, {"a", true, Pending}, {"b", true, Succeeded}}},
		{"fails as soon as unreachable", 3, 3, []step{{"a", true, Pending}, {"b", false, Failed}, {"c", true, Decided}}},
		{"W=1 succeeds at once", 1, 3, []step{{"a", true, Succeeded}, {"b", false, Decided}}},
		{"two failures of three defeat W=2", 2, 3, []step{{"a", false, Pending}, {"b", false, Failed}}},
		{"a failure then two acks still meets W=2", 2, 3, []step{{"a", false, Pending}, {"b", true, Pending}, {"c", true, Succeeded}}},
		{"an ack after a failure from the same node is ignored", 2, 3, []step{{"a", false, Pending}, {"a", true, Pending}, {"b", true, Pending}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := NewQuorum(tc.required, tc.total)
			for i, s := range tc.steps {
				var got Outcome
				if s.ok {
					got = q.Ack(s.from)
				} else {
					got = q.Fail(s.from)
				}
				if got != s.want {
					t.Fatalf("step %d (%s ok=%v): outcome %d, want %d", i, s.from, s.ok, got, s.want)
				}
			}
		})
	}
}

// Past the answers a Quorum holds inline, duplicates still count once and
// Answered still finds every replica.
func TestQuorumManyReplicas(t *testing.T) {
	const n = 3 * inlineAnswers
	q := NewQuorum(n-1, n)
	for i := range n - 2 {
		id := ring.NodeID(fmt.Sprint("r", i))
		if got := q.Ack(id); got != Pending {
			t.Fatalf("ack %d: %d, want Pending", i, got)
		}
		for j := 0; j <= i; j++ {
			if q.Ack(ring.NodeID(fmt.Sprint("r", j))) != Pending || q.Fail(ring.NodeID(fmt.Sprint("r", j))) != Pending {
				t.Fatalf("a duplicate answer of r%d after %d acks changed the outcome", j, i+1)
			}
		}
	}
	if q.Acks() != n-2 || q.Complete() || q.Answered("r-last") || !q.Answered(ring.NodeID(fmt.Sprint("r", n-3))) {
		t.Fatalf("after %d acks: Acks %d, Complete %t", n-2, q.Acks(), q.Complete())
	}
	if got := q.Fail("x"); got != Pending {
		t.Fatalf("one failure with one replica left: %d, want Pending", got)
	}
	if got := q.Ack("y"); got != Succeeded || !q.Complete() {
		t.Fatalf("last ack: %d, Complete %t; want Succeeded, complete", got, q.Complete())
	}
}

func TestQuorumExpireReportsFailureOnce(t *testing.T) {
	q := NewQuorum(2, 3)
	q.Ack("a")
	if q.Expire() != Failed || q.Expire() != Decided || q.Ack("b") != Decided {
		t.Fatal("expiry must decide the quorum exactly once")
	}
	q = NewQuorum(1, 3)
	q.Ack("a")
	if q.Expire() != Decided {
		t.Fatal("expiring a quorum that already succeeded must not report failure")
	}
}

func TestRepairTargets(t *testing.T) {
	v1 := object.Object{Clock: dvv.Update(dvv.Set[object.Sibling]{}, nil, object.Sibling{Value: []byte("1")}, "a")}
	v2 := object.Object{Clock: dvv.Update(v1.Clock, v1.Clock.Join(), object.Sibling{Value: []byte("2")}, "a")}
	answers := []Answer{
		{From: "fresh", Found: true, Object: v2},
		{From: "stale", Found: true, Object: v1},
		{From: "empty", Found: false},
	}
	got := RepairTargets(v2, answers)
	if len(got) != 2 || got[0] != "stale" || got[1] != "empty" {
		t.Fatalf("RepairTargets = %v, want [stale empty]", got)
	}
	if RepairTargets(object.Object{}, []Answer{{From: "x"}}) != nil {
		t.Fatal("nothing to repair when nobody holds anything")
	}
}
