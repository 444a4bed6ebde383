package dynagodb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/magiconair/properties"

	"github.com/dynago/dynago/client"
	"github.com/dynago/dynago/httpapi/httpapitest"
)

// fakeDB returns a DB over two HTTP nodes in front of one in-memory
// backend, and a plain client of the same nodes.
func fakeDB(t *testing.T, extra ...string) (*DB, *client.Client) {
	t.Helper()
	addrs := httpapitest.Serve(t, httpapitest.New(), 2)
	p := properties.NewProperties()
	p.MustSet(PropAddrs, strings.Join(addrs, ","))
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		p.MustSet(k, v)
	}
	db, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c, err := client.New(addrs)
	if err != nil {
		t.Fatal(err)
	}
	return db, c
}

func fields(kv ...string) map[string][]byte {
	m := map[string][]byte{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = []byte(kv[i+1])
	}
	return m
}

func equal(a, b map[string][]byte) bool {
	return maps.EqualFunc(a, b, func(x, y []byte) bool { return bytes.Equal(x, y) })
}

func TestRecordEncodingIsDeterministicAndRoundTrips(t *testing.T) {
	r := record{"field1": {value: []byte("b"), stamp: 7}, "field0": {value: []byte{}, stamp: 1 << 60}, "": {value: []byte("x")}}
	enc := r.encode()
	for range 20 { // map iteration order must not matter
		if got := r.encode(); !bytes.Equal(got, enc) {
			t.Fatalf("encoding changed: %x then %x", enc, got)
		}
	}
	got, err := decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(r) {
		t.Fatalf("decoded %d fields, want %d", len(got), len(r))
	}
	for name, f := range r {
		if g := got[name]; !bytes.Equal(g.value, f.value) || g.stamp != f.stamp {
			t.Fatalf("field %q: got %+v, want %+v", name, g, f)
		}
	}
	// Version, count, then "" (len 0), its stamp, value "x".
	if want := []byte{1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'x'}; !bytes.HasPrefix(enc, want) {
		t.Fatalf("encoding starts %x, want %x", enc[:len(want)], want)
	}
}

func TestDecodeRefusesWhatEncodeCannotWrite(t *testing.T) {
	good := record{"a": {value: []byte("1")}, "b": {value: []byte("2")}}.encode()
	bad := map[string][]byte{
		"empty":          nil,
		"raw value":      []byte("hello"),
		"truncated":      good[:len(good)-1],
		"trailing":       append(slices.Clone(good), 0),
		"huge count":     {1, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"unsorted names": append([]byte{1, 2}, append(field1("b"), field1("a")...)...),
		"duplicate name": append([]byte{1, 2}, append(field1("a"), field1("a")...)...),
	}
	for name, b := range bad {
		if _, err := decode(b); !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: decode = %v, want ErrBadRecord", name, err)
		}
	}
}

// field1 encodes one field named name, stamp 0, empty value.
func field1(name string) []byte {
	b := append([]byte{byte(len(name))}, name...)
	return append(b, 0, 0, 0, 0, 0, 0, 0, 0, 0)
}

func TestMergeIsTheUnionNewestStampWinsInAnyOrder(t *testing.T) {
	s1 := record{"a": {value: []byte("a1"), stamp: 10}, "b": {value: []byte("b1"), stamp: 10}}.encode()
	s2 := record{"b": {value: []byte("b2"), stamp: 20}, "c": {value: []byte("c2"), stamp: 5}}.encode()
	s3 := record{"c": {value: []byte("c3"), stamp: 5}, "a": {value: []byte("a3"), stamp: 9}}.encode()
	want := map[string]string{"a": "a1", "b": "b2", "c": "c3"} // c: equal stamps, larger value
	for _, order := range [][][]byte{{s1, s2, s3}, {s3, s2, s1}, {s2, s1, s3}, {s2, s3, s1}} {
		r, err := merge(order)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for name, f := range r {
			got[name] = string(f.value)
		}
		if !maps.Equal(got, want) {
			t.Fatalf("merge = %v, want %v", got, want)
		}
	}
}

func TestInsertReadFieldsUpdateDelete(t *testing.T) {
	db, _ := fakeDB(t)
	ctx := context.Background()
	if err := db.Insert(ctx, "usertable", "user1", fields("field0", "v0", "field1", "v1", "field2", "v2")); err != nil {
		t.Fatal(err)
	}
	got, err := db.Read(ctx, "usertable", "user1", nil)
	if err != nil || !equal(got, fields("field0", "v0", "field1", "v1", "field2", "v2")) {
		t.Fatalf("read all = %q, %v", got, err)
	}
	got, err = db.Read(ctx, "usertable", "user1", []string{"field2", "field0", "nosuch"})
	if err != nil || !equal(got, fields("field0", "v0", "field2", "v2")) {
		t.Fatalf("read subset = %q, %v", got, err)
	}
	if _, err := db.Read(ctx, "other", "user1", nil); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("read of another table = %v, want ErrNotFound", err)
	}
	if err := db.Update(ctx, "usertable", "user1", fields("field1", "new", "field9", "added")); err != nil {
		t.Fatal(err)
	}
	got, err = db.Read(ctx, "usertable", "user1", nil)
	if want := fields("field0", "v0", "field1", "new", "field2", "v2", "field9", "added"); err != nil || !equal(got, want) {
		t.Fatalf("after update = %q, %v; want %q", got, err, want)
	}
	if err := db.Delete(ctx, "usertable", "user1"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Read(ctx, "usertable", "user1", nil); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("read after delete = %v, want ErrNotFound", err)
	}
	if err := db.Delete(ctx, "usertable", "user1"); err != nil {
		t.Fatalf("delete of a deleted key = %v, want nil", err)
	}
	// Update of a missing (deleted) key creates it, superseding the tombstone.
	if err := db.Update(ctx, "usertable", "user1", fields("field3", "back")); err != nil {
		t.Fatal(err)
	}
	got, err = db.Read(ctx, "usertable", "user1", nil)
	if err != nil || !equal(got, fields("field3", "back")) {
		t.Fatalf("after update of a deleted key = %q, %v", got, err)
	}
}

