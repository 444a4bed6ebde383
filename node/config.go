package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/dynago/dynago/cluster"
	"github.com/dynago/dynago/coord"
	"github.com/dynago/dynago/merkle"
	"github.com/dynago/dynago/ring"
)

// Config configures a node core. It is the one home of dynago's protocol
// settings: the daemon (package server), the simulator (package sim), the
// HTTP and RESP front ends and the command line all start from a preset
// below (DefaultConfig or LabConfig) and change only what they name.
// Zero fields take DefaultConfig's values (see WithDefaults); the reason
// for each default is written beside it there.
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

	// Partitions is Q, the number of partitions of a cluster created with
	// this configuration (a power of two, fixed at creation). The core
	// takes Q from its cluster state; drivers read this to build the
	// initial state.
	Partitions int
	// N is the replication factor. The core takes it from State or Ring
	// when given, and needs it here only when neither is; it is never
	// defaulted for the core, which must not guess where keys live.
	N int
	// R and W are the cluster's default quorums (1..N): those of requests
	// that name none. Zero means a majority of N (see Majority). They can
	// change at run time (Node.SetDefaults).
	R, W int
	// RequestTimeout bounds a request whose client gave none.
	RequestTimeout time.Duration
	// MaxKeySize and MaxValueSize bound client requests (bytes).
	MaxKeySize, MaxValueSize int
	// ReplicaTimeout is how long a coordinator waits for a preference-list
	// node to acknowledge a write before it also sends the write, with a
	// hint, to the next fallback (sloppy quorum).
	ReplicaTimeout time.Duration
	// HintRetry is how often a node re-offers the hints it holds for nodes
	// it believes alive (an acknowledgement may have been lost, or the node
	// restarted faster than the failure detector noticed).
	HintRetry time.Duration
	// HintBatch bounds the hints in flight to one node.
	HintBatch int
	// MaxHintBytes bounds the hints this node holds for other nodes, in
	// bytes of storage keys and encoded objects. A hint that would pass
	// it is refused: the write is not stored here, the coordinator counts
	// a failure (the write then fails its quorum unless other nodes make
	// up W), and the primary gets the write later from anti-entropy with
	// the replicas that took it. Without a bound, a long outage would fill
	// its fallbacks' disks with hints, and a node whose disk is full stops
	// (a failed write-ahead-log write is fatal): one dead node would take
	// the others down with it. Negative means no bound.
	MaxHintBytes int64
	// AEInterval is how often a node starts an anti-entropy exchange of one
	// partition with one other replica. Negative disables anti-entropy.
	AEInterval time.Duration
	// AETimeout abandons an exchange (or a reaping round) whose peer
	// stopped answering.
	AETimeout time.Duration
	// AEMaxKeys bounds the objects each side sends per exchange: the
	// throttle that keeps repair traffic from crowding out clients.
	AEMaxKeys int
	// TombstoneGrace is how old a tombstone must be before it may be
	// reaped (once every member agrees). Negative disables reaping.
	TombstoneGrace time.Duration
	// ReapInterval is how often a node looks for tombstones to reap in one
	// of the partitions it leads.
	ReapInterval time.Duration
	// LWW makes the cluster last-write-wins: every merge keeps only the
	// sibling with the newest coordinator timestamp. It silently discards
	// concurrent writes and exists only as an explicit, documented choice
	// (and as the negative control of the simulator's checker).
	LWW bool
	// TreeLeaves is the number of leaf buckets per partition's Merkle tree
	// (a power of two).
	TreeLeaves int
	// SiblingWarn and MaxSiblings bound a key's siblings (values and
	// tombstones of concurrent writes), as Riak's warn_siblings and
	// max_siblings do. Above SiblingWarn a write succeeds with a warning
	// (Reply.ManySiblings, which the HTTP and RESP layers turn into a
	// header and a metric);
	// a write that would leave more than MaxSiblings, and more than the
	// key had, is refused with CodeTooManySiblings and changes nothing:
	// the client must read and resolve first. Nothing acknowledged is ever
	// dropped to stay under the cap.
	SiblingWarn, MaxSiblings int
	// MaxContextSize bounds the encoded context (dvv.EncodeContext) of a
	// key's version, in bytes: a write that would give the key a larger
	// one is refused (CodeBadRequest), so that every context a node hands
	// out fits a client's header limits and is accepted back.
	MaxContextSize int
}

