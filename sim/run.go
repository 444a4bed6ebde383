package sim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/dynago/dynago/dvv"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// Fault kinds a run may inject (RunOptions.Faults).
const (
	FaultPartition = "partition" // split the nodes in two; heal after 50–500 ms
	FaultCrash     = "crash"     // power-fail one node (unsynced writes lost)
	FaultRestart   = "restart"   // restart crashed nodes after 100 ms–1 s (else at the end)
	FaultWipe      = "wipe"      // once per run: crash a node, erase its disk, restart it
	FaultJoin      = "join"      // once per run: a new node joins (plan + commit) while clients write
	FaultLeave     = "leave"     // once per run: a member leaves (stage + commit) while clients write
	FaultOutage    = "outage"    // N nodes power-fail together for 300 ms–2 s, then restart: whole preference lists down
)

// ErrBadRunOptions is wrapped by RunSeed's errors about its options.
var ErrBadRunOptions = errors.New("sim: bad run options")

// convergenceLimit is how much virtual time a run waits after healing for
// the replicas to converge before it reports converged=false.
const convergenceLimit = 120 * time.Second

// RunOptions configures RunSeed: a closed-loop client workload on a small
// keyspace under a seeded fault schedule. Zero fields take the defaults
// noted beside them.
type RunOptions struct {
	Seed       uint64
	Nodes      int           // default 5
	Clients    int           // concurrent closed-loop clients; default 4
	Keys       int           // keyspace size, small so that writes conflict; default 8
	N, R, W    int           // defaults 3, 2, 2
	Partitions int           // Q; default 64
	Duration   time.Duration // virtual time of workload and faults; default 10 s
	Faults     []string      // Fault* kinds to inject; none by default
	LWW        bool          // run the cluster in last-write-wins mode (negative control)
	// Sessions makes every client a session carrying a session token
	// (X-Dynago-Session's), so Result.Failed counts session violations.
	// Without it the session checker still runs, as the control.
	Sessions bool
	Trace    io.Writer // receives the simulator's and the run's event trace
}

func (o *RunOptions) validate() error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.Nodes, 5)
	def(&o.Clients, 4)
	def(&o.Keys, 8)
	def(&o.N, 3)
	def(&o.R, 2)
	def(&o.W, 2)
	def(&o.Partitions, 64)
	if o.Duration == 0 {
		// Long enough for several outages and partitions per seed; a run
		// costs about 0.1 s of CPU, so 200 seeds fit in well under a minute.
		o.Duration = 10 * time.Second
	}
	switch {
	case o.Nodes < 1 || o.Clients < 1 || o.Keys < 1 || o.Duration < 0:
		return fmt.Errorf("%w: nodes, clients and keys must be positive, duration not negative", ErrBadRunOptions)
	case o.N < 1 || o.N > o.Nodes:
		return fmt.Errorf("%w: n=%d must be in 1..nodes (%d)", ErrBadRunOptions, o.N, o.Nodes)
	case o.R < 1 || o.R > o.N || o.W < 1 || o.W > o.N:
		return fmt.Errorf("%w: r=%d and w=%d must be in 1..n (%d)", ErrBadRunOptions, o.R, o.W, o.N)
	}
	for _, f := range o.Faults {
		switch f {
		case FaultPartition, FaultCrash, FaultRestart, FaultWipe, FaultJoin, FaultLeave, FaultOutage:
		default:
			return fmt.Errorf("%w: unknown fault %q (want partition, crash, restart, wipe, join, leave, outage)", ErrBadRunOptions, f)
		}
	}
	return nil
}

func (o *RunOptions) has(fault string) bool { return slices.Contains(o.Faults, fault) }

