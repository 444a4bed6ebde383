package transport

import (
	"container/heap"
	"sync"
	"time"

	"github.com/dynago/dynago/node"
)

// Interceptor is the fault lab's hook on outbound traffic. Outbound sees
// every message Send is given for another node (local deliveries never touch
// the network and are not intercepted), on the goroutine that called Send:
// it must be fast and safe for concurrent use. It may modify *m; the
// modified message is what goes out.
//
// A positive delay holds the message back for that long without holding
// back anything else; drop discards it. Both are counted (FaultDelayed,
// FaultDropped).
type Interceptor interface {
	Outbound(m *node.Message) (delay time.Duration, drop bool)
}

// interceptorBox lets an interface value live in an atomic.Pointer.
type interceptorBox struct{ i Interceptor }

// delayed is one held-back message.
type delayed struct {
	at  time.Time
	seq uint64 // ties on at keep Send order
	m   node.Message
}

type delayHeap []delayed

func (h delayHeap) Len() int { return len(h) }
func (h delayHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h delayHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)   { *h = append(*h, x.(delayed)) }
func (h *delayHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = delayed{} // release the message's buffers
	*h = old[:len(old)-1]
	return x
}

// timerSlack is how late a Go timer may fire: the runtime sleeps in epoll
// with a millisecond timeout, so a timer fires up to about 1 ms after its
// time (0.6 ms on average on the 2-core lab VM: a 10 ms injected delay cost
// 10.6 ms, 6 % more than asked, on every leg of a seed-table request). The
// delay queue therefore wakes timerSlack early and sleeps the remainder
// with preciseSleep.
const timerSlack = time.Millisecond

// delayQueue holds delayed messages in a timer heap served by one goroutine,
// rather than a time.AfterFunc per message, so that Close can stop and count
// every pending message and equal delays keep their Send order.
type delayQueue struct {
	mu     sync.Mutex
	h      delayHeap
	seq    uint64
	closed bool
	wake   chan struct{} // capacity 1: "the earliest deadline may have changed"
}

func newDelayQueue() *delayQueue {
	return &delayQueue{wake: make(chan struct{}, 1)}
}

// add schedules m, or reports false once the queue is closed.
func (d *delayQueue) add(m node.Message, delay time.Duration) bool {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return false
	}
	d.seq++
	heap.Push(&d.h, delayed{at: time.Now().Add(delay), seq: d.seq, m: m})
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	return true
}

// run delivers each message when its time comes, until stop is closed.
func (d *delayQueue) run(stop <-chan struct{}, deliver func(node.Message)) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var due []node.Message
	for {
		d.mu.Lock()
		now := time.Now()
		for len(d.h) > 0 && !d.h[0].at.After(now) {
			due = append(due, heap.Pop(&d.h).(delayed).m)
		}
		next := time.Duration(-1)
		if len(d.h) > 0 {
			next = d.h[0].at.Sub(now)
		}
		d.mu.Unlock()
		for i := range due {
			deliver(due[i])
			due[i] = node.Message{}
		}
		due = due[:0]
		if next >= 0 && next <= timerSlack {
			// The head is due within the timer's granularity: sleep the
			// rest precisely, then deliver it.
			preciseSleep(next)
			continue
		}
		if next >= 0 {
			timer.Reset(next - timerSlack)
		} else {
			timer.Stop()
		}
		select {
		case <-stop:
			return
		case <-d.wake:
		case <-timer.C:
		}
	}
}

// close makes later adds fail and returns every pending message. Call it
// after run has returned.
func (d *delayQueue) close() []node.Message {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	out := make([]node.Message, 0, len(d.h))
	for _, x := range d.h {
		out = append(out, x.m)
	}
	d.h = nil
	return out
}
