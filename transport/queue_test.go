package transport

import (
	"testing"

	"github.com/dynago/dynago/node"
)

func TestQueueIsBoundedFIFO(t *testing.T) {
	q := newQueue(3)
	for i := range 5 {
		if got, want := q.push(node.Message{ReqID: uint64(i)}), i < 3; got != want {
			t.Fatalf("push #%d = %v, want %v", i, got, want)
		}
	}
	got := q.take(nil, 2, 1<<20)
	if len(got) != 2 || got[0].ReqID != 0 || got[1].ReqID != 1 {
		t.Fatalf("take(2) = %+v, want ReqIDs 0, 1", got)
	}
	if !q.push(node.Message{ReqID: 9}) {
		t.Fatal("push after take refused")
	}
	got = q.take(nil, 10, 1<<20)
	if len(got) != 2 || got[0].ReqID != 2 || got[1].ReqID != 9 {
		t.Fatalf("take(10) = %+v, want ReqIDs 2, 9", got)
	}
	if got := q.take(nil, 10, 1<<20); got != nil {
		t.Fatalf("take on an empty queue = %+v", got)
	}
}

func TestQueueTakeSplitsByBytes(t *testing.T) {
	q := newQueue(10)
	big := make([]byte, 1000)
	for i := range 4 {
		q.push(node.Message{ReqID: uint64(i), Value: big})
	}
	one := approxSize(&node.Message{Value: big})
	if got := q.take(nil, 10, 2*one); len(got) != 2 {
		t.Fatalf("took %d messages within 2 messages' bytes, want 2", len(got))
	}
	// A message larger than the budget still goes, alone.
	if got := q.take(nil, 10, 1); len(got) != 1 || got[0].ReqID != 2 {
		t.Fatalf("take with a tiny budget = %d messages, want message 2 alone", len(got))
	}
}

func TestQueueMemoryFollowsLength(t *testing.T) {
	// Under steady load the queue never empties; its array must still stay
	// near the high-water mark rather than grow with the total pushed.
	q := newQueue(1 << 20)
	var next uint64 // ReqID the next taken message must have
	for i := range 100000 {
		q.push(node.Message{ReqID: uint64(i)})
		if i%10 == 9 {
			for _, m := range q.take(nil, 8, 1<<30) { // leaves 2 more queued each round
				if m.ReqID != next {
					t.Fatalf("took ReqID %d, want %d: not FIFO", m.ReqID, next)
				}
				next++
			}
		}
	}
	if n := len(q.items) - q.head; n != 20000 {
		t.Fatalf("queued %d, want 20000", n)
	}
	if c := cap(q.items); c > 2*20000+shrinkCap {
		t.Fatalf("capacity %d for 20000 queued messages: the array grows without bound", c)
	}
	if n := q.drain(); n != 20000 {
		t.Fatalf("drain = %d, want 20000", n)
	}
	if q.items != nil {
		t.Fatalf("an emptied large queue keeps its array (cap %d)", cap(q.items))
	}
}