// Result is what one seeded run found.
type Result struct {
	Seed          uint64
	Acked         int // acknowledged puts and deletes
	Unknown       int // writes of unknown outcome (quorum_failed, or no reply)
	Lost          int // acknowledged puts neither in the final state nor replaced
	Resurrected   int // final live values an acknowledged write had superseded
	Converged     bool
	ConvergenceMs float64 // virtual time from heal to convergence
	// Unanswered counts requests that never got a reply although their
	// entry node stayed up: the core owes every request one reply, so a
	// positive count is a bug and the run cannot converge.
	Unanswered         int
	LostDetails        []string
	ResurrectedDetails []string
	// Session is the session checker's verdict (see session.go).
	Session SessionReport
	// Sessions echoes RunOptions.Sessions: session violations fail the run.
	Sessions bool
}

// Failed reports whether the run broke a guarantee.
func (r Result) Failed() bool {
	return r.Lost > 0 || r.Resurrected > 0 || !r.Converged || (r.Sessions && r.Session.Violations() > 0)
}

// RunSeed runs one seeded simulation: Clients clients issue gets, puts and
// deletes on Keys keys through random nodes for Duration of virtual time
// while the fault schedule runs; then every fault heals, every down node
// restarts, the workload stops, and the run waits (up to 120 s of virtual
// time) for the replicas to converge before checking the final state
// against the history of acknowledged writes (see check).
//
// The same options give the same Result: the cluster, the workload and the
// fault schedule each draw from their own source seeded from Seed.
func RunSeed(o RunOptions) (Result, error) {
	if err := o.validate(); err != nil {
		return Result{}, err
	}
	c, err := New(Config{
		Seed: o.Seed, Nodes: o.Nodes, Partitions: o.Partitions,
		N: o.N, R: o.R, W: o.W, LWW: o.LWW, Trace: o.Trace,
	})
	if err != nil {
		return Result{}, err
	}
	r := &runner{
		o:  o,
		c:  c,
		wl: rand.New(rand.NewPCG(o.Seed, o.Seed^0x5eed_c11e_4750_0001)),
		fr: rand.New(rand.NewPCG(o.Seed, o.Seed^0x5eed_fa01_7500_0002)),
	}
	for i := range o.Keys {
		r.keys = append(r.keys, []byte(fmt.Sprintf("k%d", i)))
	}
	r.scheduleFaults()
	for i := range o.Clients {
		cl := &simClient{id: i + 1, ctx: make([][]byte, o.Keys), sess: newSessionClient(o.Sessions)}
		r.clients = append(r.clients, cl)
		r.at(time.Duration(r.wl.IntN(6))*time.Millisecond, func() { r.issue(cl) })
	}
	r.runWorkload()
	if r.err != nil {
		return Result{}, r.err
	}

	// The end of the schedule: heal, bring everything back, stop issuing.
	r.stopped = true
	c.Heal()
	for _, id := range c.Nodes() {
		if c.Node(id) == nil {
			if err := c.Restart(id); err != nil {
				return Result{}, fmt.Errorf("sim: restarting %s: %w", id, err)
			}
		}
	}
	c.tracef("run: workload stopped, faults healed; waiting for convergence")
	healed := c.Now()
	nextCheck := healed
	cerr := c.RunUntil(func() bool {
		// Checking every partition at every event is wasteful; once per
		// millisecond of virtual time is the resolution we report.
		if c.Now() < nextCheck {
			return false
		}
		nextCheck = c.Now() + time.Millisecond
		return r.open == 0 && r.replicasConverged()
	}, convergenceLimit)

	res := Result{Seed: o.Seed, Converged: cerr == nil, Unanswered: r.open, Session: r.sessions, Sessions: o.Sessions}
	if res.Converged {
		res.ConvergenceMs = float64(c.Now()-healed) / float64(time.Millisecond)
	}
	final, err := r.finalState()
	if err != nil {
		return Result{}, err
	}
	for _, w := range r.writes {
		switch w.outcome {
		case outcomeAcked:
			res.Acked++
		case outcomeUnknown:
			res.Unknown++
		}
	}
	rep := check(r.writes, final)
	res.Lost, res.LostDetails = len(rep.lost), rep.lost
	res.Resurrected, res.ResurrectedDetails = len(rep.resurrected), rep.resurrected
	c.tracef("run: acked=%d unknown=%d lost=%d resurrected=%d converged=%v", res.Acked, res.Unknown, res.Lost, res.Resurrected, res.Converged)
	return res, nil
}

