package node

import (
	"slices"
	"time"

	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// Tombstone reaping. A tombstone must outlive every older version of its
// key anywhere in the cluster, or that version comes back (a resurrected
// delete). The first replica of a partition periodically collects the
// tombstones older than TombstoneGrace and asks every member of the ring
// whether it agrees they can go: a replica agrees when it holds the very
// same tombstone, and anyone disagrees while it holds a hint for the key or
// a copy outside its partitions. Only keys every member agreed on are
// reaped, by a conditional delete on each replica (the version must still
// be the one agreed on). Nothing is reaped while a membership change runs
// or any member is down: a node we cannot ask may hold the older version.

// reapState is the reaper's bookkeeping.
type reapState struct {
	cursor int
	nextAt time.Time
	cur    *reapRun
}

type reapRun struct {
	id       uint64
	p        int
	keys     [][]byte
	versions []uint64
	waiting  map[ring.NodeID]bool
	agreed   map[string]int // key -> members that agreed
	deadline time.Time
}

// maxReapKeys bounds one reap round's candidates.
const maxReapKeys = 256

func (n *Node) tickReap() {
	if cur := n.rp.cur; cur != nil && !n.now.Before(cur.deadline) {
		n.rp.cur = nil
	}
	if n.cfg.TombstoneGrace < 0 || n.rp.cur != nil || n.now.Before(n.rp.nextAt) || n.next != nil {
		return
	}
	n.rp.nextAt = n.now.Add(n.cfg.ReapInterval)
	// Partitions this node leads: it is the first of their preference list.
	var lead []int
	for p := range n.ring.Partitions() {
		if pl := n.ring.PreferenceList(p); len(pl) > 0 && pl[0] == n.cfg.ID {
			lead = append(lead, p)
		}
	}
	if len(lead) == 0 {
		return
	}
	members := n.ring.Members()
	for _, id := range members {
		if !n.reachable(id) {
			return
		}
	}
	p := lead[n.rp.cursor%len(lead)]
	n.rp.cursor++
	cutoff := n.now.Add(-n.cfg.TombstoneGrace).UnixMilli()
	run := &reapRun{id: n.newOpID(), p: p, waiting: map[ring.NodeID]bool{}, agreed: map[string]int{}, deadline: n.now.Add(n.cfg.AETimeout)}
	lo, hi := storage.ObjectRange(p)
	if !n.scan(lo, hi, func(k, v []byte) error {
		if len(run.keys) >= maxReapKeys {
			return errStopScan
		}
		if _, pend := n.pending[string(k)]; pend {
			return nil
		}
		_, uk, ok := storage.ParseObjectKey(k)
		if !ok {
			return nil
		}
		o, err := object.Decode(v)
		if err != nil || !o.IsTombstone() || newest(o) > cutoff {
			return nil
		}
		run.keys = append(run.keys, slices.Clone(uk))
		run.versions = append(run.versions, object.Hash(v))
		return nil
	}) {
		return // the core stopped
	}
	if len(run.keys) == 0 {
		return
	}
	n.rp.cur = run
	for _, id := range members {
		run.waiting[id] = true
		if id == n.cfg.ID {
			continue
		}
		n.send(Message{Type: MsgReapQuery, To: id, ReqID: run.id, Partition: p, Keys: run.keys, Versions: run.versions})
	}
	n.onReapVotes(run, n.cfg.ID, n.reapVotes(p, run.keys, run.versions))
}

// newest returns the latest sibling timestamp of an object.
func newest(o object.Object) int64 {
	var t int64
	for _, s := range o.Siblings() {
		t = max(t, s.Timestamp)
	}
	return t
}

// reapVotes returns the keys this node agrees may be reaped.
func (n *Node) reapVotes(p int, keys [][]byte, versions []uint64) [][]byte {
	var ok [][]byte
	replica := n.replicates(p) && n.inList(n.ring.PreferenceList(p))
	for i, k := range keys {
		if n.ring.PartitionOf(k) != p || i >= len(versions) {
			continue
		}
		raw, have, err := n.readObject(p, k)
		if err != nil {
			continue
		}
		if replica && (!have || object.Hash(raw) != versions[i]) {
			continue // it does not hold that very tombstone
		}
		if !replica && have {
			continue // a stray copy that could come back
		}
		if n.holdsHint(p, k) {
			continue
		}
		ok = append(ok, k)
	}
	return ok
}

// holdsHint reports whether this node holds a hint for key, for anyone. A
// read that fails (and stops the core) counts as holding one: a node that
// cannot look must not agree to a reap.
func (n *Node) holdsHint(p int, key []byte) bool {
	if !n.loadHints() {
		return true
	}
	for target, c := range n.hints.held {
		if c <= 0 {
			continue
		}
		if _, have, err := n.readRaw(storage.HintKey(string(target), p, key)); have || err != nil {
			return true
		}
	}
	return false
}

func (n *Node) onReapQuery(m Message) {
	n.send(Message{Type: MsgReapResp, To: m.From, ReqID: m.ReqID, Partition: m.Partition, Keys: n.reapVotes(m.Partition, m.Keys, m.Versions)})
}

func (n *Node) onReapResp(m Message) {
	if run := n.rp.cur; run != nil && run.id == m.ReqID {
		n.onReapVotes(run, m.From, m.Keys)
	}
}

func (n *Node) onReapVotes(run *reapRun, from ring.NodeID, keys [][]byte) {
	if !run.waiting[from] {
		return
	}
	delete(run.waiting, from)
	for _, k := range keys {
		run.agreed[string(k)]++
	}
	if len(run.waiting) > 0 {
		return
	}
	n.rp.cur = nil
	members := len(n.ring.Members())
	out := Message{Type: MsgReap, Partition: run.p}
	for i, k := range run.keys {
		if run.agreed[string(k)] == members {
			out.Keys = append(out.Keys, k)
			out.Versions = append(out.Versions, run.versions[i])
		}
	}
	if len(out.Keys) == 0 {
		return
	}
	for _, id := range n.ring.PreferenceList(run.p) {
		if id == n.cfg.ID {
			n.reapLocal(run.p, out.Keys, out.Versions)
			continue
		}
		m := out
		m.To = id
		n.send(m)
	}
}

func (n *Node) onReap(m Message) {
	if n.inList(n.ring.PreferenceList(m.Partition)) {
		n.reapLocal(m.Partition, m.Keys, m.Versions)
	}
}

// reapLocal deletes the agreed tombstones that are still the stored version.
func (n *Node) reapLocal(p int, keys [][]byte, versions []uint64) {
	for i, k := range keys {
		if i >= len(versions) || n.ring.PartitionOf(k) != p {
			continue
		}
		raw, have, err := n.readObject(p, k)
		if err != nil || !have || object.Hash(raw) != versions[i] {
			continue
		}
		n.writeLocal(p, k, raw, nil)
		n.reaped++
	}
}
