package node

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/dynago/dynago/cluster"
	"github.com/dynago/dynago/coord"
	"github.com/dynago/dynago/dvv"
	"github.com/dynago/dynago/merkle"
	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// Store is the core's read access to the node's local state. The daemon
// passes its storage engine; every write goes out through Ready instead.
type Store interface {
	Get(key []byte) ([]byte, error) // storage.ErrNotFound when absent
	// Scan visits keys in [lower, upper) in order; slices are valid only
	// during fn. Used for hint delivery and anti-entropy.
	Scan(lower, upper []byte, fn func(key, value []byte) error) error
}

// Config configures a node core.
type Config struct {
	// ID names this node in the ring.
	ID ring.NodeID
	// Actor is the name this node stamps versions with: the node ID plus its
	// storage epoch, so that a node restarted on a wiped disk never reuses
	// an old actor's counters (Riak kv679). See ActorFor.
	Actor string
	// OpIDBase is where this node's operation IDs start. Answers are
	// matched to operations by ID and sender, and an answer to an operation
	// of a previous life of this node (sent before it restarted, delivered
	// after) must match nothing: give each start a random base. Zero works,
	// but then IDs repeat across restarts.
	OpIDBase uint64
	// State is the cluster state to start from (loaded from disk, or the
	// initial state of a static cluster). Nil with a nil Ring means the
	// node is joining: it serves nothing until gossip brings it a state.
	State *cluster.State
	// Ring is a fixed ring to start from when State is nil (tests, the
	// simulator); it is turned into a version-N state.
	Ring *ring.Ring
	// N is the replication factor; needed only when neither State nor Ring
	// is given.
	N int
	// R and W are the cluster's default quorums (1..N). Default: a majority.
	R, W int
	// RequestTimeout bounds a request whose client gave none. Default 5s.
	RequestTimeout time.Duration
	// MaxKeySize and MaxValueSize bound client requests (bytes). Defaults:
	// 1 KiB and 1 MiB.
	MaxKeySize, MaxValueSize int
	// ReplicaTimeout is how long a coordinator waits for a preference-list
	// node to acknowledge a write before it also sends the write, with a
	// hint, to the next fallback (sloppy quorum). Default 1s.
	ReplicaTimeout time.Duration
	// HintRetry is how often a node re-offers the hints it holds for nodes
	// it believes alive (an acknowledgement may have been lost, or the node
	// restarted faster than the failure detector noticed). Default 2s.
	HintRetry time.Duration
	// HintBatch bounds the hints in flight to one node. Default 64.
	HintBatch int
	// AEInterval is how often a node starts an anti-entropy exchange of one
	// partition with one other replica. Default 1s; negative disables.
	AEInterval time.Duration
	// AETimeout abandons an exchange whose peer stopped answering. Default
	// 10s.
	AETimeout time.Duration
	// AEMaxKeys bounds the objects each side sends per exchange: the
	// throttle that keeps repair traffic from crowding out clients.
	// Default 1000 (at the default interval, at most ~1000 keys/s).
	AEMaxKeys int
	// TombstoneGrace is how old a tombstone must be before it may be
	// reaped (once every member agrees). Default 10 minutes; negative
	// disables reaping.
	TombstoneGrace time.Duration
	// ReapInterval is how often a node looks for tombstones to reap in one
	// of the partitions it leads. Default 10s.
	ReapInterval time.Duration
	// LWW makes the cluster last-write-wins: every merge keeps only the
	// sibling with the newest coordinator timestamp. It silently discards
	// concurrent writes and exists only as an explicit, documented choice
	// (and as the negative control of the simulator's checker).
	LWW bool
	// TreeLeaves is the number of leaf buckets per partition's Merkle tree
	// (a power of two). Default 1024.
	TreeLeaves int
}

