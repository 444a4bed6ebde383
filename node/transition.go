package node

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/dynago/dynago/cluster"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// Membership changes. The operator stages leaves and commits a plan; the
// commit sets the cluster state's Next owner table and makes this node the
// claimant. While Next is set:
//
//   - requests are routed and counted by the current ring, and every write
//     is also sent to the nodes that enter the key's preference list (dual
//     writes), so that they keep up while data moves;
//   - for each partition a node enters, one donor (the node leaving that
//     preference list, or a replica that stays if it is down) compares its
//     Merkle tree with the newcomer's and pushes, acknowledged, every
//     object of the differing buckets: afterwards the newcomer holds
//     everything the donor held. The donor reports to the claimant;
//   - when every handoff is done the claimant switches the ring (Owners =
//     Next) and gossips it.
//
// After the switch, a node still holding data of partitions it no longer
// replicates hands it to a new replica the same way and only then deletes
// it — and only the keys that did not change since they were compared, so
// that a write arriving from a node still on the old ring is not lost.
// A crash at any step loses nothing: the state is persisted, every step is
// re-run until it is recorded, and data is deleted only after a replica of
// the new ring acknowledged it durably.

// Errors of membership commands.
var (
	ErrTransition = errors.New("node: a membership change is already in progress")
	ErrNoChange   = errors.New("node: nothing to change")
	ErrNotMember  = errors.New("node: not a member of the ring")
	ErrNoRing     = errors.New("node: this node has no ring yet")
	// ErrNoTransition reports an abort with no membership change running.
	ErrNoTransition = errors.New("node: no membership change in progress")
)

// handoffState tracks the transfers this node runs as a donor.
type handoffState struct {
	reported map[cluster.Handoff]time.Time // done, told the claimant at
	orphans  map[int]bool                  // partitions holding data this node does not replicate
	dropped  uint64
}

func newHandoffState() handoffState {
	return handoffState{reported: map[cluster.Handoff]time.Time{}, orphans: map[int]bool{}}
}

// install makes st the core's state, rebuilding the derived rings.
func (n *Node) install(st cluster.State) error {
	cur, err := st.Ring()
	if err != nil {
		return err
	}
	next, err := st.NextRing()
	if err != nil {
		return err
	}
	old, oldNext := n.ring, n.next
	n.state, n.ring, n.next = st.Clone(), cur, next
	if st.N != n.cfg.N {
		return fmt.Errorf("%w: cluster state has N=%d, this node N=%d", ErrConfig, st.N, n.cfg.N)
	}
	if old != nil {
		// The ring switched, or a transition was aborted: whatever this
		// node held for partitions it no longer replicates (in either
		// ring) must be handed to their replicas, then dropped.
		for p := range cur.Partitions() {
			held := slices.Contains(old.PreferenceList(p), n.cfg.ID) ||
				(oldNext != nil && slices.Contains(oldNext.PreferenceList(p), n.cfg.ID))
			if held && !n.replicates(p) {
				n.ho.orphans[p] = true
			}
		}
	}
	if next == nil {
		clear(n.ho.reported)
		if run := n.ae.cur; run != nil && run.push != nil && run.push.handoff != nil {
			// A transfer of a transition that ended (aborted, or switched
			// by the claimant) has nothing left to report to.
			n.abandonRun()
		}
	}
	return nil
}

// findOrphans marks partitions this node holds data of without
// replicating them: after a restart, cleanup that had not finished (or a
// write from a node on an older ring) must resume. It runs in New, which
// fails with its error: a partition missed here would keep its stray
// copies, and their old versions, for as long as the process runs.
func (n *Node) findOrphans() error {
	for p := range n.ring.Partitions() {
		if n.replicates(p) {
			continue
		}
		lo, hi := storage.ObjectRange(p)
		err := n.store.Scan(lo, hi, func(_, _ []byte) error {
			n.ho.orphans[p] = true
			return errStopScan
		})
		if err != nil && !errors.Is(err, errStopScan) {
			return fmt.Errorf("%w: looking for partitions to hand off: %w", ErrStorageRead, err)
		}
	}
	return nil
}

// SetState offers the core a cluster state heard through gossip. Older or
// equal versions are ignored.
func (n *Node) SetState(now time.Time, st cluster.State) error {
	if n.err != nil {
		return n.err
	}
	n.now = now
	if st.Version <= n.state.Version {
		return nil
	}
	if err := st.Validate(); err != nil {
		return err
	}
	return n.adopt(st, false)
}

// adopt installs a newer state and persists it; publish also gossips it
// (for states this node produced).
func (n *Node) adopt(st cluster.State, publish bool) error {
	if err := n.install(st); err != nil {
		return err
	}
	n.put(storage.MetaKey("cluster"), cluster.Encode(st))
	if publish {
		c := st.Clone()
		n.rd.State = &c
	}
	return nil
}

