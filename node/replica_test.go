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