// runner drives one RunSeed: the clients, the fault schedule, and the
// record of what clients were told.
type runner struct {
	o       RunOptions
	c       *Cluster
	wl      *rand.Rand // workload choices
	fr      *rand.Rand // fault schedule
	keys    [][]byte
	clients []*simClient
	stopped bool  // the workload issues no new operations
	err     error // first internal error of a callback
	writes  []*writeRecord
	open    int // client requests neither answered nor orphaned by a crash
	// sessions is the session checker's running verdict.
	sessions SessionReport
}

// simClient is one closed-loop client: one request at a time.
type simClient struct {
	id   int
	seq  int
	ctx  [][]byte  // per key: the context of the last read or write reply
	op   *clientOp // in flight, nil between requests
	sess *sessionClient
}

type clientOp struct {
	cl   *simClient
	via  ring.NodeID
	req  node.Request
	rec  *writeRecord // nil for a get
	done bool
}

// at schedules f at virtual time t on the cluster's event queue. What
// falls at or after the workload's end is never scheduled: the schedule
// covers Duration and no more, and the convergence wait that follows must
// see no new fault. Nothing runs after an internal error either.
func (r *runner) at(t time.Duration, f func()) {
	if t >= r.o.Duration {
		return
	}
	r.c.At(t, func() {
		if r.err == nil {
			f()
		}
	})
}

// runWorkload runs the cluster, the clients and the fault schedule, all on
// the cluster's one event queue, until Duration or the first internal
// error.
func (r *runner) runWorkload() {
	if left := r.o.Duration - r.c.Now(); left > 0 {
		// ErrTimeout only says that Duration passed without an error.
		_ = r.c.RunUntil(func() bool { return r.err != nil }, left)
	}
}

// issue sends cl's next request: a get (35%), a put (50%; with the
// client's last context for the key 70% of the time, else blind) or a
// delete (15%, with the last context), on a random key through a random
// node.
func (r *runner) issue(cl *simClient) {
	if r.stopped || cl.op != nil {
		return
	}
	nodes := r.c.Nodes()
	k := r.wl.IntN(len(r.keys))
	via := nodes[r.wl.IntN(len(nodes))]
	roll := r.wl.IntN(100)
	op := &clientOp{cl: cl, via: via, req: node.Request{Key: r.keys[k]}}
	switch {
	case roll < 35:
		op.req.Op = node.OpGet
	case roll < 85:
		cl.seq++
		op.req.Op = node.OpPut
		op.req.Value = fmt.Appendf(nil, "c%d-%d", cl.id, cl.seq)
		if r.wl.IntN(100) < 70 {
			op.req.Context = cl.ctx[k]
		}
	default:
		op.req.Op = node.OpDelete
		op.req.Context = cl.ctx[k]
	}
	// With sessions, a write is stamped on its context joined with the
	// session's floor: that is what it carried, for the lost-write checker.
	effective, err := cl.sess.prepare(&op.req)
	if err != nil {
		r.err = fmt.Errorf("sim: a reply carried an undecodable context: %w", err)
		return
	}
	if op.req.Op != node.OpGet {
		carried, err := dvv.DecodeContext(effective)
		if err != nil {
			r.err = fmt.Errorf("sim: a reply carried an undecodable context: %w", err)
			return
		}
		op.rec = &writeRecord{key: string(op.req.Key), value: string(op.req.Value), del: op.req.Op == node.OpDelete, carried: carried}
		r.writes = append(r.writes, op.rec)
	}
	cl.op = op
	r.open++
	if r.o.Trace != nil {
		how := ""
		switch {
		case op.req.Op == node.OpGet:
		case len(op.req.Context) > 0:
			how = " with context"
		default:
			how = " blind"
		}
		r.c.tracef("client %d: %s via %s%s", cl.id, describeReq(op.req), via, how)
	}
	r.c.Submit(via, op.req, func(rep node.Reply) { r.onReply(op, rep, k) })
}