// Plan is a staged membership change: what a commit would do.
type Plan struct {
	FromVersion uint64
	Joining     []ring.NodeID
	Leaving     []ring.NodeID
	Moves       []ring.Move     // partitions changing owner
	Transfers   []ring.Transfer // data to copy: partition, donor, newcomer
	Before      map[ring.NodeID]int
	After       map[ring.NodeID]int
	// Keys estimates the objects each transfer copies, from this node's
	// own copies (-1 where it does not hold the partition).
	Keys []int
	next []ring.NodeID
}

// Plan computes the staged change: nodes the failure detector reports
// alive (alive, from the driver's gossip view) that are not in the ring
// join; staged leaves leave.
func (n *Node) Plan(alive []ring.NodeID) (Plan, error) {
	if n.err != nil {
		return Plan{}, n.err
	}
	if n.ring == nil {
		return Plan{}, ErrNoRing
	}
	if n.state.InTransition() {
		return Plan{}, ErrTransition
	}
	members := map[ring.NodeID]bool{}
	for _, id := range n.ring.Members() {
		members[id] = true
	}
	var pl Plan
	pl.FromVersion = n.state.Version
	for _, id := range alive {
		if !members[id] && !slices.Contains(n.state.Leaving, id) {
			members[id] = true
			pl.Joining = append(pl.Joining, id)
		}
	}
	for _, id := range n.state.Leaving {
		if members[id] {
			delete(members, id)
			pl.Leaving = append(pl.Leaving, id)
		}
	}
	slices.Sort(pl.Joining)
	slices.Sort(pl.Leaving)
	if len(pl.Joining) == 0 && len(pl.Leaving) == 0 {
		return pl, ErrNoChange
	}
	ids := make([]ring.NodeID, 0, len(members))
	for id := range members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if len(ids) < n.cfg.N {
		return pl, fmt.Errorf("node: %d members would remain, fewer than N=%d", len(ids), n.cfg.N)
	}
	next, err := ring.Rebalance(n.ring.Owners(), ids, n.cfg.N)
	if err != nil {
		return pl, err
	}
	nr, err := ring.FromOwners(ring.Config{Partitions: n.ring.Partitions(), N: n.cfg.N}, n.state.Version+1, next)
	if err != nil {
		return pl, err
	}
	pl.next = next
	pl.Moves = ring.Moves(n.ring.Owners(), next)
	pl.Transfers = ring.Transfers(n.ring, nr)
	pl.Before = n.ring.PartitionCounts()
	pl.After = nr.PartitionCounts()
	for _, t := range pl.Transfers {
		k := -1
		if n.replicates(t.Partition) {
			tr := n.tree(t.Partition)
			if tr == nil {
				return Plan{}, n.err
			}
			k = tr.Keys()
		}
		pl.Keys = append(pl.Keys, k)
	}
	return pl, nil
}

// Commit applies the staged change: the transition starts, with this node
// as its claimant.
func (n *Node) Commit(now time.Time, alive []ring.NodeID) (Plan, error) {
	n.now = now
	pl, err := n.Plan(alive)
	if err != nil {
		return pl, err
	}
	st := n.state.Clone()
	st.Version++
	st.Next = pl.next
	st.Claimant = n.cfg.ID
	st.Done = nil
	st.Leaving = nil
	if err := n.adopt(st, true); err != nil {
		return pl, err
	}
	n.maybeSwitch()
	return pl, nil
}

// StageLeave stages node id to leave at the next commit.
func (n *Node) StageLeave(now time.Time, id ring.NodeID) error {
	if n.err != nil {
		return n.err
	}
	n.now = now
	if n.ring == nil {
		return ErrNoRing
	}
	if n.state.InTransition() {
		return ErrTransition
	}
	if !n.ring.Contains(id) {
		return fmt.Errorf("%w: %s", ErrNotMember, id)
	}
	if slices.Contains(n.state.Leaving, id) {
		return nil
	}
	st := n.state.Clone()
	st.Version++
	st.Leaving = append(st.Leaving, id)
	slices.Sort(st.Leaving)
	return n.adopt(st, true)
}

// Abort rolls the running transition back, on an operator's command: the
// ring stays the one requests were routed by (Owners), and Next and the
// handoffs done so far are dropped. Nothing is lost: throughout the
// transition every request was routed, and W counted, by the current ring,
// whose replicas therefore hold every acknowledged write. The nodes that
// were entering preference lists only got extra copies (dual writes and
// handoff pushes); they hand them back and drop them like any data of a
// partition they do not replicate. It returns the progress at the abort.
//
// Only the claimant changes the state during a transition, so the driver
// runs Abort on the claimant when it can (see server.Abort); run elsewhere
// it races the claimant's next handoff record, and the higher version wins.
func (n *Node) Abort(now time.Time) (HandoffProgress, error) {
	if n.err != nil {
		return HandoffProgress{}, n.err
	}
	n.now = now
	if n.ring == nil {
		return HandoffProgress{}, ErrNoRing
	}
	if !n.state.InTransition() {
		return HandoffProgress{}, ErrNoTransition
	}
	hp := n.Progress()
	st := n.state.Clone()
	st.Version++
	st.Next, st.Claimant, st.Done = nil, "", nil
	return hp, n.adopt(st, true)
}