// DefaultConfig is for a small real cluster on a LAN: a handful to a few
// dozen nodes, round trips well under a millisecond, a failure detector
// that takes seconds. It leaves the identity fields (ID, Actor, OpIDBase,
// State, Ring) to the driver.
func DefaultConfig() Config {
	return Config{
		Partitions: 256, // DESIGN's server Q: several partitions per node for an even claim up to ~64 nodes, and room to grow, since Q never changes
		N:          3,   // survives one node down with majority quorums of 2 (the paper's common (3,2,2))
		R:          0,   // a majority of N: every read overlaps every acknowledged write (R+W > N)
		W:          0,   // a majority of N: a write survives the loss of any minority of its replicas

		RequestTimeout: 5 * time.Second, // a quorum across one slow replica and a hinted fallback
		MaxKeySize:     1 << 10,         // keys name things, they are not data
		MaxValueSize:   1 << 20,         // Dynamo's objects are small; bigger ones belong in a blob store

		ReplicaTimeout: time.Second,      // silence before a fallback takes the write (sloppy quorum): a thousand LAN round trips, so a merely slow replica is not hinted around
		HintRetry:      5 * time.Second,  // 5 × ReplicaTimeout: re-offer hints whose ack was lost, or to a fast restarter, without re-sending what is merely slow
		HintBatch:      64,               // a returning node gets its hints at a pace it can absorb beside its clients
		MaxHintBytes:   1 << 30,          // room for about a million small writes to dead nodes; an outage longer than that is anti-entropy's to repair
		AEInterval:     time.Second,      // one partition pair per interval: repair is background work
		AETimeout:      10 * time.Second, // 10 × AEInterval: a peer that stopped answering releases the exchange
		AEMaxKeys:      1000,             // the repair throttle: at most ~1000 keys/s at one exchange a second
		TreeLeaves:     1024,             // a diff of a few keys ships a few buckets, while a tree stays ~1024 hashes per partition
		TombstoneGrace: 10 * time.Minute, // longer than any hint or handoff is expected to wait, so a reaped tombstone cannot meet an older value again
		ReapInterval:   10 * time.Second, // reaping is rarer than repair: it waits out the grace anyway

		SiblingWarn:    25,   // Riak's warn_siblings: more means writers that never read
		MaxSiblings:    100,  // Riak's max_siblings: beyond it every read grows without bound
		MaxContextSize: 6000, // as a header token (base64url plus a 4-byte key tag: 8006 characters) it fits httpapi's 8 KiB MaxContextHeaderSize, so every context handed out is accepted back
	}
}

// LabConfig is DefaultConfig fast enough to watch on one machine (a
// fallback after 200 ms of silence, anti-entropy five times a second) and
// slow enough not to flap on a loaded 2-core CI runner. `dynago dev`, the
// end-to-end tests and the simulator run it.
func LabConfig() Config {
	c := DefaultConfig()
	c.Partitions = 64 // DESIGN's lab Q: a few nodes on one machine; rings and trees small enough to read
	c.ReplicaTimeout = 200 * time.Millisecond
	c.AEInterval = 200 * time.Millisecond
	c.HintRetry = 5 * c.ReplicaTimeout // the daemon's ratio, as in DefaultConfig
	c.AETimeout = 10 * c.AEInterval    // likewise
	return c
}

// Majority returns the smallest quorum of n replicas that overlaps every
// other one: the default R and W.
func Majority(n int) int { return n/2 + 1 }

