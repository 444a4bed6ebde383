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
