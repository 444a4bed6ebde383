package node

import (
	"fmt"
	"slices"
	"testing"
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
