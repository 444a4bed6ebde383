package node

import (
	"fmt"

	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/storage"
)

// The replica side: what a node does with the versions coordinators (and
// read repair) send it, and how it reads its own copy to answer them. A
// version sent with a hint naming another primary is held as a hint
// (hints.go); everything else is merged into the local copy, keeping every
// sibling no write has superseded.

// onReplicaPut merges a version sent by a coordinator (or by read repair)
// into the local copy and acknowledges once it is durable.
func (n *Node) onReplicaPut(m Message) {
	resp := Message{Type: MsgReplicaPutResp, To: m.From, ReqID: m.ReqID, LazySync: m.LazySync}
	var err error
	if m.Hint != "" && m.Hint != n.cfg.ID {
		err = n.storeHint(m.Hint, n.ring.PartitionOf(m.Key), m.Key, m.Object)
	} else {
		err = n.mergeLocal(m.Key, m.Object)
	}
	if err != nil {
		resp.Err = err.Error()
	}
	if !m.Repair {
		n.send(resp)
	}
}

// mergeLocal merges an encoded incoming object into the local copy of key.
func (n *Node) mergeLocal(key, encoded []byte) error {
	if err := object.Validate(encoded); err != nil {
		return fmt.Errorf("node: bad object from peer: %w", err)
	}
	p := n.ring.PartitionOf(key)
	old, have, err := n.readObject(p, key)
	if err != nil {
		return fmt.Errorf("node: reading local copy: %w", err)
	}
	if have && !n.cfg.LWW {
		// The usual write: the incoming version supersedes the local copy,
		// and the merge is the incoming version, bytes and all; neither is
		// decoded.
		covered, same, err := object.Supersedes(old, encoded)
		if err != nil {
			return fmt.Errorf("node: reading local copy: %w", err)
		}
		if covered {
			if !same {
				n.noteWrite(p)
				n.writeLocal(p, key, old, encoded)
			}
			return nil
		}
	}
	in, err := object.Decode(encoded)
	if err != nil {
		return fmt.Errorf("node: bad object from peer: %w", err)
	}
	var local object.Object
	if have {
		if local, err = object.Decode(old); err != nil {
			return fmt.Errorf("node: reading local copy: %w", err)
		}
	}
	merged, changed := merge(local, have, in)
	if n.cfg.LWW && changed {
		merged = object.LWW(merged)
		changed = !merged.Clock.Equal(local.Clock) || !have
	}
	if !changed {
		return nil
	}
	n.noteWrite(p)
	if !have && !n.cfg.LWW {
		n.writeLocal(p, key, nil, encoded) // the incoming encoding is already canonical
		return nil
	}
	if !sameVersions(merged, in) {
		encoded = object.Encode(merged)
	}
	n.writeLocal(p, key, old, encoded)
	return nil
}

// sameVersions reports whether merged is in itself: the same dots, each
// entry's values the very slice in holds (a merge takes an entry's values
// as a prefix of one side's). Then in's canonical encoding is merged's,
// and a replica taking a newer version whole (the usual write) stores the
// bytes it received instead of encoding them again.
func sameVersions(merged, in object.Object) bool {
	if !merged.Clock.Equal(in.Clock) {
		return false
	}
	for i, e := range merged.Clock.Entries {
		if len(e.Values) > 0 && &e.Values[0] != &in.Clock.Entries[i].Values[0] {
			return false
		}
	}
	return true
}

// merge combines a replica's local copy with an incoming version. It
// returns the merged object and whether it differs from local, i.e. whether
// the replica must persist it. When the replica holds nothing, the incoming
// object is taken as is.
func merge(local object.Object, haveLocal bool, incoming object.Object) (merged object.Object, changed bool) {
	if !haveLocal || local.Empty() {
		return incoming, !incoming.Empty()
	}
	merged = object.Merge(local, incoming)
	return merged, !merged.Clock.Equal(local.Clock)
}

// onReplicaGet answers a coordinator's get with the local copy, or, when
// asked as a fallback, with the hints held for the key.
func (n *Node) onReplicaGet(m Message) {
	resp := Message{Type: MsgReplicaGetResp, To: m.From, ReqID: m.ReqID}
	var (
		enc   []byte
		found bool
		err   error
	)
	if m.Hint != "" && m.Hint != n.cfg.ID {
		// Asked as a fallback: answer from every hint held for the key,
		// whichever primary it names (the coordinator that stored it may
		// have paired primaries and fallbacks differently).
		var obj object.Object
		if obj, found, err = n.readHints(m.Key); found && err == nil {
			enc = object.Encode(obj)
		}
	} else {
		enc, found, err = n.readLocalRaw(n.ring.PartitionOf(m.Key), m.Key)
	}
	switch {
	case err != nil:
		resp.Err = err.Error()
	case found:
		resp.Found = true
		resp.Object = enc
	}
	n.send(resp)
}

// readLocalEnc returns this node's copy of key and its encoding.
func (n *Node) readLocalEnc(p int, key []byte) (object.Object, []byte, bool, error) {
	raw, have, err := n.readObject(p, key)
	if err != nil || !have {
		return object.Object{}, nil, false, err
	}
	o, err := object.Decode(raw)
	if err != nil {
		return object.Object{}, nil, false, err
	}
	return o, raw, true, nil
}

// readLocalRaw returns the encoded local copy of key in partition p, as
// stored. It is validated first (object.Validate runs Decode's checks
// without building the object): the disk may have corrupted it, and a
// replica must answer with an error rather than pass on bytes its peers
// would reject. Valid encodings are canonical, so the bytes are exactly
// what decoding and re-encoding them would give.
func (n *Node) readLocalRaw(p int, key []byte) ([]byte, bool, error) {
	raw, have, err := n.readObject(p, key)
	if err != nil || !have {
		return nil, false, err
	}
	if err := object.Validate(raw); err != nil {
		return nil, false, err
	}
	return raw, true, nil
}

// readObject returns the stored encoding of key in partition p, unchecked.
// The storage key is built in a buffer the node reuses: reads do not keep
// it (Store.Get), and pending is only looked up with it.
func (n *Node) readObject(p int, key []byte) ([]byte, bool, error) {
	n.keyBuf = storage.AppendObjectKey(n.keyBuf[:0], p, key)
	return n.readRaw(n.keyBuf)
}