// HandoffProgress summarises the running transition.
type HandoffProgress struct {
	InTransition bool
	Claimant     ring.NodeID
	Total, Done  int
	Pending      []ring.Transfer
}

// Progress reports the running transition's handoffs.
func (n *Node) Progress() HandoffProgress {
	hp := HandoffProgress{InTransition: n.state.InTransition(), Claimant: n.state.Claimant}
	if n.next == nil {
		return hp
	}
	for _, t := range ring.Transfers(n.ring, n.next) {
		hp.Total++
		if n.state.IsDone(cluster.Handoff{Partition: t.Partition, To: t.To}) {
			hp.Done++
		} else {
			hp.Pending = append(hp.Pending, t)
		}
	}
	return hp
}

// NextRing returns the ring being moved to, or nil.
func (n *Node) NextRing() *ring.Ring { return n.next }

// donor reports whether this node should run transfer t: it is the donor,
// or the donor is down and this node is the first live replica that stays.
func (n *Node) donor(t ring.Transfer) bool {
	if t.From == n.cfg.ID {
		return true
	}
	if n.reachable(t.From) {
		return false
	}
	for _, id := range n.ring.PreferenceList(t.Partition) {
		if id != t.From && slices.Contains(n.next.PreferenceList(t.Partition), id) && n.reachable(id) {
			return id == n.cfg.ID
		}
	}
	return false
}

// tickHandoffs starts the next handoff this node owes, if no exchange is
// running: transfers of the running transition first, then partitions it
// must hand off and drop.
func (n *Node) tickHandoffs() {
	if n.ae.cur != nil {
		return
	}
	if n.next != nil {
		for _, t := range ring.Transfers(n.ring, n.next) {
			h := cluster.Handoff{Partition: t.Partition, To: t.To}
			if n.state.IsDone(h) || !n.donor(t) || !n.reachable(t.To) {
				continue
			}
			if at, ok := n.ho.reported[h]; ok && n.now.Sub(at) < n.cfg.AETimeout {
				continue // told the claimant; wait for the state to say so
			}
			n.startHandoff(t.Partition, t.To, &h)
			return
		}
	}
	for _, p := range slices.Sorted(maps.Keys(n.ho.orphans)) {
		if n.replicates(p) {
			delete(n.ho.orphans, p)
			continue
		}
		for _, to := range n.ring.PreferenceList(p) {
			if n.reachable(to) && to != n.cfg.ID {
				n.startHandoff(p, to, nil)
				return
			}
		}
	}
}

// startHandoff begins an exchange of partition p with `to`, in push mode:
// h names the transition's handoff, or is nil for a hand-off-and-drop.
func (n *Node) startHandoff(p int, to ring.NodeID, h *cluster.Handoff) {
	// The snapshot of what this node holds now is what it may drop later.
	snap := map[string]uint64{}
	if h == nil {
		keys, versions, _, ok := n.partitionKeys(p, nil)
		if !ok {
			return // the core stopped
		}
		for i, k := range keys {
			snap[string(k)] = versions[i]
		}
	}
	t := n.tree(p)
	if t == nil {
		return
	}
	run := &aeRun{id: n.newOpID(), p: p, peer: to, deadline: n.now.Add(n.cfg.AETimeout),
		push: &pushJob{handoff: h, snapshot: snap, acks: map[uint64]bool{}}}
	run.ex = newExchange(t)
	n.ae.cur = run
	n.askTree(run)
}

// pushJob is the push phase of a handoff: every object of the differing
// buckets goes to the peer as an acknowledged replica put.
type pushJob struct {
	handoff  *cluster.Handoff
	snapshot map[string]uint64 // hand-off-and-drop: keys and versions compared
	queue    []pushItem
	acks     map[uint64]bool // request IDs awaiting acknowledgement
	pushed   int             // objects sent, for the HandoffStep event
}

type pushItem struct{ key, enc []byte }

// pushWindow bounds the unacknowledged objects of one handoff.
const pushWindow = 256

// startPush runs when a handoff's exchange found the differing buckets.
func (n *Node) startPush(run *aeRun, buckets []int) {
	keys, _, encs, ok := n.bucketKeys(run.p, buckets)
	if !ok {
		// The core stopped. Pushing what the scan saw, then reporting the
		// handoff done, would leave the keys it missed behind.
		return
	}
	for i := range keys {
		run.push.queue = append(run.push.queue, pushItem{keys[i], encs[i]})
	}
	n.pumpPush(run)
}

