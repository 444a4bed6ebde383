package node

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/dynago/dynago/cluster"
	"github.com/dynago/dynago/coord"
	"github.com/dynago/dynago/dvv"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// Store is the core's read access to the node's local state. The daemon
// passes its storage engine; every write goes out through Ready instead.
// Any error but storage.ErrNotFound stops the core (see Ready.Err): the
// core never works on from a read it could not make.
type Store interface {
	// Get returns a copy of key's value, or storage.ErrNotFound when
	// absent. It must not retain key: the core reuses its buffer.
	Get(key []byte) ([]byte, error)
	// Scan visits keys in [lower, upper) in order; slices are valid only
	// during fn. Used for hint delivery and anti-entropy.
	Scan(lower, upper []byte, fn func(key, value []byte) error) error
}

// ErrStorageRead is the error a core latches on a failed Store read (see
// Ready.Err); it wraps the store's own error.
var ErrStorageRead = errors.New("node: storage read failed; the node must stop")

// ActorFor returns the actor name a node stamps versions with. The epoch is
// shortened to 32 bits: it only has to differ between lives of one node.
func ActorFor(id ring.NodeID, epoch uint64) string {
	return fmt.Sprintf("%s:%08x", id, uint32(epoch))
}

// Ready is the output of the core since the previous call to Ready.
type Ready struct {
	// Writes must be applied to the store, in order, before Advance; they
	// must be durable before any Message or Reply below leaves the node.
	Writes []Write
	// Requests may leave at once, before the Writes are durable: they ask
	// something of another node and vouch for nothing stored here (replica
	// puts and gets, forwards, anti-entropy and reaping queries). Sending a
	// replica put before the coordinator's own fsync saves an fsync of
	// latency; it is safe because a node that crashes restarts with a new
	// epoch (storage.StartEpoch), so a version stamp lost in the crash is
	// never reused.
	Requests []Message
	// Messages are answers that vouch for this node's state
	// (acknowledgements, read answers, reap votes): they wait for the
	// Writes, and every earlier Ready's, to be durable.
	Messages []Message
	Replies  []Reply
	// Events say what happened, for logs, metrics, traces and the
	// dashboard; nothing depends on them for correctness. They are
	// released with Messages (after the fsync), so an event never reports
	// a hint or a repair that a crash could still undo.
	Events []Event
	// State, when set, is a new cluster state to gossip (it is also among
	// the Writes, so it is durable before anyone hears of it).
	State *cluster.State
	// Err, when set, is a Store read that failed (it wraps ErrStorageRead
	// and the store's error). The core has stopped, and the rest of this
	// Ready is empty: whatever the core computed from that read may be
	// wrong. The driver must stop the node, as on a failed fsync.
	Err error
}

// Empty reports whether the Ready carries nothing.
func (rd Ready) Empty() bool {
	return len(rd.Writes) == 0 && len(rd.Requests) == 0 && len(rd.Messages) == 0 && len(rd.Replies) == 0 && len(rd.Events) == 0 && rd.State == nil && rd.Err == nil
}

// Batch returns the Writes as one storage batch, in order: a nil Value is a
// delete. Both drivers apply a Ready's writes through it or BatchInto (the
// sim through Batch, the server through BatchInto), so the meaning of a
// Write is decided here, beside its type, and not twice.
func (rd Ready) Batch() *storage.Batch {
	var b storage.Batch
	rd.BatchInto(&b)
	return &b
}

// BatchInto is Batch into b, which it resets first: a driver applying a
// Ready per loop pass reuses one batch's memory instead of growing a new
// one each time (engines do not retain a batch they applied).
func (rd Ready) BatchInto(b *storage.Batch) {
	b.Reset()
	for _, w := range rd.Writes {
		if w.Value == nil {
			b.Delete(w.Key)
		} else {
			b.Set(w.Key, w.Value)
		}
	}
}

// Status is a node's liveness as the failure detector reports it.
type Status uint8

const (
	Alive Status = iota
	Suspect
	Dead
)

func (s Status) String() string {
	switch s {
	case Alive:
		return "alive"
	case Suspect:
		return "suspect"
	case Dead:
		return "dead"
	}
	return "unknown"
}