// WithDefaults returns c with every zero setting taken from d (usually a
// preset): the identity fields (ID, Actor, OpIDBase, State, Ring) are
// never filled, and LWW is on when either asks for it. A negative
// AEInterval, TombstoneGrace or MaxHintBytes is a setting (disabled), not
// a zero.
func (c Config) WithDefaults(d Config) Config {
	fill := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	fillD := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	fill(&c.Partitions, d.Partitions)
	fill(&c.N, d.N)
	fill(&c.R, d.R)
	fill(&c.W, d.W)
	fillD(&c.RequestTimeout, d.RequestTimeout)
	fill(&c.MaxKeySize, d.MaxKeySize)
	fill(&c.MaxValueSize, d.MaxValueSize)
	fillD(&c.ReplicaTimeout, d.ReplicaTimeout)
	fillD(&c.HintRetry, d.HintRetry)
	fill(&c.HintBatch, d.HintBatch)
	if c.MaxHintBytes == 0 {
		c.MaxHintBytes = d.MaxHintBytes
	}
	fillD(&c.AEInterval, d.AEInterval)
	fillD(&c.AETimeout, d.AETimeout)
	fill(&c.AEMaxKeys, d.AEMaxKeys)
	fillD(&c.TombstoneGrace, d.TombstoneGrace)
	fillD(&c.ReapInterval, d.ReapInterval)
	fill(&c.TreeLeaves, d.TreeLeaves)
	fill(&c.SiblingWarn, d.SiblingWarn)
	fill(&c.MaxSiblings, d.MaxSiblings)
	fill(&c.MaxContextSize, d.MaxContextSize)
	c.LWW = c.LWW || d.LWW
	return c
}

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("node: invalid config")

// ErrBadQuorum reports an R or W outside 1..N, in a request or a change
// of the defaults.
var ErrBadQuorum = coord.ErrBadQuorum

// validate fills the zero settings from DefaultConfig and rejects what the
// core cannot run with.
func (c *Config) validate() error {
	if c.ID == "" {
		return fmt.Errorf("%w: empty ID", ErrConfig)
	}
	if c.State == nil && c.Ring != nil {
		c.State = &cluster.State{Version: max(c.Ring.Version(), 1), Partitions: c.Ring.Partitions(), N: c.Ring.N(), Owners: c.Ring.Owners()}
	}
	if c.State != nil {
		if err := c.State.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
		c.N = c.State.N
	}
	if c.N < 1 {
		return fmt.Errorf("%w: no state, no ring and no N", ErrConfig)
	}
	if c.Actor == "" {
		return fmt.Errorf("%w: empty actor", ErrConfig)
	}
	*c = c.WithDefaults(DefaultConfig())
	if c.R == 0 {
		c.R = Majority(c.N)
	}
	if c.W == 0 {
		c.W = Majority(c.N)
	}
	if err := coord.CheckQuorum("r", c.R, c.N); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := coord.CheckQuorum("w", c.W, c.N); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	// The rest only guards against negative sizes and durations that the
	// zero-filling above lets through.
	for _, v := range []struct {
		name string
		ok   bool
	}{
		{"RequestTimeout", c.RequestTimeout > 0}, {"MaxKeySize", c.MaxKeySize > 0}, {"MaxValueSize", c.MaxValueSize > 0},
		{"ReplicaTimeout", c.ReplicaTimeout > 0}, {"HintRetry", c.HintRetry > 0}, {"HintBatch", c.HintBatch > 0},
		{"AETimeout", c.AETimeout > 0}, {"AEMaxKeys", c.AEMaxKeys > 0}, {"ReapInterval", c.ReapInterval > 0},
		{"SiblingWarn", c.SiblingWarn > 0}, {"MaxSiblings", c.MaxSiblings > 0}, {"MaxContextSize", c.MaxContextSize > 0},
	} {
		if !v.ok {
			return fmt.Errorf("%w: %s must be positive", ErrConfig, v.name)
		}
	}
	if _, err := merkle.New(merkle.Config{Leaves: c.TreeLeaves}); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}
