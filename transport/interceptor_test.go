package transport

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dynago/dynago/node"
)

// runDelays sends n messages through a delay queue, each delayed by
// delay plus a spread of up to 1 ms (so that due times fall anywhere
// between the runtime's millisecond timer ticks), and returns how late
// each was delivered after its due time (negative: early).
func runDelays(tb testing.TB, n int, delay time.Duration) []time.Duration {
	tb.Helper()
	d := newDelayQueue()
	stop := make(chan struct{})
	var mu sync.Mutex
	due := map[uint64]time.Time{}
	var late []time.Duration
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.run(stop, func(m node.Message) {
			now := time.Now()
			mu.Lock()
			late = append(late, now.Sub(due[m.ReqID]))
			mu.Unlock()
		})
	}()
	for i := range n {
		extra := time.Duration(i*997%1000) * time.Microsecond
		mu.Lock()
		due[uint64(i)] = time.Now().Add(delay + extra)
		mu.Unlock()
		if !d.add(node.Message{ReqID: uint64(i)}, delay+extra) {
			tb.Fatal("the queue refused a message")
		}
		time.Sleep(time.Duration(i%3) * time.Millisecond)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		got := len(late)
		mu.Unlock()
		if got == n {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d delayed messages delivered after 10 s", got, n)
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	<-done
	return late
}

// A delayed message never arrives before its time: the queue wakes a
// millisecond early (timerSlack) and sleeps the rest precisely, which must
// not turn into an early delivery.
func TestDelayQueueNeverEarly(t *testing.T) {
	late := runDelays(t, 60, 5*time.Millisecond)
	for i, l := range late {
		// The due time was taken just before add took its own Now, so a
		// delivery at the queue's due time can precede it by that gap.
		if l < -200*time.Microsecond {
			t.Errorf("message %d delivered %v early", i, -l)
		}
	}
}

// BenchmarkDelayQueueLateness reports how late, on average and at the
// 90th percentile, delayed messages arrive after their due time: the error
// the lab's injected delay adds to every network leg (docs/BENCHMARKS.md).
func BenchmarkDelayQueueLateness(b *testing.B) {
	var all []time.Duration
	for b.Loop() {
		all = append(all, runDelays(b, 50, 10*time.Millisecond)...)
	}
	var sum time.Duration
	for _, l := range all {
		sum += l
	}
	sorted := append([]time.Duration(nil), all...)
	slices.Sort(sorted)
	b.ReportMetric(float64((sum / time.Duration(len(all))).Microseconds()), "mean-late-µs")
	b.ReportMetric(float64(sorted[len(sorted)*9/10].Microseconds()), "p90-late-µs")
}
