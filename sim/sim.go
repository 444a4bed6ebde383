package sim

import (
	"cmp"
	"container/heap"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/dynago/dynago/cluster"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// Config describes a simulated cluster. The nodes run node.LabConfig, the
// preset of `dynago dev`, changed only where a field below names a value;
// the defaults below that differ from the lab's are the simulator's own,
// each for the reason given.
type Config struct {
	Seed       uint64
	Nodes      int // default 5; nodes are named n1..nM
	Partitions int // Q; default the lab's (64)
	N, R, W    int // defaults the lab's: N=3, R and W a majority

	// Latency draws one message's one-way delay. Default: uniform 1–5 ms.
	Latency func(r *rand.Rand) time.Duration
	// Loss is the probability that a message is dropped (0..1).
	Loss float64
	// Fsync draws one fsync's duration. Default: uniform 0.5–2 ms.
	Fsync func(r *rand.Rand) time.Duration
	// Tick is how often each node's core is ticked. Default 1 ms.
	Tick time.Duration
	// RequestTimeout is the core's default request timeout. Default 1 s.
	RequestTimeout time.Duration
	// ReplicaTimeout is how long a coordinator waits for a primary before
	// writing to a fallback. Default 100 ms.
	ReplicaTimeout time.Duration
	// DetectDelay is how long the simulated failure detector takes to tell
	// every other node that a node crashed or came back. Default 500 ms.
	DetectDelay time.Duration
	// AEInterval is each node's anti-entropy interval. Default 100 ms.
	AEInterval time.Duration
	// LWW runs the cluster in last-write-wins mode (see node.Config.LWW).
	LWW bool
	// TombstoneGrace is the age at which tombstones may be reaped. Default
	// 1 s, so that a seeded run of a few virtual seconds reaps (and the
	// checker can catch a resurrection); negative disables reaping.
	TombstoneGrace time.Duration
	// ReapInterval is how often a node tries to reap one partition it
	// leads. Default 2 × AEInterval, for the same reason (the lab's 10 s
	// would reach a given partition only after minutes).
	ReapInterval time.Duration
	// Trace, when set, receives one line per simulated event.
	Trace io.Writer
}

func (c *Config) defaults() {
	if c.Nodes == 0 {
		c.Nodes = 5
	}
	lab := node.LabConfig()
	c.Partitions, c.N = cmp.Or(c.Partitions, lab.Partitions), cmp.Or(c.N, lab.N)
	c.R, c.W = cmp.Or(c.R, node.Majority(c.N)), cmp.Or(c.W, node.Majority(c.N))
	if c.Latency == nil {
		c.Latency = Uniform(time.Millisecond, 5*time.Millisecond)
	}
	if c.Fsync == nil {
		c.Fsync = Uniform(500*time.Microsecond, 2*time.Millisecond)
	}
	if c.Tick == 0 {
		c.Tick = time.Millisecond
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = time.Second
	}
	if c.ReplicaTimeout == 0 {
		c.ReplicaTimeout = 100 * time.Millisecond
	}
	if c.DetectDelay == 0 {
		c.DetectDelay = 500 * time.Millisecond
	}
	if c.AEInterval == 0 {
		c.AEInterval = 100 * time.Millisecond
	}
	if c.TombstoneGrace == 0 {
		c.TombstoneGrace = time.Second
	}
	if c.ReapInterval == 0 && c.AEInterval > 0 {
		c.ReapInterval = 2 * c.AEInterval
	}
}

// Uniform returns a latency distribution uniform in [lo, hi].
func Uniform(lo, hi time.Duration) func(*rand.Rand) time.Duration {
	return func(r *rand.Rand) time.Duration { return lo + time.Duration(r.Int64N(int64(hi-lo)+1)) }
}

// Fixed returns a constant latency distribution.
func Fixed(d time.Duration) func(*rand.Rand) time.Duration {
	return func(*rand.Rand) time.Duration { return d }
}

// ErrTimeout reports that the simulation ran out of virtual time.
var ErrTimeout = errors.New("sim: virtual time limit reached")

// simEpoch is the virtual clock's origin; any fixed instant works.
var simEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// simNode is one node: its core, its disk, and outputs waiting for fsync.
type simNode struct {
	id       ring.NodeID
	founding bool // in the initial ring; a node added later joins by gossip
	core     *node.Node
	disk     *storage.Mem
	up       bool
	life     int       // incremented on crash; stale events of an earlier life are ignored
	synced   time.Time // when the last scheduled fsync completes
}

// Cluster is a simulated dynago cluster.
type Cluster struct {
	cfg      Config
	rng      *rand.Rand
	now      time.Time
	ring     *ring.Ring
	nodes    map[ring.NodeID]*simNode
	order    []ring.NodeID
	queue    eventQueue
	seq      uint64
	nextReq  uint64
	waiting  map[uint64]func(node.Reply)
	cut      map[[2]ring.NodeID]bool
	nextTick time.Time
	// held parks the cluster states gossip brings a node whose gossip is
	// held (HoldGossip), in arrival order.
	held map[ring.NodeID][]*cluster.State
	// holds select messages to park instead of sending; parked keeps
	// them until a script delivers or drops them (watch.go).
	holds  []MsgFilter
	parked []node.Message
	// watch, when set, sees every event as a value (scenario scripts).
	watch func(seen)

	// Stats.
	Delivered, Dropped int
}

// New builds a cluster and boots every node.
func New(cfg Config) (*Cluster, error) { return build(cfg, nil) }

// build is New with a watcher, which must see the first boots.
func build(cfg Config, watch func(seen)) (*Cluster, error) {
	cfg.defaults()
	ids := make([]ring.NodeID, cfg.Nodes)
	for i := range ids {
		ids[i] = ring.NodeID(fmt.Sprintf("n%d", i+1))
	}
	rg, err := ring.New(ring.Config{Partitions: cfg.Partitions, N: cfg.N}, ids)
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		cfg:     cfg,
		rng:     rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		now:     simEpoch,
		ring:    rg,
		nodes:   map[ring.NodeID]*simNode{},
		order:   ids,
		waiting: map[uint64]func(node.Reply){},
		cut:     map[[2]ring.NodeID]bool{},
		held:    map[ring.NodeID][]*cluster.State{},
		watch:   watch,
	}
	c.nextTick = c.now
	for _, id := range ids {
		sn := &simNode{id: id, disk: storage.NewMem(), founding: true}
		c.nodes[id] = sn
		if err := c.boot(sn); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// boot starts a node's core on its disk, as a process start would.
func (c *Cluster) boot(sn *simNode) error {
	// Simulated nodes never stop cleanly: every boot is after a crash (or
	// the first), so every boot draws a new epoch, as the daemon's would.
	epoch, _, err := storage.StartEpoch(sn.disk, randReader{c.rng})
	if err != nil {
		return err
	}
	// Like the daemon: the persisted cluster state if any, else the initial
	// ring for a founding node, else nothing until gossip brings a state.
	var st *cluster.State
	if raw, err := sn.disk.Get(storage.MetaKey("cluster")); err == nil {
		s, err := cluster.Decode(raw)
		if err != nil {
			return err
		}
		st = &s
	} else if sn.founding {
		s := cluster.State{Version: 1, Partitions: c.ring.Partitions(), N: c.ring.N(), Owners: c.ring.Owners()}
		st = &s
	}
	// The lab preset, changed only where Config names a value: the same
	// hint rhythm, Merkle shape and reaping cadence as `dynago dev`'s
	// daemons, not a simulator's own copy of them.
	core, err := node.New(node.Config{
		ID: sn.id, Actor: node.ActorFor(sn.id, epoch), OpIDBase: c.rng.Uint64(), State: st,
		N: c.cfg.N, R: c.cfg.R, W: c.cfg.W, LWW: c.cfg.LWW,
		RequestTimeout: c.cfg.RequestTimeout, ReplicaTimeout: c.cfg.ReplicaTimeout,
		AEInterval: c.cfg.AEInterval, TombstoneGrace: c.cfg.TombstoneGrace, ReapInterval: c.cfg.ReapInterval,
	}.WithDefaults(node.LabConfig()), sn.disk)
	if err != nil {
		return err
	}
	// A booting node learns the others' liveness from the detector at once.
	for _, id := range c.order {
		if o := c.nodes[id]; o != nil && !o.up && id != sn.id {
			core.SetStatus(id, node.Dead)
		}
	}
	core.Tick(c.now)
	sn.core, sn.up, sn.synced = core, true, c.now
	c.see(seen{kind: seenBoot, node: sn.id, note: node.ActorFor(sn.id, epoch)})
	// Gossip's push/pull on (re)join: the newest state an up node holds
	// reaches the booting node after one network delay.
	if best := c.newestState(); best != nil {
		c.schedule(c.now.Add(c.cfg.Latency(c.rng)), event{kind: evState, to: sn.id, life: sn.life, state: best})
	}
	return nil
}

// newestState returns the highest-versioned cluster state of any up node.
func (c *Cluster) newestState() *cluster.State {
	var best *cluster.State
	for _, id := range c.order {
		if sn := c.nodes[id]; sn != nil && sn.up && sn.core != nil {
			if st := sn.core.State(); st.Version > 0 && (best == nil || st.Version > best.Version) {
				best = &st
			}
		}
	}
	return best
}

// Now returns the virtual time elapsed since the start.
func (c *Cluster) Now() time.Duration { return c.now.Sub(simEpoch) }

// Ring returns the newest ring any up node routes by (the initial ring
// until a membership change).
func (c *Cluster) Ring() *ring.Ring {
	if st := c.newestState(); st != nil {
		if r, err := st.Ring(); err == nil {
			return r
		}
	}
	return c.ring
}

// AddNode boots a new, empty node that joins by gossip: it owns nothing
// until a commit hands it partitions.
func (c *Cluster) AddNode() (ring.NodeID, error) {
	id := ring.NodeID(fmt.Sprintf("n%d", len(c.order)+1))
	sn := &simNode{id: id, disk: storage.NewMem()}
	c.nodes[id] = sn
	c.order = append(c.order, id)
	c.notef("%s added", id)
	return id, c.boot(sn)
}

// alive lists the up nodes, as a failure detector would report them.
func (c *Cluster) alive() []ring.NodeID {
	var out []ring.NodeID
	for _, id := range c.order {
		if c.nodes[id].up {
			out = append(out, id)
		}
	}
	return out
}

// Commit runs an operator's `admin commit` on node via.
func (c *Cluster) Commit(via ring.NodeID) (node.Plan, error) {
	sn := c.nodes[via]
	if !sn.up {
		return node.Plan{}, fmt.Errorf("sim: %s is down", via)
	}
	pl, err := sn.core.Commit(c.now, c.alive())
	c.flush(sn)
	return pl, err
}

// Abort runs an operator's `admin abort` on node via.
func (c *Cluster) Abort(via ring.NodeID) (node.HandoffProgress, error) {
	sn := c.nodes[via]
	if !sn.up {
		return node.HandoffProgress{}, fmt.Errorf("sim: %s is down", via)
	}
	hp, err := sn.core.Abort(c.now)
	c.flush(sn)
	return hp, err
}

// StageLeave runs an operator's `admin leave id` on node via.
func (c *Cluster) StageLeave(via, id ring.NodeID) error {
	sn := c.nodes[via]
	if !sn.up {
		return fmt.Errorf("sim: %s is down", via)
	}
	err := sn.core.StageLeave(c.now, id)
	c.flush(sn)
	return err
}

// InTransition reports whether any up node still sees a membership change
// running.
func (c *Cluster) InTransition() bool {
	for _, id := range c.order {
		if sn := c.nodes[id]; sn.up && sn.core.State().InTransition() {
			return true
		}
	}
	return false
}

// Nodes returns the node IDs in order.
func (c *Cluster) Nodes() []ring.NodeID { return slices.Clone(c.order) }

// Node returns a node's core, for inspection; nil while it is down.
func (c *Cluster) Node(id ring.NodeID) *node.Node {
	if sn := c.nodes[id]; sn != nil && sn.up {
		return sn.core
	}
	return nil
}

// Disk returns a node's simulated disk.
func (c *Cluster) Disk(id ring.NodeID) *storage.Mem { return c.nodes[id].disk }

func (c *Cluster) tracef(format string, args ...any) {
	if c.cfg.Trace != nil {
		fmt.Fprintf(c.cfg.Trace, "%10.3fms "+format+"\n", append([]any{float64(c.Now().Microseconds()) / 1000}, args...)...)
	}
}

// Submit hands a client request to node via; done is called with the reply
// (in virtual time). The request ID is assigned here.
func (c *Cluster) Submit(via ring.NodeID, req node.Request, done func(node.Reply)) {
	c.nextReq++
	req.ID = c.nextReq
	c.waiting[req.ID] = done
	c.schedule(c.now, event{kind: evPropose, to: via, req: req})
}

// Do submits a request and runs the simulation until it is answered.
func (c *Cluster) Do(via ring.NodeID, req node.Request) (node.Reply, error) {
	var (
		got   node.Reply
		reply bool
	)
	c.Submit(via, req, func(r node.Reply) { got, reply = r, true })
	limit := req.Timeout
	if limit == 0 {
		limit = c.cfg.RequestTimeout
	}
	err := c.RunUntil(func() bool { return reply }, 2*limit+time.Second)
	return got, err
}

// At schedules f to run at virtual time t (since the start; a time
// already past means now), on the cluster's one event queue: a driver's
// workload and fault schedule interleave with the messages, fsyncs and
// detector reports by time, then by scheduling order, so a seed replays
// exactly. f runs inside whichever Run call reaches t, and may call any
// Cluster method, At included.
func (c *Cluster) At(t time.Duration, f func()) {
	at := simEpoch.Add(t)
	if at.Before(c.now) {
		at = c.now
	}
	c.schedule(at, event{kind: evCall, call: f})
}

// RunFor advances virtual time by d, processing every event on the way.
func (c *Cluster) RunFor(d time.Duration) {
	end := c.now.Add(d)
	for c.step(end) {
	}
	c.now = end
}

// RunUntil processes events until cond holds or limit of virtual time passes.
func (c *Cluster) RunUntil(cond func() bool, limit time.Duration) error {
	end := c.now.Add(limit)
	for !cond() {
		if !c.step(end) {
			c.now = end
			if cond() {
				return nil
			}
			return ErrTimeout
		}
	}
	return nil
}

// Settle runs until no operation is in flight on any node and nothing is
// queued (no message in the network, no pending fsync or detector report,
// no call scheduled with At), or limit passes.
func (c *Cluster) Settle(limit time.Duration) error {
	return c.RunUntil(func() bool {
		if len(c.queue) > 0 {
			return false
		}
		for _, id := range c.order {
			if sn := c.nodes[id]; sn.up && sn.core.InFlight() > 0 {
				return false
			}
		}
		return true
	}, limit)
}

// step processes the next event (or tick) at or before end. It returns
// false when nothing is left to do before end.
func (c *Cluster) step(end time.Time) bool {
	nextEv := time.Time{}
	if len(c.queue) > 0 {
		nextEv = c.queue[0].at
	}
	// Every up node is ticked every Tick, as the daemon's ticker does:
	// timeouts, hint sweeps and anti-entropy all run on ticks.
	if c.nextTick.Before(c.now) {
		c.nextTick = c.now
	}
	if !c.nextTick.After(end) && (nextEv.IsZero() || c.nextTick.Before(nextEv)) {
		c.now = c.nextTick
		c.nextTick = c.nextTick.Add(c.cfg.Tick)
		for _, id := range c.order {
			if sn := c.nodes[id]; sn.up {
				sn.core.Tick(c.now)
				c.flush(sn)
			}
		}
		return true
	}
	if nextEv.IsZero() || nextEv.After(end) {
		return false
	}
	ev := heap.Pop(&c.queue).(event)
	c.now = ev.at
	c.handle(ev)
	return true
}

func (c *Cluster) schedule(at time.Time, ev event) {
	c.seq++
	ev.at, ev.seq = at, c.seq
	heap.Push(&c.queue, ev)
}

func (c *Cluster) handle(ev event) {
	switch ev.kind {
	case evCall:
		ev.call()
	case evPropose:
		sn := c.nodes[ev.to]
		if sn == nil || !sn.up {
			c.answer(node.Reply{ID: ev.req.ID, Code: node.CodeUnavailable, Err: "sim: node is down"})
			return
		}
		c.tracef("%s <- client %s %q", ev.to, ev.req.Op, ev.req.Key)
		// The simulator traces every request: its checks and scenario
		// scripts read how a request was served, and it is not timed.
		req := ev.req
		req.Trace = true
		sn.core.Propose(c.now, req)
		c.flush(sn)
	case evDeliver:
		sn := c.nodes[ev.to]
		if sn == nil || !sn.up || c.cut[[2]ring.NodeID{ev.msg.From, ev.to}] {
			c.Dropped++
			c.tracef("%s x- %s %s dropped", ev.to, ev.msg.From, ev.msg.Type)
			c.see(seen{kind: seenDrop, node: ev.to, msg: ev.msg})
			return
		}
		c.Delivered++
		c.tracef("%s <- %s %s %q", ev.to, ev.msg.From, ev.msg.Type, ev.msg.Key)
		c.see(seen{kind: seenDeliver, node: ev.to, msg: ev.msg})
		sn.core.Step(c.now, ev.msg)
		c.flush(sn)
	case evSynced:
		sn := c.nodes[ev.to]
		if sn.life != ev.life {
			return // the node crashed before this fsync completed
		}
		if err := sn.disk.Sync(); err != nil {
			panic(fmt.Sprintf("sim: in-memory sync failed: %v", err))
		}
		c.release(sn, ev.ready)
	case evState:
		sn := c.nodes[ev.to]
		if !sn.up || sn.life != ev.life {
			return
		}
		if parked, ok := c.held[ev.to]; ok {
			c.held[ev.to] = append(parked, ev.state)
			c.notef("%s gossip held: state v%d parked", ev.to, ev.state.Version)
			return
		}
		if err := sn.core.SetState(c.now, *ev.state); err != nil {
			panic(fmt.Sprintf("sim: %s rejected a cluster state: %v", ev.to, err))
		}
		c.flush(sn)
	case evStatus:
		if c.nodes[ev.to].life != ev.life {
			return // the node changed state again before detection
		}
		c.notef("detector: %s is %s", ev.to, ev.status)
		for _, id := range c.order {
			if o := c.nodes[id]; o.up && id != ev.to {
				o.core.SetStatus(ev.to, ev.status)
				c.flush(o)
			}
		}
	}
}

// flush collects a core's Ready: writes go to the disk at once (visible, not
// durable) and an fsync is scheduled; messages and replies leave when it
// completes, after every earlier fsync — the core's durability rule.
func (c *Cluster) flush(sn *simNode) {
	if !sn.core.HasReady() {
		return
	}
	rd := sn.core.Ready()
	if rd.Err != nil {
		// The simulated disk is in memory and never fails a read: a core
		// that reports one has a bug, as an in-memory apply failure would.
		panic(fmt.Sprintf("sim: %s stopped on a storage read error: %v", sn.id, rd.Err))
	}
	if len(rd.Writes) > 0 {
		if err := sn.disk.Apply(rd.Batch(), false); err != nil {
			panic(fmt.Sprintf("sim: in-memory apply failed: %v", err))
		}
		c.see(seen{kind: seenWrites, node: sn.id, writes: rd.Writes})
		done := c.now.Add(c.cfg.Fsync(c.rng))
		if done.Before(sn.synced) {
			done = sn.synced
		}
		sn.synced = done
	}
	sn.core.Advance()
	c.transmit(rd.Requests) // requests do not wait for the fsync
	rd.Requests = nil
	if !sn.synced.After(c.now) {
		c.release(sn, rd)
		return
	}
	c.schedule(sn.synced, event{kind: evSynced, to: sn.id, life: sn.life, ready: rd})
}

// release sends a Ready's messages into the network, answers clients and
// writes the core's events to the trace: like the messages, they wait for
// the fsync, so the trace never tells of a hint a crash then lost.
func (c *Cluster) release(sn *simNode, rd node.Ready) {
	c.transmit(rd.Messages)
	for _, e := range rd.Events {
		c.tracef("%s %s", sn.id, e)
		c.see(seen{kind: seenEvent, node: sn.id, event: e})
	}
	for _, r := range rd.Replies {
		c.answer(r)
	}
	if rd.State != nil {
		c.see(seen{kind: seenState, node: sn.id, state: rd.State})
		// Gossip: every other node hears of the new state after a delay.
		for _, id := range c.order {
			if id != sn.id {
				c.schedule(c.now.Add(c.cfg.Latency(c.rng)), event{kind: evState, to: id, life: c.nodes[id].life, state: rd.State})
			}
		}
	}
}

// transmit puts messages on the simulated network.
func (c *Cluster) transmit(msgs []node.Message) {
	for _, m := range msgs {
		if c.cfg.Loss > 0 && c.rng.Float64() < c.cfg.Loss {
			c.Dropped++
			c.tracef("%s -x %s %s lost", m.From, m.To, m.Type)
			c.see(seen{kind: seenSend, msg: m, note: fateLost})
			continue
		}
		if c.cut[[2]ring.NodeID{m.From, m.To}] {
			c.Dropped++
			c.tracef("%s -x %s %s partitioned", m.From, m.To, m.Type)
			c.see(seen{kind: seenSend, msg: m, note: fatePartitioned})
			continue
		}
		if c.hold(m) {
			c.tracef("%s -> %s %s held", m.From, m.To, m.Type)
			c.see(seen{kind: seenSend, msg: m, note: fateHeld})
			continue
		}
		c.see(seen{kind: seenSend, msg: m, note: fateSent})
		c.schedule(c.now.Add(c.cfg.Latency(c.rng)), event{kind: evDeliver, to: m.To, msg: m})
	}
}

func (c *Cluster) answer(r node.Reply) {
	done, ok := c.waiting[r.ID]
	if !ok {
		return
	}
	delete(c.waiting, r.ID)
	c.tracef("client <- reply %d %s acks=%d/%d", r.ID, r.Code, r.Acks, r.Required)
	done(r)
}

// Crash stops a node as a power loss would: unsynced writes are lost, and
// so is every reply or message waiting for them.
func (c *Cluster) Crash(id ring.NodeID) {
	sn := c.nodes[id]
	if !sn.up {
		return
	}
	c.notef("%s crashed", id)
	sn.up = false
	sn.life++
	sn.disk.Crash()
	c.schedule(c.now.Add(c.cfg.DetectDelay), event{kind: evStatus, to: id, life: sn.life, status: node.Dead})
}

// Restart boots a crashed node on what its disk still holds.
func (c *Cluster) Restart(id ring.NodeID) error {
	sn := c.nodes[id]
	if sn.up {
		return nil
	}
	c.notef("%s restarted", id)
	if err := c.boot(sn); err != nil {
		return err
	}
	c.schedule(c.now.Add(c.cfg.DetectDelay), event{kind: evStatus, to: id, life: sn.life, status: node.Alive})
	return nil
}

// Wipe crashes a node and erases its disk; Restart then boots it empty,
// with a new epoch.
func (c *Cluster) Wipe(id ring.NodeID) {
	c.Crash(id)
	c.nodes[id].disk.Wipe()
}

// Believe makes node id's failure detector report about with status s, as
// a lagging detector would (a restarted daemon's memberlist has not heard
// from its peers yet): it holds until the simulated detector's next report
// on about.
func (c *Cluster) Believe(id, about ring.NodeID, s node.Status) {
	if sn := c.nodes[id]; sn != nil && sn.up {
		c.notef("%s believes %s is %s", id, about, s)
		sn.core.SetStatus(about, s)
		c.flush(sn)
	}
}

// Partition cuts every link between the nodes of a and the nodes of b, in
// both directions.
func (c *Cluster) Partition(a, b []ring.NodeID) {
	for _, x := range a {
		for _, y := range b {
			c.cut[[2]ring.NodeID{x, y}] = true
			c.cut[[2]ring.NodeID{y, x}] = true
		}
	}
}

// Heal restores every link.
func (c *Cluster) Heal() { clear(c.cut) }

// HoldGossip makes node id deaf to cluster-state gossip until
// ReleaseGossip: the states that reach it meanwhile are parked. Its
// messages and the failure detector are unaffected, so it keeps serving
// by the ring it has — a node that hears of a ring change late, as a
// loaded daemon's gossip can.
func (c *Cluster) HoldGossip(id ring.NodeID) {
	if _, ok := c.held[id]; !ok {
		c.held[id] = []*cluster.State{}
	}
}

// ReleaseGossip delivers the states parked by HoldGossip, in arrival
// order, and lets gossip reach id again.
func (c *Cluster) ReleaseGossip(id ring.NodeID) {
	parked, ok := c.held[id]
	if !ok {
		return
	}
	delete(c.held, id)
	for _, st := range parked {
		c.schedule(c.now, event{kind: evState, to: id, life: c.nodes[id].life, state: st})
	}
}

// randReader adapts the seeded source to io.Reader (for epochs).
type randReader struct{ r *rand.Rand }

func (rr randReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(rr.r.Uint32())
	}
	return len(p), nil
}

type evKind uint8

const (
	evPropose evKind = iota
	evDeliver
	evSynced
	evStatus // the failure detector reports node `to` with status
	evState  // gossip brings node `to` a cluster state
	evCall   // a driver's action, scheduled with At
)

type event struct {
	at     time.Time
	seq    uint64
	kind   evKind
	to     ring.NodeID
	life   int
	req    node.Request
	msg    node.Message
	ready  node.Ready
	status node.Status
	state  *cluster.State
	call   func()
}

// eventQueue orders events by time, then by scheduling order, so that
// simultaneous events are processed deterministically.
type eventQueue []event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(event)) }
func (q *eventQueue) Pop() any {
	old := *q
	ev := old[len(old)-1]
	*q = old[:len(old)-1]
	return ev
}
