package sim

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// The scenario commands (see handle in interaction_test.go).

// ---- setup ----

func (e *env) cluster(t *testing.T, d *datadriven.TestData) {
	if e.c != nil {
		d.Fatalf(t, "one cluster per script")
	}
	cfg := Config{
		Seed: 1, Nodes: 5, N: 3, R: 2, W: 2, Partitions: 16,
		Latency: Fixed(time.Millisecond), Fsync: Fixed(time.Millisecond),
		ReplicaTimeout: 100 * time.Millisecond, DetectDelay: 500 * time.Millisecond,
		// Anti-entropy is off unless a script turns it on, so that what
		// the other mechanisms do (hints, read repair) is not hidden by a
		// background repair that happens to come first.
		AEInterval: -1,
	}
	d.MaybeScanArgs(t, "seed", &cfg.Seed)
	d.MaybeScanArgs(t, "nodes", &cfg.Nodes)
	d.MaybeScanArgs(t, "n", &cfg.N)
	d.MaybeScanArgs(t, "r", &cfg.R)
	d.MaybeScanArgs(t, "w", &cfg.W)
	d.MaybeScanArgs(t, "partitions", &cfg.Partitions)
	d.MaybeScanArgs(t, "loss", &cfg.Loss)
	if arg, ok := d.Arg("latency"); ok {
		lo, hi, found := strings.Cut(arg.SingleVal(t), "-")
		if !found {
			hi = lo
		}
		l, h := mustDur(t, d, lo), mustDur(t, d, hi)
		if l == h {
			cfg.Latency = Fixed(l)
		} else {
			cfg.Latency = Uniform(l, h)
		}
	}
	if d.HasArg("fsync") {
		cfg.Fsync = Fixed(e.durArg(t, d, "fsync"))
	}
	if d.HasArg("replica-timeout") {
		cfg.ReplicaTimeout = e.durArg(t, d, "replica-timeout")
	}
	if d.HasArg("request-timeout") {
		cfg.RequestTimeout = e.durArg(t, d, "request-timeout")
	}
	if d.HasArg("detect") {
		cfg.DetectDelay = e.durArg(t, d, "detect")
	}
	if arg, ok := d.Arg("ae"); ok && arg.SingleVal(t) != "off" {
		cfg.AEInterval = mustDur(t, d, arg.SingleVal(t))
	}
	if d.HasArg("grace") {
		cfg.TombstoneGrace = e.durArg(t, d, "grace")
	}
	if arg, ok := d.Arg("show"); ok && arg.SingleVal(t) == "all" {
		e.showAll = true
	}
	for _, ty := range quietTypes {
		e.hidden[ty] = !e.showAll
	}
	c, err := build(cfg, e.see)
	if err != nil {
		d.Fatalf(t, "cluster: %v", err)
	}
	e.c = c
	e.start = c.Now()
	fmt.Fprintf(&e.out, "%d nodes %s; N=%d R=%d W=%d; %d partitions\n", cfg.Nodes, joinIDs(c.Nodes()), cfg.N, cfg.R, cfg.W, cfg.Partitions)
}

func (e *env) placement(t *testing.T, d *datadriven.TestData) {
	key := e.strArg(t, d, "key")
	rg := e.c.Ring()
	p := rg.PartitionOf([]byte(key))
	fmt.Fprintf(&e.out, "%s: partition %d; preference list %s; fallbacks %s\n", key, p, joinIDs(rg.PreferenceList(p)), joinIDs(rg.Fallbacks(p)))
	for _, id := range e.c.Nodes() {
		if core := e.c.Node(id); core != nil && core.NextRing() != nil {
			if next := core.NextRing().PreferenceList(p); !slices.Equal(next, rg.PreferenceList(p)) {
				fmt.Fprintf(&e.out, "moving to %s\n", joinIDs(next))
			}
			break
		}
	}
}

// ---- client requests ----