// Defaults for Config fields left zero.
const (
	DefaultRequestTimeout = 5 * time.Second
	DefaultMaxKeySize     = 1 << 10
	DefaultMaxValueSize   = 1 << 20
	DefaultReplicaTimeout = time.Second
	DefaultHintRetry      = 2 * time.Second
	DefaultHintBatch      = 64
	DefaultAEInterval     = time.Second
	DefaultAETimeout      = 10 * time.Second
	DefaultAEMaxKeys      = 1000
	DefaultTreeLeaves     = 1024
	DefaultTombstoneGrace = 10 * time.Minute
	DefaultReapInterval   = 10 * time.Second
)

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("node: invalid config")

// ActorFor returns the actor name a node stamps versions with. The epoch is
// shortened to 32 bits: it only has to differ between lives of one node.
func ActorFor(id ring.NodeID, epoch uint64) string {
	return fmt.Sprintf("%s:%08x", id, uint32(epoch))
}

func (c *Config) validate() error {
	if c.ID == "" {
		return fmt.Errorf("%w: empty ID", ErrConfig)
	}
	if c.State == nil && c.Ring != nil {
		c.State = &cluster.State{Version: max(c.Ring.Version(), 1), Partitions: c.Ring.Partitions(), N: c.Ring.N(), Owners: c.Ring.Owners()}
	}
	if c.State != nil {
		if err := c.State.Validate(); err != nil {
			return fmt.Errorf("%w: %v", ErrConfig, err)
		}
		c.N = c.State.N
	}
	if c.N < 1 {
		return fmt.Errorf("%w: no state, no ring and no N", ErrConfig)
	}
	if c.Actor == "" {
		return fmt.Errorf("%w: empty actor", ErrConfig)
	}
	n := c.N
	if c.R == 0 {
		c.R = n/2 + 1
	}
	if c.W == 0 {
		c.W = n/2 + 1
	}
	if err := coord.CheckQuorum("r", c.R, n); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if err := coord.CheckQuorum("w", c.W, n); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.MaxKeySize <= 0 {
		c.MaxKeySize = DefaultMaxKeySize
	}
	if c.MaxValueSize <= 0 {
		c.MaxValueSize = DefaultMaxValueSize
	}
	if c.ReplicaTimeout <= 0 {
		c.ReplicaTimeout = DefaultReplicaTimeout
	}
	if c.HintRetry <= 0 {
		c.HintRetry = DefaultHintRetry
	}
	if c.HintBatch <= 0 {
		c.HintBatch = DefaultHintBatch
	}
	if c.AEInterval == 0 {
		c.AEInterval = DefaultAEInterval
	}
	if c.AETimeout <= 0 {
		c.AETimeout = DefaultAETimeout
	}
	if c.AEMaxKeys <= 0 {
		c.AEMaxKeys = DefaultAEMaxKeys
	}
	if c.TombstoneGrace == 0 {
		c.TombstoneGrace = DefaultTombstoneGrace
	}
	if c.ReapInterval <= 0 {
		c.ReapInterval = DefaultReapInterval
	}
	if c.TreeLeaves == 0 {
		c.TreeLeaves = DefaultTreeLeaves
	}
	if _, err := merkle.New(merkle.Config{Leaves: c.TreeLeaves}); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return nil
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
	// State, when set, is a new cluster state to gossip (it is also among
	// the Writes, so it is durable before anyone hears of it).
	State *cluster.State
}

// Empty reports whether the Ready carries nothing.
func (rd Ready) Empty() bool {
	return len(rd.Writes) == 0 && len(rd.Requests) == 0 && len(rd.Messages) == 0 && len(rd.Replies) == 0 && rd.State == nil
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
	hintedSeq uint64 // writes coordinated for unreachable primaries (startHintedPut)
	ae        aeState
	ho        handoffState

	aeStats AEStats
	obs     observeState
	rp      reapState
	reaped  uint64

	// pending holds writes emitted but not yet applied to the store, so
	// that reads later in the same batch see them (like raft's unstable log).
	pending map[string][]byte
	rd      Ready
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
		n.findOrphans()
	}
	return n, nil
}

// ID returns the node's ID.
func (n *Node) ID() ring.NodeID { return n.cfg.ID }

