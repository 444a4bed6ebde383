package sim

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

// Scenario scripts: testdata/*.txt replayed on a simulated cluster, in the
// style of etcd-io/raft's interaction tests. Each command's output is the
// trace of what happened while it ran (messages delivered, copies and
// hints stored, replies), in Dynamo's own terms, and is compared with the
// golden output below the command's "----". After a deliberate change,
//
//	go test ./sim/ -run TestScenarios -rewrite
//
// regenerates the outputs; read the diff before committing it. The
// commands are listed in handle; docs/ARCHITECTURE.md explains how to
// write a script.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scenario scripts in testdata/")
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			e := newEnv()
			datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
				return e.handle(t, d)
			})
		})
	}
}

// quietTypes are the messages a trace leaves out unless a cluster asks for
// them (show=all) or a command names them (only=): the questions of
// anti-entropy and reaping, sent every interval whether or not anything
// differs. What they find (ae_keys, ae_want, the repairs, reap) is shown.
var quietTypes = []node.MsgType{node.MsgAETreeReq, node.MsgAETreeResp, node.MsgReapQuery, node.MsgReapResp}

// env is the state of one script: the cluster and what the trace needs to
// print versions in the paper's form.
type env struct {
	c     *Cluster
	out   strings.Builder
	start time.Duration // virtual time when the running command began
	shown func(node.MsgType) bool

	// Display names. A node's first life stamps versions as "n2", its
	// next lives (each boot draws a new epoch) as "n2'", "n2''"; the
	// fresh actors of hinted writes as "n2+1", "n2+2".
	actors map[string]string
	lives  map[ring.NodeID]int
	fresh  map[string]int
	// base is, per key and actor, the first counter seen: coordinators
	// start a new actor's counter at their clock in microseconds (see
	// dvv.UpdateAt), and the trace prints counters from 1 as the paper
	// does.
	base map[string]uint64

	// keys remembers the key of each request a node sent, by sender and
	// request ID: answers do not carry it.
	keys map[reqRef]string

	ctxs    map[string][]byte // contexts saved by as=NAME
	waiting []*pending        // requests not answered yet
	hidden  map[node.MsgType]bool
	showAll bool
}

// pending is a client request waiting for its reply.
type pending struct {
	via  ring.NodeID
	desc string
	done bool
}

type reqRef struct {
	from ring.NodeID
	id   uint64
}

func newEnv() *env {
	return &env{
		actors: map[string]string{}, lives: map[ring.NodeID]int{}, fresh: map[string]int{},
		base: map[string]uint64{}, keys: map[reqRef]string{}, ctxs: map[string][]byte{}, hidden: map[node.MsgType]bool{},
	}
}