// origin says who is waiting for an operation's outcome.
type origin struct {
	client uint64      // local Request.ID, when remote == ""
	remote ring.NodeID // forwarding node waiting for MsgForwardResp
	reqID  uint64      // its request ID
	// trace: record how the operation is served (Request.Trace; always
	// for a forwarded write, whose trace the forwarding node merges and
	// reads the sibling warning from).
	trace bool
}

// Node is one dynago node's protocol core. It is not safe for concurrent
// use: one driver goroutine owns it.
type Node struct {
	cfg    Config
	store  Store
	state  cluster.State
	ring   *ring.Ring // routes requests; nil until the node has a state
	next   *ring.Ring // the ring being moved to, during a transition
	now    time.Time
	status map[ring.NodeID]Status

	nextOp    uint64
	puts      map[uint64]*putOp
	gets      map[uint64]*getOp
	fwds      map[uint64]*forwardOp
	hints     hintState
	hintedSeq uint64 // fresh actors drawn (freshActor): writes by a non-replica, exhausted counters
	ae        aeState
	ho        handoffState

	aeStats AEStats
	obs     observeState
	rp      reapState
	reaped  uint64
	// rejected counts peer messages Step dropped as malformed (check).
	rejected uint64

	// pending holds writes emitted but not yet applied to the store, so
	// that reads later in the same batch see them (like raft's unstable log).
	pending map[string][]byte
	rd      Ready
	spare   Ready // slices handed back by Recycle, for the next Ready
	// keyBuf holds the storage key of a local read (readObject).
	keyBuf []byte
	// err is the first Store read error (see fail); once set, the core
	// takes no more input. errTold records that a Ready carried it, so
	// that a driver looping on HasReady does not spin.
	err     error
	errTold bool
}

