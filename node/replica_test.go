package node

import (
	"bytes"
	"testing"

	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/storage"
)

// replicaGet asks b's node for its copy of key, as a coordinator would, and
// returns the answer.
func replicaGet(t *testing.T, b *brokenDisk, key string) Message {
	t.Helper()
	b.id++
	b.n.Step(b.now, Message{Type: MsgReplicaGet, From: "a", To: "a", ReqID: b.id, Key: []byte(key)})
	for _, rd := range b.drain() {
		for _, m := range rd.Messages {
			if m.Type == MsgReplicaGetResp && m.ReqID == b.id {
				return m
			}
		}
	}
	t.Fatalf("no answer to the replica get of %q", key)
	return Message{}
}

// A replica answers a get with its stored encoding as it is (valid
// encodings are canonical, so re-encoding would give the same bytes), and
// with an error, never the bytes, when the disk corrupted them.
func TestReplicaGetAnswersStoredBytes(t *testing.T) {
	disk := storage.NewFaulty(storage.NewMem())
	b := newBrokenDisk(t, disk)
	b.put("k", "v")
	skey := storage.ObjectKey(b.n.ring.PartitionOf([]byte("k")), []byte("k"))
	stored, err := disk.Get(skey)
	if err != nil {
		t.Fatal(err)
	}

	m := replicaGet(t, b, "k")
	if !m.Found || m.Err != "" || !bytes.Equal(m.Object, stored) {
		t.Fatalf("answer = found %t, err %q, %x; want the stored %x", m.Found, m.Err, m.Object, stored)
	}
	o, err := object.Decode(m.Object)
	if err != nil || !bytes.Equal(object.Encode(o), m.Object) {
		t.Fatalf("answer does not round-trip: %v", err)
	}
	if m := replicaGet(t, b, "absent"); m.Found || m.Err != "" {
		t.Fatalf("absent key: found %t, err %q", m.Found, m.Err)
	}

	corrupt := bytes.Clone(stored)
	corrupt[len(corrupt)/2] ^= 0x10
	var batch storage.Batch
	batch.Set(skey, corrupt)
	if err := disk.Apply(&batch, true); err != nil {
		t.Fatal(err)
	}
	if m := replicaGet(t, b, "k"); m.Found || m.Err == "" || m.Object != nil {
		t.Fatalf("corrupt copy: found %t, err %q, %x; want an error", m.Found, m.Err, m.Object)
	}
}

// A replica stores exactly Encode(Merge(local, incoming)); when the merge
// is the incoming version itself it stores the received bytes, which are
// the same.
func TestMergeLocalStoresTheMerge(t *testing.T) {
	disk := storage.NewFaulty(storage.NewMem())
	b := newBrokenDisk(t, disk)
	b.put("k", "v")
	skey := storage.ObjectKey(b.n.ring.PartitionOf([]byte("k")), []byte("k"))
	read := func() object.Object {
		t.Helper()
		raw, err := disk.Get(skey)
		if err != nil {
			t.Fatal(err)
		}
		o, err := object.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	newer := func(o object.Object, actor, value string) object.Object {
		return object.Update(o, o.Clock.Join(), object.Sibling{Value: []byte(value), Timestamp: 7}, actor)
	}
	for _, tc := range []struct {
		name     string
		incoming func(local object.Object) object.Object
		same     bool // the merge is the incoming version
	}{
		{"newer", func(l object.Object) object.Object { return newer(l, "b", "w") }, true},
		{"concurrent", func(object.Object) object.Object { return newer(object.Object{}, "c", "x") }, false},
		{"older", func(object.Object) object.Object { return object.Object{} }, false},
	} {
		local := read()
		in := tc.incoming(local)
		want := object.Encode(object.Merge(local, in))
		b.id++
		b.n.Step(b.now, Message{Type: MsgReplicaPut, From: "a", To: "a", ReqID: b.id, Key: []byte("k"), Object: object.Encode(in)})
		for _, rd := range b.drain() {
			for _, m := range rd.Messages {
				if m.Type == MsgReplicaPutResp && m.Err != "" {
					t.Fatalf("%s: %s", tc.name, m.Err)
				}
			}
		}
		got, err := disk.Get(skey)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: stored %x, want %x", tc.name, got, want)
		}
		if same := bytes.Equal(got, object.Encode(in)); same != tc.same {
			t.Errorf("%s: stored the incoming bytes: %t, want %t", tc.name, same, tc.same)
		}
	}
}

func TestSameVersions(t *testing.T) {
	a := object.Update(object.Object{}, nil, object.Sibling{Value: []byte("1")}, "a")
	b := object.Update(a, a.Clock.Join(), object.Sibling{Value: []byte("2")}, "b")
	if !sameVersions(object.Merge(a, b), b) {
		t.Error("a merge taking b whole is not b")
	}
	if sameVersions(object.Merge(b, b), a) {
		t.Error("b is a")
	}
	// Equal dots but values held elsewhere: not provably the same bytes.
	c, err := object.Decode(object.Encode(b))
	if err != nil {
		t.Fatal(err)
	}
	if sameVersions(b, c) {
		t.Error("a copy's values taken for the very same ones")
	}
}