func describeReq(req node.Request) string {
	if req.Op == node.OpPut {
		return fmt.Sprintf("put %s=%s", req.Key, req.Value)
	}
	return fmt.Sprintf("%s %s", req.Op, req.Key)
}

func (r *runner) onReply(op *clientOp, rep node.Reply, k int) {
	if op.done {
		return
	}
	op.done = true
	r.open--
	cl := op.cl
	cl.sess.observe(&r.sessions, cl.id, op.req, rep)
	switch op.req.Op {
	case node.OpGet:
		if rep.Code == node.CodeOK || rep.Code == node.CodeNotFound {
			cl.ctx[k] = rep.Context
		}
	default:
		switch rep.Code {
		case node.CodeOK:
			op.rec.outcome, op.rec.dot = outcomeAcked, rep.Dot
			cl.ctx[k] = rep.Context
		case node.CodeBadRequest, node.CodeUnavailable:
			op.rec.outcome = outcomeRejected
		default:
			op.rec.outcome = outcomeUnknown
		}
	}
	if r.o.Trace != nil {
		note := rep.Code.String()
		if rep.Code == node.CodeOK && op.rec != nil {
			note += fmt.Sprintf(" dot %s:%d", rep.Dot.Actor, rep.Dot.Counter)
		}
		r.c.tracef("client %d: %s -> %s", cl.id, describeReq(op.req), note)
	}
	r.next(cl)
}

// next schedules cl's next request after a think time of 0–5 ms.
func (r *runner) next(cl *simClient) {
	cl.op = nil
	if r.stopped {
		return
	}
	think := time.Duration(r.wl.IntN(6)) * time.Millisecond
	r.at(r.c.Now()+think, func() { r.issue(cl) })
}

// orphan ends the requests in flight through a node that is going down:
// the simulator drops their replies with the node, so their clients would
// otherwise wait forever. A write among them keeps the unknown outcome: a
// coordinator it was forwarded to may have applied it.
func (r *runner) orphan(id ring.NodeID) {
	for _, cl := range r.clients {
		if op := cl.op; op != nil && !op.done && op.via == id {
			op.done = true
			r.open--
			r.c.tracef("client %d: %s -> no reply, %s went down", cl.id, describeReq(op.req), id)
			r.next(cl)
		}
	}
}