// New returns a core reading local state from store.
func New(cfg Config, store Store) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n := &Node{
		// Two bits of headroom, so that the counter never wraps to 0,
		// which would otherwise read as "no answer wanted".
		nextOp:  cfg.OpIDBase >> 2,
		cfg:     cfg,
		store:   store,
		status:  map[ring.NodeID]Status{},
		puts:    map[uint64]*putOp{},
		gets:    map[uint64]*getOp{},
		fwds:    map[uint64]*forwardOp{},
		hints:   newHintState(),
		ae:      newAEState(),
		ho:      newHandoffState(),
		pending: map[string][]byte{},
	}
	if cfg.State != nil {
		if err := n.install(*cfg.State); err != nil {
			return nil, err
		}
		if err := n.findOrphans(); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// fail latches the first Store read error. As in raft ("if any Storage
// method returns an error, the raft instance will become inoperable"),
// the core then stops: a failed read may have hidden keys, and what was
// computed from it (a Merkle tree, a handoff's key list, a reap vote)
// could be wrong, and wrong for good once cached or acted on. The core
// answers nothing more, and every later Ready carries only the error, so
// that the driver stops the node as it does on a failed fsync.
func (n *Node) fail(err error) {
	if n.err == nil {
		n.err = fmt.Errorf("%w: %w", ErrStorageRead, err)
	}
}

// Err returns the storage read error that stopped the core, or nil.
func (n *Node) Err() error { return n.err }

// scan runs a Store scan; a failure (other than fn ending it early with
// errStopScan) latches the core, and scan reports false. Callers then
// return without acting on what the scan saw.
func (n *Node) scan(lower, upper []byte, fn func(key, value []byte) error) bool {
	if err := n.store.Scan(lower, upper, fn); err != nil && !errors.Is(err, errStopScan) {
		n.fail(err)
		return false
	}
	return true
}

// ID returns the node's ID.
func (n *Node) ID() ring.NodeID { return n.cfg.ID }

// Ring returns the ring the core currently routes by; nil while joining.
func (n *Node) Ring() *ring.Ring { return n.ring }

// State returns the cluster state the core runs by.
func (n *Node) State() cluster.State { return n.state.Clone() }

// StateVersion returns the version of the cluster state the core runs by,
// without State's copy: drivers ask after every step.
func (n *Node) StateVersion() uint64 { return n.state.Version }

// Defaults returns N and the default R and W: those of requests that name
// none (Config.R and W, as SetDefaults last changed them).
func (n *Node) Defaults() (nrep, r, w int) { return n.cfg.N, n.cfg.R, n.cfg.W }

// SetDefaults changes the default R and W of requests that name none, from
// the next request on: one in flight keeps the quorum it started with.
// Zero keeps the current value. A quorum outside 1..N is refused
// (ErrBadQuorum) and changes nothing. The change lasts until the node
// restarts; N cannot change, since it decides where every key lives.
func (n *Node) SetDefaults(r, w int) error {
	if n.err != nil {
		return n.err
	}
	r, w = cmp.Or(r, n.cfg.R), cmp.Or(w, n.cfg.W)
	if err := coord.CheckQuorum("r", r, n.cfg.N); err != nil {
		return err
	}
	if err := coord.CheckQuorum("w", w, n.cfg.N); err != nil {
		return err
	}
	n.cfg.R, n.cfg.W = r, w
	return nil
}

// InFlight returns the number of operations the core is tracking.
func (n *Node) InFlight() int { return len(n.puts) + len(n.gets) + len(n.fwds) + len(n.hints.inflight) }

// SetStatus records another node's liveness as the failure detector sees it.
// A node coming back alive gets the hints held for it at once.
func (n *Node) SetStatus(id ring.NodeID, s Status) {
	if n.err != nil {
		return
	}
	was := n.status[id]
	if s != Alive {
		// Writes forwarded to a node now suspected move on without
		// waiting for their retry time.
		for _, fid := range slices.Sorted(maps.Keys(n.fwds)) {
			if op := n.fwds[fid]; op.to == id {
				n.redirect(fid, op)
			}
		}
	}
	if s == Alive {
		delete(n.status, id)
		if was != Alive {
			n.deliverHints(id)
		}
		return
	}
	n.status[id] = s
}

// StatusOf returns a node's liveness; unknown nodes are presumed alive.
func (n *Node) StatusOf(id ring.NodeID) Status { return n.status[id] }

func (n *Node) reachable(id ring.NodeID) bool { return id == n.cfg.ID || n.status[id] != Dead }

// HasReady reports whether Ready would return anything new. A storage read
// error counts once.
func (n *Node) HasReady() bool { return (n.err != nil && !n.errTold) || !n.rd.Empty() }

// Ready returns the outputs accumulated since the last call. The caller
// must apply rd.Writes to the store and then call Advance before feeding
// the core any further input. After a storage read error it returns only
// that error (Ready.Err), every time.
func (n *Node) Ready() Ready {
	if n.err != nil {
		// Outputs of the input that failed may rest on the failed read;
		// those of earlier inputs in the batch wait for writes that will
		// now never be made durable. Neither may leave.
		n.rd, n.errTold = Ready{}, true
		return Ready{Err: n.err}
	}
	rd := n.rd
	n.rd = Ready{Writes: n.spare.Writes, Requests: n.spare.Requests, Messages: n.spare.Messages, Replies: n.spare.Replies}
	n.spare = Ready{}
	return rd
}

// maxRecycled bounds the length of a slice Recycle keeps: one huge pass
// (a handoff, a burst) must not pin its arrays for the node's lifetime.
const maxRecycled = 4096

// Recycle hands back the slices of a Ready the driver is completely done
// with (writes applied, every request and message sent, every reply
// delivered), for the next Ready to append into: under load a loop pass
// otherwise grows each slice from nothing, copying its messages at every
// doubling. Optional: a driver that never calls it only allocates more.
// rd's slices must not be used after this.
func (n *Node) Recycle(rd Ready) {
	recycle(&n.rd.Writes, &n.spare.Writes, rd.Writes)
	recycle(&n.rd.Requests, &n.spare.Requests, rd.Requests)
	recycle(&n.rd.Messages, &n.spare.Messages, rd.Messages)
	recycle(&n.rd.Replies, &n.spare.Replies, rd.Replies)
}

// recycle keeps src, cleared, as the slice being filled (cur) when that is
// still empty, else as the spare for the next Ready; the larger array wins.
func recycle[T any](cur, spare *[]T, src []T) {
	if cap(src) > maxRecycled {
		return
	}
	clear(src) // drop references to keys, objects and values
	switch {
	case len(*cur) == 0 && cap(src) > cap(*cur):
		*cur = src[:0]
	case cap(src) > cap(*spare):
		*spare = src[:0]
	}
}

// Advance tells the core that the writes of the last Ready have been
// applied to the store (not necessarily synced), so reads see them there.
func (n *Node) Advance() { clear(n.pending) }

// Tick advances the core's clock and expires operations past deadline.
// Expiry runs in operation order, never map order, so that a run replays
// identically from the same inputs.
func (n *Node) Tick(now time.Time) {
	if n.err != nil {
		return
	}
	n.now = now
	n.tickHints()
	if n.ring == nil {
		return
	}
	n.tickHandoffs()
	n.tickReap()
	n.tickAE()
	for _, id := range expired(n.puts, now, func(op *putOp) time.Time { return op.fallbackAt }) {
		n.sendToFallbacks(id, n.puts[id])
	}
	for _, id := range expired(n.gets, now, func(op *getOp) time.Time { return op.fallbackAt }) {
		n.getFallbacks(id, n.gets[id])
	}
	for _, id := range expired(n.gets, now, func(op *getOp) time.Time { return op.sess.retryAt }) {
		n.sessionRetry(id, n.gets[id])
	}
	for _, id := range expired(n.fwds, now, func(op *forwardOp) time.Time { return op.retryAt }) {
		n.retryForward(id, n.fwds[id])
	}
	for _, id := range expired(n.puts, now, func(op *putOp) time.Time { return op.deadline }) {
		n.expirePut(id, n.puts[id])
	}
	for _, id := range expired(n.gets, now, func(op *getOp) time.Time { return op.deadline }) {
		n.expireGet(id, n.gets[id])
	}
	for _, id := range expired(n.fwds, now, func(op *forwardOp) time.Time { return op.deadline }) {
		op := n.fwds[id]
		delete(n.fwds, id)
		op.trace.event(n.now, op.to, "timeout", "coordinator did not answer in time")
		n.reply(Reply{
			ID: op.client, Code: CodeQuorumFailed, Required: op.w,
			Err:   fmt.Sprintf("coordinator %s did not answer within %v; the write may or may not have been applied", op.to, op.timeout),
			Trace: op.trace.finish(),
		})
	}
}

// expired returns, in ascending order, the IDs of ops whose deadline is not
// after now.
func expired[T any](ops map[uint64]T, now time.Time, deadline func(T) time.Time) []uint64 {
	var ids []uint64
	for id, op := range ops {
		if !now.Before(deadline(op)) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Propose hands the core a client request received by this node.
func (n *Node) Propose(now time.Time, req Request) {
	if n.err != nil {
		return // stopped: the driver is stopping the node (Ready.Err)
	}
	n.now = now
	if n.ring == nil {
		n.reply(Reply{ID: req.ID, Code: CodeUnavailable, Err: "node: this node has not joined a cluster yet (no ring)"})
		return
	}
	if err := n.checkRequest(&req); err != nil {
		code := CodeBadRequest
		if errors.Is(err, ErrBadQuorum) {
			code = CodeBadQuorum
		}
		n.reply(Reply{ID: req.ID, Code: code, Err: err.Error()})
		return
	}
	switch req.Op {
	case OpGet:
		n.startGet(origin{client: req.ID, trace: req.Trace}, req.Key, req.R, req.Timeout, "", sessionFloor(req))
	case OpPut, OpDelete:
		// Monotonic writes and writes-follow-reads: the write's context
		// covers every version the session saw of the key, so the new
		// version supersedes them (never a sibling of them) wherever it
		// lands, and a read that sees it dominates the session's floor.
		req.Context = sessionContext(req)
		p := n.ring.PartitionOf(req.Key)
		pl := n.ring.PreferenceList(p)
		if n.inList(pl) {
			n.startPut(origin{client: req.ID, trace: req.Trace}, req.Key, req.Value, req.Context, req.Op == OpDelete, req.Replace, req.W, req.Timeout, "")
			return
		}
		n.forward(req, p, pl)
	default:
		n.reply(Reply{ID: req.ID, Code: CodeBadRequest, Err: "node: unknown operation"})
	}
}

func (n *Node) checkRequest(req *Request) error {
	if len(req.Key) == 0 {
		return errors.New("node: empty key")
	}
	if len(req.Key) > n.cfg.MaxKeySize {
		return fmt.Errorf("node: key of %d bytes exceeds the limit of %d", len(req.Key), n.cfg.MaxKeySize)
	}
	if len(req.Value) > n.cfg.MaxValueSize {
		return fmt.Errorf("node: value of %d bytes exceeds the limit of %d", len(req.Value), n.cfg.MaxValueSize)
	}
	// The one place a request's quorums are filled in and checked against
	// N: the front ends check only that a quorum is a positive integer,
	// and the daemon passes 0 ("the default") through, so a default
	// changed by SetDefaults applies to the very next request. (A
	// coordinator re-checks a forwarded W against its own ring in
	// startPut.)
	req.R, req.W = cmp.Or(req.R, n.cfg.R), cmp.Or(req.W, n.cfg.W)
	if err := coord.CheckQuorum("r", req.R, n.cfg.N); err != nil {
		return err
	}
	if err := coord.CheckQuorum("w", req.W, n.cfg.N); err != nil {
		return err
	}
	if req.Timeout <= 0 {
		req.Timeout = n.cfg.RequestTimeout
	}
	if _, err := dvv.DecodeContext(req.Context); err != nil {
		return err
	}
	if _, err := dvv.DecodeContext(req.Session); err != nil {
		return fmt.Errorf("node: session floor: %w", err)
	}
	return nil
}

func (n *Node) inList(pl []ring.NodeID) bool {
	for _, id := range pl {
		if id == n.cfg.ID {
			return true
		}
	}
	return false
}

// Step hands the core a message from another node.
func (n *Node) Step(now time.Time, m Message) {
	if n.err != nil {
		return
	}
	n.now = now
	if n.ring == nil {
		return // not a member yet: nothing can be addressed to it
	}
	if err := n.check(&m); err != nil {
		n.reject(m, err)
		return
	}
	switch m.Type {
	case MsgHandoffDone:
		n.onHandoffDone(m)
	case MsgReapQuery:
		n.onReapQuery(m)
	case MsgReapResp:
		n.onReapResp(m)
	case MsgReap:
		n.onReap(m)
	case MsgForward:
		n.onForward(m)
	case MsgForwardResp:
		n.onForwardResp(m)
	case MsgReplicaPut:
		n.onReplicaPut(m)
	case MsgReplicaPutResp:
		n.onReplicaPutResp(m)
	case MsgReplicaGet:
		n.onReplicaGet(m)
	case MsgReplicaGetResp:
		n.onReplicaGetResp(m)
	case MsgAETreeReq:
		n.onAETreeReq(m)
	case MsgAETreeResp:
		n.onAETreeResp(m)
	case MsgAEKeys:
		n.onAEKeys(m)
	case MsgAEWant:
		n.onAEWant(m)
	}
}

func (n *Node) send(m Message) {
	m.From = n.cfg.ID
	if m.Type.vouches() {
		n.rd.Messages = append(n.rd.Messages, m)
	} else {
		n.rd.Requests = append(n.rd.Requests, m)
	}
}

func (n *Node) reply(r Reply) { n.rd.Replies = append(n.rd.Replies, r) }

func (n *Node) newOpID() uint64 {
	n.nextOp++
	return n.nextOp
}

// readRaw returns the bytes stored under a storage key, seeing writes of
// this batch that the driver has not applied yet. A read error latches the
// core (fail) and is returned too, so the caller stops where it is.
func (n *Node) readRaw(skey []byte) ([]byte, bool, error) {
	if raw, ok := n.pending[string(skey)]; ok {
		return raw, raw != nil, nil
	}
	raw, err := n.store.Get(skey)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		n.fail(err)
		return nil, false, err
	}
	return raw, true, nil
}

// put emits a write of one storage key (value nil deletes it) and keeps it
// visible to reads until the driver has applied it.
func (n *Node) put(skey, value []byte) {
	n.pending[string(skey)] = value
	n.rd.Writes = append(n.rd.Writes, Write{Key: skey, Value: value})
}

// writeLocal emits a write of key's object, replacing old (the encoding
// read before, nil if none), and keeps the partition's Merkle tree current.
func (n *Node) writeLocal(p int, key, old, encoded []byte) {
	n.put(storage.ObjectKey(p, key), encoded)
	n.treeUpdate(p, key, old, encoded)
}