func (e *env) request(t *testing.T, d *datadriven.TestData) {
	via := e.nodeArg(t, d, "node")
	key := e.strArg(t, d, "key")
	req := node.Request{Key: []byte(key)}
	switch d.Cmd {
	case "get":
		req.Op = node.OpGet
		d.MaybeScanArgs(t, "r", &req.R)
	case "put":
		req.Op = node.OpPut
		req.Value = []byte(e.strArg(t, d, "value"))
		d.MaybeScanArgs(t, "w", &req.W)
	case "del":
		req.Op = node.OpDelete
		d.MaybeScanArgs(t, "w", &req.W)
	}
	if arg, ok := d.Arg("ctx"); ok {
		ctx, ok := e.ctxs[arg.SingleVal(t)]
		if !ok {
			d.Fatalf(t, "no context saved as %q", arg.SingleVal(t))
		}
		req.Context = ctx
	}
	var save string
	if arg, ok := d.Arg("as"); ok {
		save = arg.SingleVal(t)
	}
	pr := &pending{via: via, desc: fmt.Sprintf("%s %s", req.Op, req.Key)}
	e.waiting = append(e.waiting, pr)
	e.c.Submit(via, req, func(r node.Reply) {
		pr.done = true
		if save != "" && len(r.Context) > 0 {
			e.ctxs[save] = r.Context
		}
		e.line("%s", e.describeReply(via, req, r))
	})
	if d.HasArg("async") {
		// Submitted only: the reply shows in the output of whichever
		// later command runs the cluster until it comes.
		e.c.RunFor(0)
		if e.out.Len() == 0 {
			fmt.Fprintf(&e.out, "submitted\n")
		}
		return
	}
	if err := e.c.RunUntil(func() bool { return pr.done }, 2*e.c.cfg.RequestTimeout+time.Second); err != nil {
		e.line("no reply: %v", err)
		return
	}
	// What the request set off after the reply (the acknowledgements past
	// W, read repair) belongs to its story, not to the next command's. Only
	// the network is drained: operations still waiting on a timer (a hint
	// delivery whose acknowledgement is held, say) run on when the script
	// says so, or a staged race would be timed out here.
	e.settle(10*time.Second, false)
}

// orphan reports the requests whose entry node just crashed: their
// clients will never hear how they ended.
func (e *env) orphan(id ring.NodeID) {
	e.waiting = slices.DeleteFunc(e.waiting, func(p *pending) bool { return p.done })
	for _, p := range e.waiting {
		if p.via == id {
			p.done = true
			e.line("the client of %s through %s gets no reply", p.desc, id)
		}
	}
}

// settle runs until the network is empty, gossip delivered and every
// fsync done, and with ops also until no operation is in flight and no
// membership change is running. Held messages do not count, and neither
// do the failure detector's pending reports (detect=1h would never
// settle).
func (e *env) settle(limit time.Duration, ops bool) {
	quiet := func() bool {
		for _, ev := range e.c.queue {
			if ev.kind != evStatus {
				return false
			}
		}
		if ops && e.c.InTransition() {
			return false
		}
		for _, id := range e.c.Nodes() {
			if core := e.c.Node(id); ops && core != nil && core.InFlight() > 0 {
				return false
			}
		}
		return true
	}
	if err := e.c.RunUntil(quiet, limit); err != nil {
		fmt.Fprintf(&e.out, "still busy after %v\n", limit)
	}
}

func (e *env) describeReply(via ring.NodeID, req node.Request, r node.Reply) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s -> client %s %s: %s", via, req.Op, req.Key, r.Code)
	key := string(req.Key)
	switch {
	case req.Op == node.OpGet && r.Code == node.CodeOK:
		vals := make([]string, len(r.Siblings))
		for i, s := range r.Siblings {
			vals[i] = sibling(s)
		}
		fmt.Fprintf(&b, " [%s]", strings.Join(vals, " "))
	case req.Op != node.OpGet && r.Code == node.CodeOK:
		fmt.Fprintf(&b, " at %s", e.dot(key, r.Dot))
	}
	if len(r.Context) > 0 {
		fmt.Fprintf(&b, " context %s", e.context(key, r.Context))
	}
	if r.Required > 0 {
		what := "acks"
		if req.Op == node.OpGet {
			what = "answers"
		}
		fmt.Fprintf(&b, "; %d/%d %s", r.Acks, r.Required, what)
	}
	if r.Trace != nil && r.Trace.Coordinator != "" && r.Trace.Coordinator != via {
		fmt.Fprintf(&b, "; coordinated by %s", r.Trace.Coordinator)
	}
	if r.Code != node.CodeOK && r.Code != node.CodeNotFound && r.Err != "" {
		fmt.Fprintf(&b, " (%s)", r.Err)
	}
	return b.String()
}