// pumpPush keeps up to pushWindow objects in flight and finishes the
// handoff once all are acknowledged.
func (n *Node) pumpPush(run *aeRun) {
	pj := run.push
	for len(pj.acks) < pushWindow && len(pj.queue) > 0 {
		it := pj.queue[0]
		pj.queue = pj.queue[1:]
		id := n.newOpID()
		pj.acks[id] = true
		n.ae.pushing[id] = run
		n.emitRepair(RepairHandoff, run.p, run.peer, it.key)
		pj.pushed++
		n.send(Message{Type: MsgReplicaPut, To: run.peer, ReqID: id, Key: it.key, Object: it.enc})
		n.aeStats.KeysRepaired++
		n.obs.noteSent(run.p, run.peer)
		n.obs.handoffKeys++
		n.obs.handoffBytes += uint64(len(it.enc))
	}
	run.deadline = n.now.Add(n.cfg.AETimeout)
	if len(pj.acks) == 0 && len(pj.queue) == 0 {
		n.finishHandoff(run)
	}
}

// onPushAck handles a replica's acknowledgement of a pushed object. It
// reports whether m belonged to a push.
func (n *Node) onPushAck(m Message) bool {
	run, ok := n.ae.pushing[m.ReqID]
	if !ok {
		return false
	}
	delete(n.ae.pushing, m.ReqID)
	if n.ae.cur != run || m.Err != "" {
		return true // abandoned, or failed: the handoff is retried whole
	}
	delete(run.push.acks, m.ReqID)
	n.pumpPush(run)
	return true
}

// finishHandoff records a completed push: a transition's handoff is
// reported to the claimant; a hand-off-and-drop deletes what it compared.
func (n *Node) finishHandoff(run *aeRun) {
	n.ae.cur = nil
	n.obs.handoffsDone++
	pj := run.push
	n.emit(Event{Kind: HandoffStep, Peer: run.peer, Partition: run.p, N: pj.pushed})
	if pj.handoff != nil {
		n.ho.reported[*pj.handoff] = n.now
		if n.state.Claimant == n.cfg.ID {
			n.recordHandoff(*pj.handoff)
		} else {
			n.send(Message{Type: MsgHandoffDone, To: n.state.Claimant, Partition: pj.handoff.Partition, Hint: pj.handoff.To})
		}
		return
	}
	// Drop only keys unchanged since the exchange: anything written since
	// (a node still on the old ring) stays, and the partition is handed
	// off again later.
	keys, versions, encs, ok := n.partitionKeys(run.p, nil)
	if !ok {
		return // the core stopped; the partition stays an orphan
	}
	changed := false
	for i, k := range keys {
		if v, ok := pj.snapshot[string(k)]; ok && v == versions[i] {
			n.writeLocal(run.p, k, encs[i], nil)
			n.ho.dropped++
		} else {
			changed = true
		}
	}
	if !changed {
		delete(n.ho.orphans, run.p)
		delete(n.ae.trees, run.p)
	}
}

// onHandoffDone runs on the claimant when a donor finished a handoff.
func (n *Node) onHandoffDone(m Message) {
	if n.state.Claimant != n.cfg.ID || n.next == nil {
		return
	}
	n.recordHandoff(cluster.Handoff{Partition: m.Partition, To: m.Hint})
}

func (n *Node) recordHandoff(h cluster.Handoff) {
	if n.state.IsDone(h) {
		return
	}
	known := false
	for _, t := range ring.Transfers(n.ring, n.next) {
		if t.Partition == h.Partition && t.To == h.To {
			known = true
			break
		}
	}
	if !known {
		return
	}
	st := n.state.Clone()
	st.Version++
	st.Done = append(st.Done, h)
	if err := n.adopt(st, true); err != nil {
		return
	}
	n.maybeSwitch()
}

// maybeSwitch ends the transition once every handoff is done.
func (n *Node) maybeSwitch() {
	if n.state.Claimant != n.cfg.ID || n.next == nil {
		return
	}
	for _, t := range ring.Transfers(n.ring, n.next) {
		if !n.state.IsDone(cluster.Handoff{Partition: t.Partition, To: t.To}) {
			return
		}
	}
	st := n.state.Clone()
	st.Version++
	st.Owners, st.Next, st.Claimant, st.Done = st.Next, nil, "", nil
	_ = n.adopt(st, true)
}

// noteWrite marks a partition this node does not replicate as holding data
// to hand off (a write from a node on another ring version).
func (n *Node) noteWrite(p int) {
	if !n.replicates(p) {
		n.ho.orphans[p] = true
	}
}