// Ring returns the ring the core currently routes by; nil while joining.
func (n *Node) Ring() *ring.Ring { return n.ring }

// State returns the cluster state the core runs by.
func (n *Node) State() cluster.State { return n.state.Clone() }

// Defaults returns N and the default R and W.
func (n *Node) Defaults() (nrep, r, w int) { return n.cfg.N, n.cfg.R, n.cfg.W }

// InFlight returns the number of operations the core is tracking.
func (n *Node) InFlight() int { return len(n.puts) + len(n.gets) + len(n.fwds) + len(n.hints.inflight) }

// SetStatus records another node's liveness as the failure detector sees it.
// A node coming back alive gets the hints held for it at once.
func (n *Node) SetStatus(id ring.NodeID, s Status) {
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

// HasReady reports whether Ready would return anything.
func (n *Node) HasReady() bool { return !n.rd.Empty() }

// Ready returns the outputs accumulated since the last call. The caller
// must apply rd.Writes to the store and then call Advance before feeding
// the core any further input.
func (n *Node) Ready() Ready {
	rd := n.rd
	n.rd = Ready{}
	return rd
}

// Advance tells the core that the writes of the last Ready have been
// applied to the store (not necessarily synced), so reads see them there.
func (n *Node) Advance() { clear(n.pending) }

// Tick advances the core's clock and expires operations past deadline.
// Expiry runs in operation order, never map order, so that a run replays
// identically from the same inputs.
func (n *Node) Tick(now time.Time) {
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
	n.now = now
	if n.ring == nil {
		n.reply(Reply{ID: req.ID, Code: CodeUnavailable, Err: "node: this node has not joined a cluster yet (no ring)"})
		return
	}
	if err := n.checkRequest(&req); err != nil {
		n.reply(Reply{ID: req.ID, Code: CodeBadRequest, Err: err.Error()})
		return
	}
	switch req.Op {
	case OpGet:
		n.startGet(origin{client: req.ID}, req.Key, req.R, req.Timeout, "")
	case OpPut, OpDelete:
		p := n.ring.PartitionOf(req.Key)
		pl := n.ring.PreferenceList(p)
		if n.inList(pl) {
			n.startPut(origin{client: req.ID}, req.Key, req.Value, req.Context, req.Op == OpDelete, req.W, req.Timeout, "")
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
	nrep := n.cfg.N
	if req.R == 0 {
		req.R = n.cfg.R
	}
	if req.W == 0 {
		req.W = n.cfg.W
	}
	if err := coord.CheckQuorum("r", req.R, nrep); err != nil {
		return err
	}
	if err := coord.CheckQuorum("w", req.W, nrep); err != nil {
		return err
	}
	if req.Timeout <= 0 {
		req.Timeout = n.cfg.RequestTimeout
	}
	if _, err := dvv.DecodeContext(req.Context); err != nil {
		return err
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
	n.now = now
	if n.ring == nil {
		return // not a member yet: nothing can be addressed to it
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
// this batch that the driver has not applied yet.
func (n *Node) readRaw(skey []byte) ([]byte, bool, error) {
	if raw, ok := n.pending[string(skey)]; ok {
		return raw, raw != nil, nil
	}
	raw, err := n.store.Get(skey)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return raw, true, nil
}

// readLocal returns this node's copy of key in partition p.
func (n *Node) readLocal(p int, key []byte) (object.Object, bool, error) {
	o, _, have, err := n.readLocalEnc(p, key)
	return o, have, err
}

// readLocalEnc returns this node's copy of key and its encoding.
func (n *Node) readLocalEnc(p int, key []byte) (object.Object, []byte, bool, error) {
	raw, have, err := n.readRaw(storage.ObjectKey(p, key))
	if err != nil || !have {
		return object.Object{}, nil, false, err
	}
	o, err := object.Decode(raw)
	if err != nil {
		return object.Object{}, nil, false, err
	}
	return o, raw, true, nil
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
