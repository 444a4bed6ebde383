package node

import (
	"slices"
	"time"

	"github.com/dynago/dynago/merkle"
	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// Merkle anti-entropy (Dynamo §4.7). Each node keeps one hash tree per
// partition it replicates, over (key, hash of the stored encoding), updated
// on every local write. Every AEInterval it compares one partition's tree
// with one other replica (partitions and peers in rotation), descending
// only into differing subtrees; then both sides exchange the objects of
// the keys in differing leaf buckets, in both directions, at most
// AEMaxKeys per exchange. Repairs are merges, so they are safe to repeat
// and to race with client writes.

// aeState is the anti-entropy bookkeeping of a node.
type aeState struct {
	trees   map[int]*merkle.Tree
	cursor  int
	turn    map[int]int // per partition: which peer is next
	cur     *aeRun      // the one exchange or handoff this node runs
	nextAt  time.Time
	pushing map[uint64]*aeRun // handoff pushes awaiting acknowledgement
}

// aeRun is the exchange this node initiated and is running.
type aeRun struct {
	id       uint64
	p        int
	peer     ring.NodeID
	ex       *merkle.Exchange
	deadline time.Time
	push     *pushJob // set for a handoff: push the differences, acknowledged
}

func newExchange(t *merkle.Tree) *merkle.Exchange { return merkle.NewExchange(t) }

// AEStats counts anti-entropy work since the core started.
type AEStats struct {
	Exchanges     uint64 // exchanges completed (trees compared to the end)
	InSync        uint64 // exchanges that found the trees equal
	KeysRepaired  uint64 // objects sent to a replica that lacked or differed on them
	TreeBuilds    uint64 // trees built from a scan of storage
	TreeBuildKeys uint64 // keys scanned by those builds
}

func newAEState() aeState {
	return aeState{trees: map[int]*merkle.Tree{}, turn: map[int]int{}, pushing: map[uint64]*aeRun{}}
}

// AEStats returns the anti-entropy counters.
func (n *Node) AEStats() AEStats { return n.aeStats }

// TreeRoot returns the root hash of this node's tree for partition p,
// building it if needed; for convergence checks. It returns 0 when the
// build's scan failed, which stops the core (Ready.Err).
func (n *Node) TreeRoot(p int) uint64 {
	t := n.tree(p)
	if t == nil {
		return 0
	}
	return t.Root()
}

// tree returns the tree of partition p, building it from storage the first
// time: a restarted node rebuilds its trees lazily, one partition at a time.
// It returns nil, caching nothing, when the scan fails: a tree missing keys
// would be kept for the life of the process, and every exchange would then
// "repair" keys this node in fact holds, or miss ones it lacks.
func (n *Node) tree(p int) *merkle.Tree {
	if t, ok := n.ae.trees[p]; ok {
		return t
	}
	t, err := merkle.New(merkle.Config{Leaves: n.cfg.TreeLeaves})
	if err != nil {
		panic("node: invalid merkle config survived validation: " + err.Error())
	}
	lo, hi := storage.ObjectRange(p)
	var scanned uint64
	ok := n.scan(lo, hi, func(k, v []byte) error {
		if _, uk, ok := storage.ParseObjectKey(k); ok {
			if _, pend := n.pending[string(k)]; !pend {
				t.Update(uk, 0, object.Hash(v))
			}
			scanned++
		}
		return nil
	})
	if !ok {
		return nil
	}
	// Writes of this batch are not in storage yet.
	for sk, v := range n.pending {
		if pp, uk, ok := storage.ParseObjectKey([]byte(sk)); ok && pp == p && v != nil {
			t.Update(uk, 0, object.Hash(v))
		}
	}
	n.ae.trees[p] = t
	n.aeStats.TreeBuilds++
	n.aeStats.TreeBuildKeys += scanned
	n.emit(Event{Kind: TreeBuilt, Partition: p, N: int(scanned)})
	return t
}

// treeUpdate keeps a built tree current with a local write.
func (n *Node) treeUpdate(p int, key, old, new []byte) {
	t, ok := n.ae.trees[p]
	if !ok {
		return // built from storage when first needed
	}
	var oh, nh uint64
	if old != nil {
		oh = object.Hash(old)
	}
	if new != nil {
		nh = object.Hash(new)
	}
	t.Update(key, oh, nh)
}

// tickAE starts the next exchange when it is time and none is running.
func (n *Node) tickAE() {
	if cur := n.ae.cur; cur != nil && !n.now.Before(cur.deadline) {
		n.abandonRun() // the peer did not answer; try again later
	}
	if n.cfg.AEInterval < 0 || n.ae.cur != nil || n.now.Before(n.ae.nextAt) {
		return
	}
	n.ae.nextAt = n.now.Add(n.cfg.AEInterval)
	parts := n.ring.PartitionsOf(n.cfg.ID)
	if len(parts) == 0 {
		return
	}
	p := parts[n.ae.cursor%len(parts)]
	n.ae.cursor++
	var peers []ring.NodeID
	for _, id := range n.ring.PreferenceList(p) {
		if id != n.cfg.ID && n.reachable(id) {
			peers = append(peers, id)
		}
	}
	if len(peers) == 0 {
		return
	}
	peer := peers[n.ae.turn[p]%len(peers)]
	n.ae.turn[p]++
	t := n.tree(p)
	if t == nil {
		return
	}
	run := &aeRun{id: n.newOpID(), p: p, peer: peer, ex: merkle.NewExchange(t), deadline: n.now.Add(n.cfg.AETimeout)}
	n.ae.cur = run
	n.askTree(run)
}

func (n *Node) askTree(run *aeRun) {
	m := Message{Type: MsgAETreeReq, To: run.peer, ReqID: run.id, Partition: run.p}
	for _, ref := range run.ex.Want() {
		m.Levels = append(m.Levels, uint32(ref.Level))
		m.Indexes = append(m.Indexes, uint32(ref.Index))
	}
	n.send(m)
}

// abandonRun forgets the running exchange or handoff.
func (n *Node) abandonRun() {
	for id, run := range n.ae.pushing {
		if run == n.ae.cur {
			delete(n.ae.pushing, id)
		}
	}
	n.ae.cur = nil
}

// replicates reports whether this node is in partition p's preference list,
// in the current ring or in the ring being moved to.
func (n *Node) replicates(p int) bool {
	if p < 0 || p >= n.ring.Partitions() {
		return false
	}
	return n.inList(n.ring.PreferenceList(p)) || (n.next != nil && n.inList(n.next.PreferenceList(p)))
}

func (n *Node) onAETreeReq(m Message) {
	resp := Message{Type: MsgAETreeResp, To: m.From, ReqID: m.ReqID, Partition: m.Partition, Levels: m.Levels, Indexes: m.Indexes}
	if !n.replicates(m.Partition) || len(m.Levels) != len(m.Indexes) {
		resp.Err = "not a replica of this partition"
		n.send(resp)
		return
	}
	t := n.tree(m.Partition)
	if t == nil {
		return // the core stopped: answer nothing
	}
	resp.Hashes = make([][]uint64, len(m.Levels))
	for i := range m.Levels {
		resp.Hashes[i] = t.Level(int(m.Levels[i]), int(m.Indexes[i]))
	}
	n.send(resp)
}

func (n *Node) onAETreeResp(m Message) {
	run := n.ae.cur
	if run == nil || run.id != m.ReqID || m.From != run.peer {
		return
	}
	if m.Err != "" || len(m.Hashes) != len(m.Levels) || len(m.Levels) != len(m.Indexes) {
		n.abandonRun()
		return
	}
	for i := range m.Levels {
		if err := run.ex.Receive(merkle.NodeRef{Level: int(m.Levels[i]), Index: int(m.Indexes[i])}, m.Hashes[i]); err != nil {
			n.abandonRun() // a tree of another shape: nothing sensible to compare
			return
		}
	}
	if !run.ex.Done() {
		n.askTree(run)
		return
	}
	n.aeStats.Exchanges++
	buckets := run.ex.Buckets()
	inSync := len(buckets) == 0
	if inSync {
		// Counted for handoffs' exchanges too, as the Exchange event says.
		n.aeStats.InSync++
	}
	n.obs.noteExchange(run.p, ExchangeRecord{Peer: run.peer, At: n.now, InSync: inSync})
	n.emit(Event{Kind: Exchange, Peer: run.peer, Partition: run.p, InSync: inSync})
	if run.push != nil {
		n.startPush(run, buckets)
		return
	}
	n.ae.cur = nil
	if inSync {
		return
	}
	keys, versions, _, ok := n.partitionKeys(run.p, buckets)
	if !ok {
		return
	}
	out := Message{Type: MsgAEKeys, To: run.peer, Partition: run.p, Keys: keys, Versions: versions}
	for _, b := range buckets {
		out.Buckets = append(out.Buckets, uint32(b))
	}
	n.send(out)
}

// bucketKeys scans partition p for the keys in the given leaf buckets and
// returns them with their version hashes and encodings. ok is false when a
// read failed (the core has stopped): the lists would be incomplete, and a
// handoff that pushed them would be reported done with keys missing.
func (n *Node) bucketKeys(p int, buckets []int) (keys [][]byte, versions []uint64, encs [][]byte, ok bool) {
	if len(buckets) == 0 {
		return nil, nil, nil, true
	}
	return n.partitionKeys(p, buckets)
}

// partitionKeys is bucketKeys for every key when buckets is nil.
func (n *Node) partitionKeys(p int, buckets []int) (keys [][]byte, versions []uint64, encs [][]byte, ok bool) {
	t := n.tree(p)
	if t == nil {
		return nil, nil, nil, false
	}
	var want map[int]bool
	if buckets != nil {
		want = make(map[int]bool, len(buckets))
		for _, b := range buckets {
			want[b] = true
		}
	}
	lo, hi := storage.ObjectRange(p)
	ok = n.scan(lo, hi, func(k, v []byte) error {
		_, uk, ok := storage.ParseObjectKey(k)
		if !ok || (want != nil && !want[t.Bucket(uk)]) {
			return nil
		}
		if pv, pend := n.pending[string(k)]; pend {
			if pv == nil {
				return nil
			}
			v = pv
		}
		keys = append(keys, slices.Clone(uk))
		versions = append(versions, object.Hash(v))
		encs = append(encs, slices.Clone(v))
		return nil
	})
	if !ok {
		return nil, nil, nil, false
	}
	return keys, versions, encs, true
}

func (n *Node) onAEKeys(m Message) {
	if !n.replicates(m.Partition) || len(m.Keys) != len(m.Versions) {
		return
	}
	buckets := make([]int, len(m.Buckets))
	for i, b := range m.Buckets {
		buckets[i] = int(b)
	}
	keys, versions, encs, ok := n.bucketKeys(m.Partition, buckets)
	if !ok {
		return
	}
	theirs := make(map[string]uint64, len(m.Keys))
	for i, k := range m.Keys {
		theirs[string(k)] = m.Versions[i]
	}
	budget := n.cfg.AEMaxKeys
	for i, k := range keys {
		v, ok := theirs[string(k)]
		if ok && v == versions[i] {
			delete(theirs, string(k)) // in sync
			continue
		}
		if budget > 0 {
			n.send(Message{Type: MsgReplicaPut, To: m.From, Key: k, Object: encs[i], Repair: true})
			n.repaired(RepairAE, m.Partition, m.From, k)
			budget--
		}
	}
	// What remains in theirs, the sender has and this node lacks or holds
	// differently: ask for it.
	want := Message{Type: MsgAEWant, To: m.From, Partition: m.Partition}
	for _, k := range m.Keys {
		if _, ok := theirs[string(k)]; ok && len(want.Keys) < n.cfg.AEMaxKeys {
			want.Keys = append(want.Keys, k)
		}
	}
	if len(want.Keys) > 0 {
		n.send(want)
	}
}

func (n *Node) onAEWant(m Message) {
	if !n.replicates(m.Partition) {
		return
	}
	for i, k := range m.Keys {
		if i >= n.cfg.AEMaxKeys {
			break
		}
		if n.ring.PartitionOf(k) != m.Partition {
			continue
		}
		raw, have, err := n.readObject(m.Partition, k)
		if err != nil {
			return // the core stopped (readRaw latched the error)
		}
		if !have {
			continue
		}
		n.send(Message{Type: MsgReplicaPut, To: m.From, Key: k, Object: raw, Repair: true})
		n.repaired(RepairAE, m.Partition, m.From, k)
	}
}