// handle runs one command. A malformed command fails the test: the script
// is wrong, not the system.
func (e *env) handle(t *testing.T, d *datadriven.TestData) string {
	e.out.Reset()
	if e.c == nil && d.Cmd != "cluster" {
		d.Fatalf(t, "the first command must be cluster")
	}
	if e.c != nil {
		e.start = e.c.Now()
	}
	checkArgs(t, d)
	e.shown = e.filter(t, d)
	switch d.Cmd {
	case "cluster":
		// cluster nodes=5 n=3 r=2 w=2 [seed=1] [partitions=16]
		//   [latency=1ms | latency=1ms-5ms] [fsync=1ms] [loss=0]
		//   [replica-timeout=100ms] [request-timeout=1s] [detect=500ms]
		//   [ae=off | ae=100ms] [grace=1s] [show=all]
		e.cluster(t, d)
	case "placement":
		// placement key=k: the key's partition, preference list and
		// fallbacks (and where they move during a membership change).
		e.placement(t, d)
	case "put", "del":
		// put node=1 key=k value=v [ctx=NAME] [w=3] [as=NAME] [async]
		//   runs until the reply and then until the cluster is quiet;
		//   async only submits (the reply shows when a later command runs
		//   the cluster that far). as= saves the reply's context, ctx=
		//   sends a saved one.
		// del node=1 key=k [ctx=NAME] [w=3] [as=NAME] [async]
		e.request(t, d)
	case "get":
		// get node=2 key=k [r=3] [as=NAME] [async]
		e.request(t, d)
	case "kill", "crash":
		// kill node=3: a power loss; unsynced writes are lost, and so
		// are the replies its clients wait for.
		id := e.nodeArg(t, d, "node")
		e.c.Crash(id)
		e.orphan(id)
	case "revive", "restart":
		// revive node=3: boots on what its disk kept, with a new epoch.
		if err := e.c.Restart(e.nodeArg(t, d, "node")); err != nil {
			fmt.Fprintf(&e.out, "error: %v\n", err)
		}
	case "wipe":
		// wipe node=3: crash and lose the disk; revive boots it empty.
		id := e.nodeArg(t, d, "node")
		e.c.Wipe(id)
		e.orphan(id)
		e.line("%s's disk is wiped", id)
	case "believe":
		// believe node=1 about=3 status=dead: one node's failure detector
		// lags or errs, until the detector's next report on that node.
		var st string
		d.ScanArgs(t, "status", &st)
		s, ok := map[string]node.Status{"alive": node.Alive, "suspect": node.Suspect, "dead": node.Dead}[st]
		if !ok {
			d.Fatalf(t, "status must be alive, suspect or dead")
		}
		e.c.Believe(e.nodeArg(t, d, "node"), e.nodeArg(t, d, "about"), s)
	case "partition":
		// partition 1,2 | 3,4,5: cut every link between the two sides.
		e.partition(t, d)
	case "heal":
		e.c.Heal()
		fmt.Fprintf(&e.out, "every link restored\n")
	case "tick":
		// tick [n | duration]: advance virtual time by n ticks (1 ms
		// each) or by a duration, running everything due meanwhile.
		e.c.RunFor(e.ticks(t, d))
	case "stabilize":
		// stabilize [limit=10s]: run until no operation is in flight, no
		// membership change is running and the network is empty (held
		// messages do not count).
		limit := 10 * time.Second
		if d.HasArg("limit") {
			limit = e.durArg(t, d, "limit")
		}
		e.settle(limit, true)
	case "hold":
		// hold [from=1] [to=3] [type=replica_put]: park such messages when
		// sent, until deliver or drop.
		f := e.msgFilter(t, d)
		e.c.Hold(f)
	case "deliver", "drop":
		// deliver [from=1] [to=3] [type=...]: the parked messages arrive
		// now. drop: they are lost. The hold stays until release.
		e.deliverOrDrop(t, d)
	case "release":
		// release [from=1] [to=3] [type=...]: stop holding; what is parked
		// arrives now.
		f := e.msgFilter(t, d)
		e.c.Unhold(f)
		if e.c.DeliverHeld(f) > 0 {
			e.c.RunFor(0)
		}
	case "hold-gossip":
		// hold-gossip node=5: the node stops hearing cluster states (it
		// keeps routing by the ring it has, as a node whose gossip lags);
		// release-gossip hands it what it missed.
		id := e.nodeArg(t, d, "node")
		e.c.HoldGossip(id)
		fmt.Fprintf(&e.out, "%s hears no gossip\n", id)
	case "release-gossip":
		e.c.ReleaseGossip(e.nodeArg(t, d, "node"))
		e.c.RunFor(0)
	case "join":
		// join node=6: a new, empty node boots and learns the ring by
		// gossip; it owns nothing until a commit.
		e.join(t, d)
	case "leave":
		// leave node=4 via=1: stage node 4's departure through node 1.
		if err := e.c.StageLeave(e.nodeArg(t, d, "via"), e.nodeArg(t, d, "node")); err != nil {
			fmt.Fprintf(&e.out, "error: %v\n", err)
		} else {
			fmt.Fprintf(&e.out, "%s staged to leave\n", e.nodeArg(t, d, "node"))
		}
	case "commit":
		// commit via=1: the operator commits the staged change; via
		// becomes the claimant.
		e.commit(t, d)
	case "status":
		e.status()
	case "hints":
		// hints [node=4]: the hints stored on each node's disk.
		e.hints(t, d)
	case "replicas":
		// replicas key=k: each node's stored copy of the key.
		e.replicas(t, d)
	case "merkle":
		// merkle [key=k]: whether the replicas' Merkle trees agree.
		e.merkle(t, d)
	default:
		d.Fatalf(t, "unknown command %q", d.Cmd)
	}
	if e.out.Len() == 0 {
		return "ok"
	}
	return e.out.String()
}