func TestUpdateResolvesSiblings(t *testing.T) {
	db, c := fakeDB(t)
	ctx := context.Background()
	// Two blind inserts of the same key are concurrent: two siblings.
	if err := db.Insert(ctx, "t", "k", fields("a", "1", "b", "1")); err != nil {
		t.Fatal(err)
	}
	if err := db.Insert(ctx, "t", "k", fields("b", "2", "c", "2")); err != nil {
		t.Fatal(err)
	}
	v, err := c.Get(ctx, "t:k", nil)
	if err != nil || len(v.Siblings) != 2 {
		t.Fatalf("get = %d siblings, %v; want 2", len(v.Siblings), err)
	}
	// A read merges them: the union, the newer insert's b.
	got, err := db.Read(ctx, "t", "k", nil)
	if want := fields("a", "1", "b", "2", "c", "2"); err != nil || !equal(got, want) {
		t.Fatalf("read = %q, %v; want %q", got, err, want)
	}
	// An update writes the merge with the context read: one sibling left.
	if err := db.Update(ctx, "t", "k", fields("a", "3")); err != nil {
		t.Fatal(err)
	}
	v, err = c.Get(ctx, "t:k", nil)
	if err != nil || len(v.Siblings) != 1 {
		t.Fatalf("get after update = %d siblings, %v; want 1", len(v.Siblings), err)
	}
	got, err = db.Read(ctx, "t", "k", nil)
	if want := fields("a", "3", "b", "2", "c", "2"); err != nil || !equal(got, want) {
		t.Fatalf("read after update = %q, %v; want %q", got, err, want)
	}
}

func TestReadOfForeignValueFails(t *testing.T) {
	db, c := fakeDB(t)
	ctx := context.Background()
	if _, err := c.Put(ctx, "t:k", []byte("not a record"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Read(ctx, "t", "k", nil); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("read = %v, want ErrBadRecord", err)
	}
}

func TestScanIsUnsupported(t *testing.T) {
	db, _ := fakeDB(t)
	if _, err := db.Scan(context.Background(), "t", "k", 10, nil); !errors.Is(err, ErrScanUnsupported) {
		t.Fatalf("scan = %v, want ErrScanUnsupported", err)
	}
}

func TestRoutingAndQuorumProperties(t *testing.T) {
	db, _ := fakeDB(t, PropRoute+"="+RouteClient, PropR+"=1", PropW+"=3")
	ctx := context.Background()
	if err := db.Insert(ctx, "t", "k", fields("a", "1")); err != nil {
		t.Fatal(err)
	}
	if got, err := db.Read(ctx, "t", "k", nil); err != nil || !equal(got, fields("a", "1")) {
		t.Fatalf("read = %q, %v", got, err)
	}
	if db.r != 1 || db.w != 3 {
		t.Fatalf("r, w = %d, %d; want 1, 3", db.r, db.w)
	}
}

func TestBadProperties(t *testing.T) {
	for _, kv := range [][2]string{{PropRoute, "nearest"}, {PropAddrs, " , "}, {PropR, "-1"}, {PropAddrs, "ftp://x"}} {
		p := properties.NewProperties()
		p.MustSet(kv[0], kv[1])
		if _, err := New(p); !errors.Is(err, ErrConfig) {
			t.Errorf("%s=%q: New = %v, want ErrConfig", kv[0], kv[1], err)
		}
	}
}

// Concurrent read-modify-writes of one record, each writer its own field:
// racing updates leave siblings, and merging them by field stamps loses
// no writer's last value.
func TestConcurrentUpdatesLoseNoField(t *testing.T) {
	db, _ := fakeDB(t)
	ctx := context.Background()
	const writers, updates = 8, 20
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			name := fmt.Sprintf("field%d", w)
			for i := range updates {
				if err := db.Update(ctx, "t", "k", fields(name, strconv.Itoa(i))); err != nil {
					errs <- err
					return
				}
				if _, err := db.Read(ctx, "t", "k", []string{name}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.Read(ctx, "t", "k", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{}
	for w := range writers {
		want[fmt.Sprintf("field%d", w)] = []byte(strconv.Itoa(updates - 1))
	}
	if !equal(got, want) {
		t.Fatalf("read = %q, want %q", got, want)
	}
}
