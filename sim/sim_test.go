package sim

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

func newCluster(t *testing.T, cfg Config) *Cluster {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func do(t *testing.T, c *Cluster, via ring.NodeID, req node.Request) node.Reply {
	t.Helper()
	r, err := c.Do(via, req)
	if err != nil {
		t.Fatalf("%s %q via %s: %v", req.Op, req.Key, via, err)
	}
	return r
}

func put(t *testing.T, c *Cluster, via ring.NodeID, key, value string, ctx []byte) node.Reply {
	t.Helper()
	r := do(t, c, via, node.Request{Op: node.OpPut, Key: []byte(key), Value: []byte(value), Context: ctx})
	if r.Code != node.CodeOK {
		t.Fatalf("put %q via %s: %s %s", key, via, r.Code, r.Err)
	}
	return r
}

func get(t *testing.T, c *Cluster, via ring.NodeID, key string) node.Reply {
	t.Helper()
	return do(t, c, via, node.Request{Op: node.OpGet, Key: []byte(key)})
}

func values(r node.Reply) []string {
	var out []string
	for _, s := range r.Siblings {
		out = append(out, string(s.Value))
	}
	slices.Sort(out)
	return out
}

// localCopy reads a node's stored object for key straight from its disk.
func localCopy(t *testing.T, c *Cluster, id ring.NodeID, key string) (object.Object, bool) {
	t.Helper()
	raw, err := c.Disk(id).Get(storage.ObjectKey(c.Ring().PartitionOf([]byte(key)), []byte(key)))
	if errors.Is(err, storage.ErrNotFound) {
		return object.Object{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	o, err := object.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	return o, true
}

func preflist(c *Cluster, key string) []ring.NodeID {
	return c.Ring().PreferenceList(c.Ring().PartitionOf([]byte(key)))
}

// notIn returns a node outside list.
func notIn(c *Cluster, list []ring.NodeID) ring.NodeID {
	for _, id := range c.Nodes() {
		if !slices.Contains(list, id) {
			return id
		}
	}
	return ""
}

func TestPutThenGetThroughEveryNode(t *testing.T) {
	c := newCluster(t, Config{Seed: 1})
	put(t, c, "n1", "greeting", "hello", nil)
	for _, id := range c.Nodes() {
		r := get(t, c, id, "greeting")
		if r.Code != node.CodeOK || !slices.Equal(values(r), []string{"hello"}) {
			t.Fatalf("get via %s: %s %v", id, r.Code, values(r))
		}
	}
	if err := c.Settle(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	// Exactly the preference list stores it.
	pl := preflist(c, "greeting")
	for _, id := range c.Nodes() {
		_, ok := localCopy(t, c, id, "greeting")
		if ok != slices.Contains(pl, id) {
			t.Errorf("node %s holds the key: %v; preference list %v", id, ok, pl)
		}
	}
}

func TestMissingKeyIsNotFound(t *testing.T) {
	c := newCluster(t, Config{Seed: 2})
	r := get(t, c, "n3", "nothing-here")
	if r.Code != node.CodeNotFound || len(r.Context) != 0 {
		t.Fatalf("got %s with context %x", r.Code, r.Context)
	}
}

func TestSequentialWriterWithContextSeesOneValue(t *testing.T) {
	c := newCluster(t, Config{Seed: 5})
	var ctx []byte
	for i := range 20 {
		via := c.Nodes()[i%len(c.Nodes())]
		ctx = put(t, c, via, "counter", fmt.Sprint(i), ctx).Context
		r := get(t, c, c.Nodes()[(i+2)%len(c.Nodes())], "counter")
		if got := values(r); !slices.Equal(got, []string{fmt.Sprint(i)}) {
			t.Fatalf("step %d: %v", i, got)
		}
	}
}

func TestPutThroughNodeOutsidePreferenceListIsForwarded(t *testing.T) {
	c := newCluster(t, Config{Seed: 7})
	pl := preflist(c, "fwd")
	outsider := notIn(c, pl)
	r := put(t, c, outsider, "fwd", "x", nil)
	if r.Trace == nil || r.Trace.ForwardedBy != outsider || r.Trace.Coordinator != pl[0] {
		t.Fatalf("trace %+v: want forwarded by %s to %s", r.Trace, outsider, pl[0])
	}
	// The client asked the outsider, yet its trace shows the replicas'
	// answers that the coordinator waited on, in time order.
	acks := map[ring.NodeID]bool{}
	for i, e := range r.Trace.Events {
		if i > 0 && e.At < r.Trace.Events[i-1].At {
			t.Fatalf("trace events out of order: %+v", r.Trace.Events)
		}
		if e.What == "ack" {
			acks[e.Node] = true
		}
	}
	if len(acks) < 2 {
		t.Fatalf("forwarded trace shows acks from %v; want the coordinator's W=2 replica acks: %+v", acks, r.Trace.Events)
	}
	if err := c.Settle(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if _, ok := localCopy(t, c, outsider, "fwd"); ok {
		t.Fatal("the forwarding node stored the key")
	}
}

func TestWriteQuorumFailureIsReportedNotHidden(t *testing.T) {
	c := newCluster(t, Config{Seed: 9, RequestTimeout: 200 * time.Millisecond})
	pl := preflist(c, "q")
	// Cut the coordinator off from everyone: no replica and no fallback
	// can acknowledge, so even a sloppy quorum cannot be met.
	c.Partition([]ring.NodeID{pl[0]}, slices.DeleteFunc(c.Nodes(), func(id ring.NodeID) bool { return id == pl[0] }))
	r := do(t, c, pl[0], node.Request{Op: node.OpPut, Key: []byte("q"), Value: []byte("v"), W: 3})
	if r.Code != node.CodeQuorumFailed || r.Acks != 1 || r.Required != 3 {
		t.Fatalf("got %s acks=%d/%d, want quorum_failed 1/3", r.Code, r.Acks, r.Required)
	}
	// W=1 succeeds on the coordinator alone.
	r = do(t, c, pl[0], node.Request{Op: node.OpPut, Key: []byte("q"), Value: []byte("v"), W: 1})
	if r.Code != node.CodeOK {
		t.Fatalf("W=1: %s", r.Code)
	}
	// R=3 cannot be met; R=1 can.
	if r := do(t, c, pl[0], node.Request{Op: node.OpGet, Key: []byte("q"), R: 3}); r.Code != node.CodeQuorumFailed {
		t.Fatalf("R=3: %s", r.Code)
	}
	if r := do(t, c, pl[0], node.Request{Op: node.OpGet, Key: []byte("q"), R: 1}); r.Code != node.CodeOK {
		t.Fatalf("R=1: %s", r.Code)
	}
}

func TestBadRequestsChangeNothing(t *testing.T) {
	c := newCluster(t, Config{Seed: 10})
	for _, tc := range []struct {
		req  node.Request
		want node.Code
	}{
		{node.Request{Op: node.OpPut, Key: nil, Value: []byte("v")}, node.CodeBadRequest},
		{node.Request{Op: node.OpPut, Key: bytes.Repeat([]byte("k"), 2000), Value: []byte("v")}, node.CodeBadRequest},
		{node.Request{Op: node.OpPut, Key: []byte("k"), Value: []byte("v"), W: 4}, node.CodeBadQuorum},
		{node.Request{Op: node.OpGet, Key: []byte("k"), R: -1}, node.CodeBadQuorum},
		{node.Request{Op: node.OpPut, Key: []byte("k"), Value: []byte("v"), Context: []byte{0xff, 0x01}}, node.CodeBadRequest},
	} {
		if r := do(t, c, "n1", tc.req); r.Code != tc.want {
			t.Errorf("%+v: got %s, want %s", tc.req, r.Code, tc.want)
		}
	}
	if r := get(t, c, "n1", "k"); r.Code != node.CodeNotFound {
		t.Fatalf("a rejected request stored something: %s", r.Code)
	}
}

// Every acknowledged write survives a crash of every node at once: an
// acknowledgement implies an fsync on W replicas.
func TestAcknowledgedWritesSurviveCrashOfAllNodes(t *testing.T) {
	c := newCluster(t, Config{Seed: 11, W: 3})
	acked := map[string]bool{}
	for i := range 50 {
		k := fmt.Sprintf("key-%d", i)
		c.Submit(c.Nodes()[i%5], node.Request{Op: node.OpPut, Key: []byte(k), Value: []byte(k)}, func(r node.Reply) {
			if r.Code == node.CodeOK {
				acked[k] = true
			}
		})
	}
	// Crash mid-flight: some writes are acknowledged, others are not.
	if err := c.RunUntil(func() bool { return len(acked) >= 10 }, time.Second); err != nil {
		t.Fatal(err)
	}
	for _, id := range c.Nodes() {
		c.Crash(id)
	}
	for _, id := range c.Nodes() {
		if err := c.Restart(id); err != nil {
			t.Fatal(err)
		}
	}
	c.RunFor(2 * time.Second) // the failure detector sees everyone back
	if len(acked) == 50 {
		t.Fatal("setup: every write was acknowledged before the crash")
	}
	for k := range acked {
		pl := preflist(c, k)
		for _, id := range pl {
			if _, ok := localCopy(t, c, id, k); !ok {
				t.Errorf("acknowledged %q (W=3) missing on %s after crash", k, id)
			}
		}
		if got := values(get(t, c, "n1", k)); !slices.Equal(got, []string{k}) {
			t.Errorf("acknowledged %q reads %v after crash", k, got)
		}
	}
	t.Logf("%d of 50 writes acknowledged before the crash", len(acked))
}

// A node restarted on a wiped disk gets a new actor, so its fresh counters
// cannot collide with dots the cluster already holds (Riak kv679).
func TestWipedNodeWritesAreNotShadowedByItsOldDots(t *testing.T) {
	c := newCluster(t, Config{Seed: 12})
	pl := preflist(c, "kv679")
	coordinator := pl[0]
	put(t, c, coordinator, "kv679", "first", nil)
	if err := c.Settle(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	c.Wipe(coordinator)
	if err := c.Restart(coordinator); err != nil {
		t.Fatal(err)
	}
	// A blind write coordinated by the wiped node must survive merging with
	// the replicas that hold "first".
	put(t, c, coordinator, "kv679", "second", nil)
	got := values(get(t, c, pl[1], "kv679"))
	if !slices.Contains(got, "second") {
		t.Fatalf("write after wipe lost: %v", got)
	}
}

// A run replays exactly from its seed.
func TestRunIsReproducibleFromSeed(t *testing.T) {
	run := func(seed uint64) string {
		var trace bytes.Buffer
		c := newCluster(t, Config{Seed: seed, Trace: &trace, Loss: 0.05, RequestTimeout: 300 * time.Millisecond})
		for i := range 30 {
			k := fmt.Sprintf("k%d", i%7)
			op := node.OpPut
			if i%3 == 0 {
				op = node.OpGet
			}
			c.Submit(c.Nodes()[i%5], node.Request{Op: op, Key: []byte(k), Value: []byte(fmt.Sprint(i))}, func(node.Reply) {})
			c.RunFor(time.Duration(i%4) * time.Millisecond)
		}
		if i := c.Settle(10 * time.Second); i != nil {
			t.Fatal(i)
		}
		return trace.String()
	}
	a, b := run(42), run(42)
	if a != b {
		t.Fatal("same seed, different runs")
	}
	if a == run(43) {
		t.Fatal("different seeds, identical runs: the seed is not used")
	}
	if len(a) == 0 {
		t.Fatal("empty trace")
	}
}

// A driver's actions share the cluster's one event queue: each runs at its
// exact virtual time, simultaneous ones in the order they were scheduled,
// one scheduled in the past runs now, and a request an action submits is
// answered on the same clock.
func TestAtRunsActionsOnTheEventQueueInOrder(t *testing.T) {
	c := newCluster(t, Config{Seed: 1})
	var log []string
	note := func(what string) func() {
		return func() { log = append(log, fmt.Sprintf("%s@%v", what, c.Now())) }
	}
	c.At(5*time.Millisecond, note("b"))
	c.At(5*time.Millisecond, note("c"))
	c.At(2500*time.Microsecond, func() {
		note("a")()
		c.At(time.Millisecond, note("late")) // already past: runs at once
		c.Submit("n1", node.Request{Op: node.OpPut, Key: []byte("k"), Value: []byte("v")}, func(r node.Reply) {
			note("reply " + r.Code.String())()
		})
	})
	c.RunFor(4 * time.Millisecond)
	if want := []string{"a@2.5ms", "late@2.5ms"}; !slices.Equal(log, want) {
		t.Fatalf("after 4 ms: %q, want %q", log, want)
	}
	if err := c.Settle(time.Second); err != nil {
		t.Fatal(err)
	}
	actions := slices.DeleteFunc(slices.Clone(log), func(s string) bool { return strings.HasPrefix(s, "reply ") })
	if want := []string{"a@2.5ms", "late@2.5ms", "b@5ms", "c@5ms"}; !slices.Equal(actions, want) || len(log) != 5 || !slices.ContainsFunc(log, func(s string) bool { return strings.HasPrefix(s, "reply ok@") }) {
		t.Fatalf("after settling: %q, want %q and the put's ok reply", log, want)
	}
}