// commandArgs lists each command's key=value arguments, so that a
// misspelt one fails the script instead of being ignored. Commands with
// positional arguments (partition, tick) check those themselves.
var commandArgs = map[string][]string{
	"cluster": {"seed", "nodes", "n", "r", "w", "partitions", "loss", "latency", "fsync",
		"replica-timeout", "request-timeout", "detect", "ae", "grace", "show"},
	"placement": {"key"},
	"put":       {"node", "key", "value", "ctx", "w", "as", "async"},
	"del":       {"node", "key", "ctx", "w", "as", "async"},
	"get":       {"node", "key", "r", "as", "async"},
	"kill":      {"node"}, "crash": {"node"}, "revive": {"node"}, "restart": {"node"}, "wipe": {"node"},
	"believe":   {"node", "about", "status"},
	"heal":      {},
	"stabilize": {"limit"},
	"hold":      {"from", "to", "type"}, "deliver": {"from", "to", "type"},
	"drop": {"from", "to", "type"}, "release": {"from", "to", "type"},
	"hold-gossip": {"node"}, "release-gossip": {"node"},
	"join": {"node"}, "leave": {"node", "via"}, "commit": {"via"},
	"status": {}, "hints": {"node"}, "replicas": {"key"}, "merkle": {"key"},
}

func checkArgs(t *testing.T, d *datadriven.TestData) {
	allowed, ok := commandArgs[d.Cmd]
	if !ok {
		return // positional, or unknown (handle says so)
	}
	for _, arg := range d.CmdArgs {
		if arg.Key != "only" && !slices.Contains(allowed, arg.Key) {
			d.Fatalf(t, "%s takes no argument %q (it takes %s)", d.Cmd, arg.Key, strings.Join(allowed, ", "))
		}
	}
}

// ---- argument parsing ----

// filter returns which message types this command's trace shows: those
// named by only=(...), else all but the quiet ones.
func (e *env) filter(t *testing.T, d *datadriven.TestData) func(node.MsgType) bool {
	if arg, ok := d.Arg("only"); ok {
		want := map[node.MsgType]bool{}
		for _, v := range arg.Vals {
			want[msgType(t, d, v)] = true
		}
		return func(ty node.MsgType) bool { return want[ty] }
	}
	return func(ty node.MsgType) bool { return !e.hidden[ty] }
}

func msgType(t *testing.T, d *datadriven.TestData, s string) node.MsgType {
	for ty := node.MsgForward; ty <= node.MsgReap; ty++ {
		if ty.String() == s {
			return ty
		}
	}
	d.Fatalf(t, "unknown message type %q", s)
	return 0
}

func (e *env) parseNode(t *testing.T, d *datadriven.TestData, s string) ring.NodeID {
	id := ring.NodeID(s)
	if !strings.HasPrefix(s, "n") {
		id = ring.NodeID("n" + s)
	}
	if !slices.Contains(e.c.Nodes(), id) {
		d.Fatalf(t, "no node %q (nodes: %s)", s, joinIDs(e.c.Nodes()))
	}
	return id
}

func (e *env) nodeArg(t *testing.T, d *datadriven.TestData, key string) ring.NodeID {
	return e.parseNode(t, d, e.strArg(t, d, key))
}

func (e *env) strArg(t *testing.T, d *datadriven.TestData, key string) string {
	arg, ok := d.Arg(key)
	if !ok {
		d.Fatalf(t, "%s needs %s=", d.Cmd, key)
	}
	return arg.SingleVal(t)
}

func (e *env) durArg(t *testing.T, d *datadriven.TestData, key string) time.Duration {
	return mustDur(t, d, e.strArg(t, d, key))
}

func mustDur(t *testing.T, d *datadriven.TestData, s string) time.Duration {
	v, err := time.ParseDuration(s)
	if err != nil {
		d.Fatalf(t, "bad duration %q: %v", s, err)
	}
	return v
}

// ticks reads tick's argument: a count of ticks or a duration.
func (e *env) ticks(t *testing.T, d *datadriven.TestData) time.Duration {
	if len(d.CmdArgs) == 0 {
		return e.c.cfg.Tick
	}
	if len(d.CmdArgs) > 1 && !d.HasArg("only") {
		d.Fatalf(t, "tick [n | duration]")
	}
	s := d.CmdArgs[0].Key
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return time.Duration(n) * e.c.cfg.Tick
	}
	return mustDur(t, d, s)
}

func joinIDs(ids []ring.NodeID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return strings.Join(s, " ")
}
