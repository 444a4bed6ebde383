package fault

import (
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

func msgTo(dst string) *node.Message {
	return &node.Message{Type: node.MsgReplicaPut, From: "n1", To: ring.NodeID(dst)}
}

func mustSet(t *testing.T, inj *Injector, r Rules) {
	t.Helper()
	if err := inj.Set(r); err != nil {
		t.Fatalf("Set(%+v): %v", r, err)
	}
}

func TestNoRulesInjectsNothing(t *testing.T) {
	inj := NewInjector(1)
	for range 100 {
		if d, drop := inj.Outbound(msgTo("n2")); d != 0 || drop {
			t.Fatalf("Outbound = %v, %v with no rules", d, drop)
		}
	}
	if st := inj.Stats(); st != (Stats{}) {
		t.Errorf("Stats = %+v, want zero", st)
	}
}

func TestLossRate(t *testing.T) {
	const n, p = 10000, 0.2
	inj := NewInjector(42)
	mustSet(t, inj, Rules{Loss: map[string]float64{"n2": p}})
	dropped := 0
	for range n {
		if _, drop := inj.Outbound(msgTo("n2")); drop {
			dropped++
		}
	}
	// 4 standard deviations of a binomial(10000, 0.2) is 160.
	if math.Abs(float64(dropped)-n*p) > 160 {
		t.Errorf("dropped %d of %d, want ≈%v", dropped, n, n*p)
	}
	if st := inj.Stats(); st.DroppedLoss != uint64(dropped) || st.DroppedCut != 0 {
		t.Errorf("Stats = %+v, want DroppedLoss %d", st, dropped)
	}
	for range 100 {
		if _, drop := inj.Outbound(msgTo("n3")); drop {
			t.Fatal("loss for n2 dropped a message to n3")
		}
	}
}

func TestSeedReproducible(t *testing.T) {
	run := func(seed uint64) []time.Duration {
		inj := NewInjector(seed)
		mustSet(t, inj, Rules{
			Delay: map[string]Delay{"*": Uniform(0, time.Second)},
			Loss:  map[string]float64{"*": 0.3},
		})
		var out []time.Duration
		for range 200 {
			d, drop := inj.Outbound(msgTo("n2"))
			if drop {
				d = -1
			}
			out = append(out, d)
		}
		return out
	}
	a, b, c := run(7), run(7), run(8)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("draw %d: %v vs %v with the same seed", i, a[i], b[i])
		}
	}
	same := 0
	for i := range a {
		if a[i] == c[i] {
			same++
		}
	}
	if same == len(a) {
		t.Error("different seeds gave identical sequences")
	}
}

func TestCutDropsOnlyCutDestination(t *testing.T) {
	inj := NewInjector(1)
	mustSet(t, inj, Rules{Cut: []string{"n4"}, Delay: map[string]Delay{"*": Fixed(time.Millisecond)}})
	for range 1000 {
		if _, drop := inj.Outbound(msgTo("n4")); !drop {
			t.Fatal("message to cut n4 not dropped")
		}
		if d, drop := inj.Outbound(msgTo("n2")); drop || d != time.Millisecond {
			t.Fatalf("message to n2 = %v, %v; want 1ms, delivered", d, drop)
		}
	}
	st := inj.Stats()
	if st.DroppedCut != 1000 || st.Delayed != 1000 || st.DroppedLoss != 0 {
		t.Errorf("Stats = %+v, want 1000 cut, 1000 delayed", st)
	}

	mustSet(t, inj, Rules{Cut: []string{Any}})
	for _, dst := range []string{"n2", "n3", "n9"} {
		if _, drop := inj.Outbound(msgTo(dst)); !drop {
			t.Errorf("cut * did not drop a message to %s", dst)
		}
	}
	mustSet(t, inj, Rules{})
	if _, drop := inj.Outbound(msgTo("n4")); drop {
		t.Error("Set(Rules{}) did not heal the cut")
	}
}

func TestSpecificBeatsAny(t *testing.T) {
	inj := NewInjector(1)
	mustSet(t, inj, Rules{
		Delay: map[string]Delay{"*": Fixed(10 * time.Millisecond), "n3": Fixed(30 * time.Millisecond), "n5": Fixed(0)},
		Loss:  map[string]float64{"*": 1, "n3": 0, "n5": 0},
	})
	if _, drop := inj.Outbound(msgTo("n2")); !drop {
		t.Error("loss * = 1 did not drop a message to n2")
	}
	if d, drop := inj.Outbound(msgTo("n3")); drop || d != 30*time.Millisecond {
		t.Errorf("n3: %v, %v; want its own 30ms and no loss", d, drop)
	}
	if d, drop := inj.Outbound(msgTo("n5")); drop || d != 0 {
		t.Errorf("n5: %v, %v; want its own 0 delay and no loss", d, drop)
	}
	mustSet(t, inj, Rules{Delay: map[string]Delay{"*": Fixed(10 * time.Millisecond)}})
	if d, _ := inj.Outbound(msgTo("n7")); d != 10*time.Millisecond {
		t.Errorf("n7 without its own rule: %v, want the * 10ms", d)
	}
}

func TestSetRejectsInvalidAndKeepsOld(t *testing.T) {
	inj := NewInjector(1)
	good := Rules{Cut: []string{"n2"}}
	mustSet(t, inj, good)
	if err := inj.Set(Rules{Loss: map[string]float64{"n3": 2}}); !errors.Is(err, ErrRules) {
		t.Fatalf("Set(loss 2) = %v, want ErrRules", err)
	}
	if _, drop := inj.Outbound(msgTo("n2")); !drop {
		t.Error("a rejected Set replaced the previous rules")
	}
}

func TestRulesIsACopy(t *testing.T) {
	inj := NewInjector(1)
	in := Rules{Cut: []string{"n2"}, Loss: map[string]float64{"n3": 0.5}}
	mustSet(t, inj, in)
	in.Cut[0] = "n9"
	in.Loss["n3"] = 0
	got := inj.Rules()
	if got.Cut[0] != "n2" || got.Loss["n3"] != 0.5 {
		t.Fatalf("Rules = %+v: the caller's later edits leaked in", got)
	}
	got.Cut[0] = "n8"
	if _, drop := inj.Outbound(msgTo("n2")); !drop {
		t.Error("editing Rules() changed the injector")
	}
}

// TestConcurrent runs senders against Set and Rules; -race checks the
// synchronisation, the counts check nothing was decided twice or lost.
func TestConcurrent(t *testing.T) {
	inj := NewInjector(3)
	const senders, per = 8, 2000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		rules := []Rules{
			{Cut: []string{"n2"}},
			{Loss: map[string]float64{"*": 0.5}, Delay: map[string]Delay{"n2": Normal(time.Millisecond, time.Millisecond)}},
			{},
		}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := inj.Set(rules[i%len(rules)]); err != nil {
				t.Error(err)
				return
			}
			_ = inj.Rules()
		}
	}()
	var sendWG sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range senders {
		sendWG.Add(1)
		go func() {
			defer sendWG.Done()
			n := 0
			for range per {
				if d, drop := inj.Outbound(msgTo("n2")); d < 0 || (drop && d != 0) {
					t.Errorf("Outbound = %v, %v", d, drop)
					return
				}
				n++
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	sendWG.Wait()
	close(stop)
	wg.Wait()
	st := inj.Stats()
	if total != senders*per || st.DroppedCut+st.DroppedLoss+st.Delayed > uint64(total) {
		t.Errorf("total %d, Stats %+v", total, st)
	}
}
