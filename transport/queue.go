package transport

import (
	"sync"

	"github.com/dynago/dynago/node"
)

// queue is a bounded FIFO of messages whose producers never block. It is not
// a buffered channel because a channel allocates its whole bound up front: a
// node.Message is about 450 bytes, so 8192 of them per peer would pin
// 3.7 MB per peer whether or not anything is queued. Here memory follows
// the queue's length, and the consumer takes a whole batch per lock.
type queue struct {
	mu    sync.Mutex
	items []node.Message // items[head:] are queued
	head  int
	limit int
	// ready holds a token when items may be non-empty. Capacity 1: a push
	// that finds a token already there needs no second one, and a consumer
	// that drains the queue and then waits cannot miss a push in between.
	ready chan struct{}
}

// shrinkCap is the capacity above which an emptied queue gives its array
// back, so that one burst does not hold memory for good.
const shrinkCap = 1024

func newQueue(limit int) *queue {
	return &queue{limit: limit, ready: make(chan struct{}, 1)}
}

// push appends m, or reports false when the queue is full.
func (q *queue) push(m node.Message) bool {
	q.mu.Lock()
	n := len(q.items) - q.head
	if n >= q.limit {
		q.mu.Unlock()
		return false
	}
	if q.head > 0 && len(q.items) == cap(q.items) {
		// Slide the live part to the front rather than grow: under
		// steady load the queue may never be empty, and appending
		// forever behind head would grow without bound.
		copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items = q.items[:n]
		q.head = 0
	}
	q.items = append(q.items, m)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// take appends up to maxN messages to dst, in FIFO order, and removes them
// from the queue. It stops before the approximate encoded size would pass
// maxBytes, but always takes at least one message if there is one.
func (q *queue) take(dst []node.Message, maxN, maxBytes int) []node.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	live := q.items[q.head:]
	n, size := 0, 0
	for n < len(live) && n < maxN {
		s := approxSize(&live[n])
		if n > 0 && size+s > maxBytes {
			break
		}
		size += s
		n++
	}
	dst = append(dst, live[:n]...)
	clear(live[:n]) // let the messages' buffers go
	q.head += n
	q.resetIfEmpty()
	return dst
}

// drain removes everything and returns how many messages it removed.
func (q *queue) drain() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.items) - q.head
	clear(q.items[q.head:])
	q.head = len(q.items)
	q.resetIfEmpty()
	return n
}

func (q *queue) resetIfEmpty() {
	if q.head < len(q.items) {
		return
	}
	q.head = 0
	if cap(q.items) > shrinkCap {
		q.items = nil
	} else {
		q.items = q.items[:0]
	}
}