// scheduleFaults draws the run's fault schedule for the kinds enabled.
// Partitions come one at a time; so do node outages (crash or wipe), so
// that at most one node is down at once: with N=3 and W=2 a preference
// list needs two of its three nodes, and two outages on one list would
// make writes fail for reasons no protocol can help.
//
// There is at most one wipe per run: two wipes can legitimately lose an
// acknowledged write, e.g. the two replicas that acknowledged a W=2 write,
// wiped one after the other before anti-entropy copied it to the third.
func (r *runner) scheduleFaults() {
	end := r.o.Duration
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(r.fr.Int64N(int64(hi-lo)+1)) }
	nodes := r.c.Nodes()

	if r.o.has(FaultPartition) && len(nodes) > 1 {
		for t := between(100*time.Millisecond, time.Second); t < end; {
			side := slices.Clone(nodes)
			r.fr.Shuffle(len(side), func(i, j int) { side[i], side[j] = side[j], side[i] })
			cut := 1 + r.fr.IntN(len(side)-1)
			a, b := side[:cut], side[cut:]
			slices.Sort(a)
			slices.Sort(b)
			heal := t + between(50*time.Millisecond, 500*time.Millisecond)
			r.at(t, func() {
				r.c.tracef("fault: partition %v | %v", a, b)
				r.c.Partition(a, b)
			})
			r.at(heal, func() {
				r.c.tracef("fault: partition healed")
				r.c.Heal()
			})
			t = heal + between(100*time.Millisecond, time.Second)
		}
	}

	r.scheduleMembership(between)

	// Correlated outages: N nodes at once, so some keys have no primary
	// left and writes through the survivors go to fallbacks only. Nothing
	// is wiped, so every acknowledged write keeps W durable copies (on
	// primaries or as hints) and must survive.
	if r.o.has(FaultOutage) && r.o.N < len(nodes) {
		for t := between(500*time.Millisecond, 2*time.Second); t < end; {
			group := slices.Clone(nodes)
			r.fr.Shuffle(len(group), func(i, j int) { group[i], group[j] = group[j], group[i] })
			group = group[:r.o.N]
			slices.Sort(group)
			r.at(t, func() {
				r.c.tracef("fault: outage of %v", group)
				for _, id := range group {
					r.orphan(id)
					r.c.Crash(id)
				}
			})
			up := t + between(300*time.Millisecond, 2*time.Second)
			r.at(up, func() {
				r.c.tracef("fault: outage of %v ends", group)
				for _, id := range group {
					if err := r.c.Restart(id); err != nil && r.err == nil {
						r.err = fmt.Errorf("sim: restarting %s: %w", id, err)
					}
				}
			})
			t = up + between(time.Second, 3*time.Second)
		}
	}

	crash, wipe := r.o.has(FaultCrash), r.o.has(FaultWipe)
	for t := between(100*time.Millisecond, time.Second); t < end && (crash || wipe); {
		id := nodes[r.fr.IntN(len(nodes))]
		// A wipe takes one of the outage slots: the only one when crashes
		// are off, else a third of them until it has happened.
		wiping := wipe && (!crash || r.fr.IntN(3) == 0)
		if wiping {
			wipe = false
			r.at(t, func() {
				r.c.tracef("fault: wipe %s", id)
				r.orphan(id)
				r.c.Wipe(id)
			})
		} else {
			r.at(t, func() {
				r.c.tracef("fault: crash %s", id)
				r.orphan(id)
				r.c.Crash(id)
			})
			if !r.o.has(FaultRestart) {
				return // down until the end; no second outage
			}
		}
		up := t + between(100*time.Millisecond, time.Second)
		r.at(up, func() {
			r.c.tracef("fault: restart %s", id)
			if err := r.c.Restart(id); err != nil && r.err == nil {
				r.err = fmt.Errorf("sim: restarting %s: %w", id, err)
			}
		})
		t = up + between(100*time.Millisecond, time.Second)
	}
}

// scheduleMembership draws the run's membership changes: one join and one
// leave, each committed through a random node while clients write and
// other faults strike. A command refused because another change is still
// running (or the claimant is down) is retried until the run ends.
func (r *runner) scheduleMembership(between func(lo, hi time.Duration) time.Duration) {
	end := r.o.Duration
	t := between(end/10, end/3)
	if r.o.has(FaultJoin) {
		r.at(t, func() {
			id, err := r.c.AddNode()
			if err != nil && r.err == nil {
				r.err = fmt.Errorf("sim: adding a node: %w", err)
				return
			}
			r.c.tracef("fault: %s joins", id)
			r.retry(50*time.Millisecond, func() error { _, err := r.c.Commit(r.randomUp()); return err })
		})
		t += between(end/5, end/3)
	}
	if r.o.has(FaultLeave) {
		r.at(t, func() {
			members := r.c.Ring().Members()
			leaver := members[r.fr.IntN(len(members))]
			r.c.tracef("fault: %s leaves", leaver)
			r.retry(0, func() error {
				if err := r.c.StageLeave(r.randomUp(), leaver); err != nil {
					return err
				}
				_, err := r.c.Commit(r.randomUp())
				return err
			})
		})
	}
}