// ---- faults and membership ----

func (e *env) partition(t *testing.T, d *datadriven.TestData) {
	var sides [2][]ring.NodeID
	side := 0
	for _, arg := range d.CmdArgs {
		if len(arg.Vals) != 0 {
			d.Fatalf(t, "partition takes node lists: partition 1,2 | 3,4,5")
		}
		if arg.Key == "|" {
			side++
			if side > 1 {
				d.Fatalf(t, "partition has two sides")
			}
			continue
		}
		for _, s := range strings.Split(arg.Key, ",") {
			sides[side] = append(sides[side], e.parseNode(t, d, s))
		}
	}
	if side != 1 || len(sides[0]) == 0 || len(sides[1]) == 0 {
		d.Fatalf(t, "partition needs two non-empty sides: partition 1,2 | 3,4,5")
	}
	e.c.Partition(sides[0], sides[1])
	fmt.Fprintf(&e.out, "%s cut off from %s\n", joinIDs(sides[0]), joinIDs(sides[1]))
}

func (e *env) join(t *testing.T, d *datadriven.TestData) {
	want := ring.NodeID(e.strArg(t, d, "node"))
	if !strings.HasPrefix(string(want), "n") {
		want = "n" + want
	}
	if next := ring.NodeID(fmt.Sprintf("n%d", len(e.c.Nodes())+1)); want != next {
		d.Fatalf(t, "the next node to join is %s, not %s", next, want)
	}
	if _, err := e.c.AddNode(); err != nil {
		fmt.Fprintf(&e.out, "error: %v\n", err)
	}
}

func (e *env) commit(t *testing.T, d *datadriven.TestData) {
	via := e.nodeArg(t, d, "via")
	pl, err := e.c.Commit(via)
	if err != nil {
		fmt.Fprintf(&e.out, "error: %v\n", err)
		return
	}
	var parts []string
	if len(pl.Joining) > 0 {
		parts = append(parts, joinIDs(pl.Joining)+" joining")
	}
	if len(pl.Leaving) > 0 {
		parts = append(parts, joinIDs(pl.Leaving)+" leaving")
	}
	fmt.Fprintf(&e.out, "plan from ring v%d: %s; claimant %s\n", pl.FromVersion, strings.Join(parts, ", "), via)
	for _, tr := range pl.Transfers {
		fmt.Fprintf(&e.out, "  partition %d: %s hands it to %s\n", tr.Partition, tr.From, tr.To)
	}
}

// ---- held messages ----

func (e *env) msgFilter(t *testing.T, d *datadriven.TestData) MsgFilter {
	var f MsgFilter
	if d.HasArg("from") {
		f.From = e.nodeArg(t, d, "from")
	}
	if d.HasArg("to") {
		f.To = e.nodeArg(t, d, "to")
	}
	if d.HasArg("type") {
		f.Type = msgType(t, d, e.strArg(t, d, "type"))
	}
	return f
}

func (e *env) deliverOrDrop(t *testing.T, d *datadriven.TestData) {
	f := e.msgFilter(t, d)
	held := e.c.Held(f)
	if len(held) == 0 {
		fmt.Fprintf(&e.out, "no held messages\n")
		return
	}
	if d.Cmd == "drop" {
		e.c.DropHeld(f)
		for _, m := range held {
			e.line("%s -x %s %s (dropped)", m.From, m.To, e.describeMsg(m))
		}
		return
	}
	e.c.DeliverHeld(f)
	e.c.RunFor(0) // the arrivals, and whatever they cause at once
}

// ---- inspection ----

