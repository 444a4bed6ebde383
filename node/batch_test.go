package node

import (
	"fmt"
	"slices"
	"testing"

	"github.com/dynago/dynago/storage"
)

// Ready.Batch keeps the Writes' order and reads a nil Value as a delete,
// an empty non-nil one as a set of an empty value.
func TestReadyBatchKeepsOrderAndDeletes(t *testing.T) {
	rd := Ready{Writes: []Write{
		{Key: []byte("a"), Value: []byte("1")},
		{Key: []byte("b"), Value: nil},
		{Key: []byte("c"), Value: []byte{}},
		{Key: []byte("a"), Value: nil},
	}}
	var got []string
	err := rd.Batch().Each(func(key, value []byte, deleted bool) error {
		if deleted {
			got = append(got, "del "+string(key))
		} else {
			got = append(got, fmt.Sprintf("set %s=%q", key, value))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`set a="1"`, "del b", `set c=""`, "del a"}
	if !slices.Equal(got, want) {
		t.Fatalf("Batch() ops = %q, want %q", got, want)
	}
	if n := (Ready{}).Batch().Len(); n != 0 {
		t.Fatalf("an empty Ready's batch has %d ops", n)
	}
}

// BatchInto drops what the reused batch held before and then records
// exactly what Batch does.
func TestReadyBatchIntoResets(t *testing.T) {
	var b storage.Batch
	b.Set([]byte("stale"), []byte("x"))
	rd := Ready{Writes: []Write{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b")}}}
	rd.BatchInto(&b)
	var got []string
	_ = b.Each(func(key, value []byte, deleted bool) error {
		got = append(got, fmt.Sprintf("%s %q %t", key, value, deleted))
		return nil
	})
	want := []string{`a "1" false`, `b "" true`}
	if !slices.Equal(got, want) {
		t.Fatalf("BatchInto ops = %q, want %q", got, want)
	}
	(Ready{}).BatchInto(&b)
	if b.Len() != 0 {
		t.Fatalf("an empty Ready left %d ops in the batch", b.Len())
	}
}

// Recycle: the next Ready appends into the arrays handed back, cleared of
// what they held; an array past maxRecycled is not kept.
func TestRecycleReusesReadySlices(t *testing.T) {
	n := &Node{cfg: Config{ID: "a"}}
	for i := range 3 {
		n.send(Message{Type: MsgReplicaGet, To: "b", Key: fmt.Appendf(nil, "k%d", i)})
		n.reply(Reply{ID: uint64(i)})
	}
	rd := n.Ready()
	reqs, reps := rd.Requests, rd.Replies
	n.Recycle(rd)
	if reqs[0].Key != nil || reps[0].ID != 0 {
		t.Fatalf("recycled slices still hold %q, %d", reqs[0].Key, reps[0].ID)
	}
	n.send(Message{Type: MsgReplicaGet, To: "b", Key: []byte("x")})
	n.reply(Reply{ID: 9})
	rd = n.Ready()
	if &rd.Requests[0] != &reqs[0] || &rd.Replies[0] != &reps[0] {
		t.Fatal("the next Ready did not reuse the recycled arrays")
	}
	if string(rd.Requests[0].Key) != "x" || rd.Replies[0].ID != 9 || len(rd.Requests) != 1 {
		t.Fatalf("next Ready: %+v %+v", rd.Requests, rd.Replies)
	}
	n.Recycle(Ready{Requests: make([]Message, 0, maxRecycled+1)})
	if got := cap(n.Ready().Requests); got > maxRecycled {
		t.Fatalf("kept a recycled array of %d messages", got)
	}
}