// retry runs an operator command after delay and again every 200 ms while
// it fails, until it succeeds or the run's workload ends.
func (r *runner) retry(delay time.Duration, cmd func() error) {
	r.at(r.c.Now()+delay, func() {
		err := cmd()
		if err == nil || errors.Is(err, node.ErrNoChange) {
			return
		}
		r.retry(200*time.Millisecond, cmd) // at drops it past the end
	})
}

// randomUp returns a random node that is up.
func (r *runner) randomUp() ring.NodeID {
	var up []ring.NodeID
	for _, id := range r.c.Nodes() {
		if r.c.Node(id) != nil {
			up = append(up, id)
		}
	}
	if len(up) == 0 {
		return r.c.Nodes()[0]
	}
	return up[r.fr.IntN(len(up))]
}

// replicasConverged reports whether every node is up and, for every
// partition, the preference-list replicas have equal Merkle roots and
// store byte-identical objects.
func (r *runner) replicasConverged() bool {
	if r.c.InTransition() {
		return false // a membership change must finish too
	}
	rg := r.c.Ring()
	for _, id := range r.c.Nodes() {
		if r.c.Node(id) == nil {
			return false
		}
	}
	for p := range rg.Partitions() {
		pl := rg.PreferenceList(p)
		root := r.c.Node(pl[0]).TreeRoot(p)
		for _, id := range pl[1:] {
			if r.c.Node(id).TreeRoot(p) != root {
				return false
			}
		}
	}
	// Equal roots are hashes; compare what the disks actually hold.
	for p := range rg.Partitions() {
		pl := rg.PreferenceList(p)
		first := r.partitionDump(pl[0], p)
		for _, id := range pl[1:] {
			if !bytes.Equal(first, r.partitionDump(id, p)) {
				return false
			}
		}
	}
	return true
}

// partitionDump concatenates a node's stored keys and objects of partition
// p, length-prefixed, for comparison.
func (r *runner) partitionDump(id ring.NodeID, p int) []byte {
	var b []byte
	lo, hi := storage.ObjectRange(p)
	_ = r.c.Disk(id).Scan(lo, hi, func(k, v []byte) error {
		b = fmt.Appendf(b, "%d:%s%d:%s", len(k), k, len(v), v)
		return nil
	})
	return b
}

// finalState merges, per key, the objects its preference-list replicas
// store: what a read of every replica would reconcile to.
func (r *runner) finalState() (map[string]object.Object, error) {
	rg := r.c.Ring()
	final := map[string]object.Object{}
	for _, key := range r.keys {
		p := rg.PartitionOf(key)
		var merged object.Object
		for _, id := range rg.PreferenceList(p) {
			raw, err := r.c.Disk(id).Get(storage.ObjectKey(p, key))
			if errors.Is(err, storage.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("sim: reading %s on %s: %w", key, id, err)
			}
			o, err := object.Decode(raw)
			if err != nil {
				return nil, fmt.Errorf("sim: decoding %s on %s: %w", key, id, err)
			}
			merged = object.Merge(merged, o)
		}
		final[string(key)] = merged
	}
	return final, nil
}

// String summarizes a result on one line.
func (r Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d: acked=%d unknown=%d lost=%d resurrected=%d converged=%v", r.Seed, r.Acked, r.Unknown, r.Lost, r.Resurrected, r.Converged)
	if r.Converged {
		fmt.Fprintf(&b, " convergence=%.1fms", r.ConvergenceMs)
	}
	if r.Unanswered > 0 {
		fmt.Fprintf(&b, " unanswered=%d", r.Unanswered)
	}
	if r.Failed() {
		b.WriteString("  FAILED")
	}
	return b.String()
}