func (e *env) status() {
	for _, id := range e.c.Nodes() {
		core := e.c.Node(id)
		if core == nil {
			fmt.Fprintf(&e.out, "%s down\n", id)
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s up", id)
		if rg := core.Ring(); rg != nil {
			fmt.Fprintf(&b, ", ring v%d", rg.Version())
			if !rg.Contains(id) {
				b.WriteString(" (not a member)")
			}
		} else {
			b.WriteString(", no ring yet")
		}
		if hp := core.Progress(); hp.InTransition {
			fmt.Fprintf(&b, ", in transition (%d/%d handoffs done)", hp.Done, hp.Total)
		}
		var dead []string
		for _, o := range e.c.Nodes() {
			if s := core.StatusOf(o); s != node.Alive && o != id {
				dead = append(dead, fmt.Sprintf("%s %s", o, s))
			}
		}
		if len(dead) > 0 {
			fmt.Fprintf(&b, "; believes %s", strings.Join(dead, ", "))
		}
		held := core.HintsHeld()
		for _, target := range slices.Sorted(maps.Keys(held)) {
			fmt.Fprintf(&b, "; %d hint(s) for %s", held[target], target)
		}
		if n := core.InFlight(); n > 0 {
			fmt.Fprintf(&b, "; %d operation(s) in flight", n)
		}
		fmt.Fprintln(&e.out, b.String())
	}
	if n := len(e.c.parked); n > 0 {
		fmt.Fprintf(&e.out, "%d message(s) held\n", n)
	}
}

func (e *env) hints(t *testing.T, d *datadriven.TestData) {
	ids := e.c.Nodes()
	if d.HasArg("node") {
		ids = []ring.NodeID{e.nodeArg(t, d, "node")}
	}
	lo, hi := storage.AllHintsRange()
	for _, id := range ids {
		err := e.c.Disk(id).Scan(lo, hi, func(k, v []byte) error {
			target, _, key, ok := storage.ParseHintKey(k)
			if !ok {
				return fmt.Errorf("bad hint key %q", k)
			}
			o, err := object.Decode(v)
			if err != nil {
				return err
			}
			fmt.Fprintf(&e.out, "%s holds a hint for %s: %s %s\n", id, target, key, e.object(string(key), o))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if e.out.Len() == 0 {
		fmt.Fprintf(&e.out, "no hints\n")
	}
}

func (e *env) replicas(t *testing.T, d *datadriven.TestData) {
	key := e.strArg(t, d, "key")
	rg := e.c.Ring()
	p := rg.PartitionOf([]byte(key))
	pl := rg.PreferenceList(p)
	for _, id := range e.c.Nodes() {
		raw, err := e.c.Disk(id).Get(storage.ObjectKey(p, []byte(key)))
		role := "          "
		if slices.Contains(pl, id) {
			role = " (primary)"
		}
		switch {
		case errors.Is(err, storage.ErrNotFound):
			if slices.Contains(pl, id) {
				fmt.Fprintf(&e.out, "%s%s: nothing\n", id, role)
			}
		case err != nil:
			t.Fatal(err)
		default:
			o, err := object.Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&e.out, "%s%s: %s\n", id, role, e.object(key, o))
		}
	}
}

func (e *env) merkle(t *testing.T, d *datadriven.TestData) {
	rg := e.c.Ring()
	parts := rg.Partitions()
	var only []int
	if d.HasArg("key") {
		only = []int{rg.PartitionOf([]byte(e.strArg(t, d, "key")))}
	} else {
		for p := range parts {
			only = append(only, p)
		}
	}
	agree := 0
	for _, p := range only {
		var groups [][]ring.NodeID
		roots := map[uint64]int{}
		var down []ring.NodeID
		for _, id := range rg.PreferenceList(p) {
			core := e.c.Node(id)
			if core == nil {
				down = append(down, id)
				continue
			}
			r := core.TreeRoot(p)
			i, ok := roots[r]
			if !ok {
				i = len(groups)
				roots[r] = i
				groups = append(groups, nil)
			}
			groups[i] = append(groups[i], id)
		}
		if len(groups) == 1 && len(down) == 0 {
			agree++
			if len(only) == 1 {
				fmt.Fprintf(&e.out, "partition %d: %s agree\n", p, joinIDs(groups[0]))
			}
			continue
		}
		var sides []string
		for _, g := range groups {
			sides = append(sides, joinIDs(g))
		}
		fmt.Fprintf(&e.out, "partition %d: trees differ: %s", p, strings.Join(sides, " | "))
		if len(down) > 0 {
			fmt.Fprintf(&e.out, "; %s down", joinIDs(down))
		}
		fmt.Fprintln(&e.out)
	}
	if len(only) > 1 {
		fmt.Fprintf(&e.out, "%d of %d partitions: replicas agree\n", agree, len(only))
	}
}
