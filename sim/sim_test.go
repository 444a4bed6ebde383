package sim

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
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

func TestConcurrentBlindWritesBecomeSiblingsAndContextResolvesThem(t *testing.T) {
	c := newCluster(t, Config{Seed: 3})
	pl := preflist(c, "cart")
	// Two blind writes coordinated by two different replicas.
	put(t, c, pl[0], "cart", "apples", nil)
	put(t, c, pl[1], "cart", "pears", nil)
	r := get(t, c, "n1", "cart")
	if got := values(r); !slices.Equal(got, []string{"apples", "pears"}) {
		t.Fatalf("siblings = %v, want both writes", got)
	}
	put(t, c, "n2", "cart", "apples+pears", r.Context)
	r = get(t, c, "n4", "cart")
	if got := values(r); !slices.Equal(got, []string{"apples+pears"}) {
		t.Fatalf("after resolving with the context: %v", got)
	}
}

func TestBlindWritesAtOneCoordinatorStillConflict(t *testing.T) {
	c := newCluster(t, Config{Seed: 4})
	pl := preflist(c, "k")
	put(t, c, pl[0], "k", "a", nil)
	put(t, c, pl[0], "k", "b", nil)
	if got := values(get(t, c, pl[2], "k")); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("siblings = %v", got)
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

func TestDeleteThenWriteWithTombstoneContext(t *testing.T) {
	c := newCluster(t, Config{Seed: 6})
	put(t, c, "n1", "doc", "v1", nil)
	r := get(t, c, "n2", "doc")
	d := do(t, c, "n3", node.Request{Op: node.OpDelete, Key: []byte("doc"), Context: r.Context})
	if d.Code != node.CodeOK {
		t.Fatalf("delete: %s %s", d.Code, d.Err)
	}
	r = get(t, c, "n4", "doc")
	if r.Code != node.CodeNotFound || len(r.Context) == 0 {
		t.Fatalf("after delete: %s, context %d bytes; want not found with the tombstone's context", r.Code, len(r.Context))
	}
	put(t, c, "n5", "doc", "v2", r.Context)
	for _, id := range c.Nodes() {
		if got := values(get(t, c, id, "doc")); !slices.Equal(got, []string{"v2"}) {
			t.Fatalf("via %s: %v; v1 must never come back", id, got)
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

func TestReadRepairFixesStaleReplica(t *testing.T) {
	c := newCluster(t, Config{Seed: 8})
	pl := preflist(c, "rr")
	stale := pl[2]
	put(t, c, pl[0], "rr", "old", nil)
	if err := c.Settle(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	// The third replica misses the update.
	others := slices.DeleteFunc(c.Nodes(), func(id ring.NodeID) bool { return id == stale })
	c.Partition([]ring.NodeID{stale}, others)
	r := get(t, c, pl[0], "rr")
	put(t, c, pl[0], "rr", "new", r.Context)
	if err := c.Settle(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if o, _ := localCopy(t, c, stale, "rr"); string(o.Live()[0].Value) != "old" {
		t.Fatal("setup: the partitioned replica should still hold the old value")
	}
	c.Heal()
	if got := values(get(t, c, pl[1], "rr")); !slices.Equal(got, []string{"new"}) {
		t.Fatalf("get: %v", got)
	}
	if err := c.Settle(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	o, ok := localCopy(t, c, stale, "rr")
	if !ok || len(o.Live()) != 1 || string(o.Live()[0].Value) != "new" {
		t.Fatalf("stale replica after read repair: %v", o.Live())
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
	for _, req := range []node.Request{
		{Op: node.OpPut, Key: nil, Value: []byte("v")},
		{Op: node.OpPut, Key: bytes.Repeat([]byte("k"), 2000), Value: []byte("v")},
		{Op: node.OpPut, Key: []byte("k"), Value: []byte("v"), W: 4},
		{Op: node.OpGet, Key: []byte("k"), R: -1},
		{Op: node.OpPut, Key: []byte("k"), Value: []byte("v"), Context: []byte{0xff, 0x01}},
	} {
		if r := do(t, c, "n1", req); r.Code != node.CodeBadRequest {
			t.Errorf("%+v: got %s, want bad_request", req, r.Code)
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

// A coordinator sends a new version to the replicas before its own fsync.
// If it crashes in between, it restarts with a new epoch: its next write
// gets a fresh dot, not the one the replicas already hold for the lost
// write (which would make them drop the new write as already seen).
func TestCoordinatorCrashBeforeItsFsyncDoesNotReuseDots(t *testing.T) {
	c := newCluster(t, Config{Seed: 13, W: 3, R: 3, Latency: Fixed(time.Millisecond), Fsync: Fixed(20 * time.Millisecond)})
	pl := preflist(c, "dot")
	c.Submit(pl[0], node.Request{Op: node.OpPut, Key: []byte("dot"), Value: []byte("lost")}, func(node.Reply) {})
	c.RunFor(5 * time.Millisecond) // replicas have it (applied); the coordinator's fsync is pending
	c.Crash(pl[0])
	if _, ok := localCopy(t, c, pl[0], "dot"); ok {
		t.Fatal("setup: the coordinator's unsynced write survived the crash")
	}
	if err := c.Restart(pl[0]); err != nil {
		t.Fatal(err)
	}
	c.RunFor(2 * time.Second)
	r := put(t, c, pl[0], "dot", "kept", nil)
	if r.Acks != 3 {
		t.Fatalf("acks %d", r.Acks)
	}
	if err := c.Settle(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, id := range pl {
		o, ok := localCopy(t, c, id, "dot")
		var got []string
		for _, s := range o.Live() {
			got = append(got, string(s.Value))
		}
		if !ok || !slices.Contains(got, "kept") {
			t.Fatalf("%s lost the acknowledged write: %v", id, got)
		}
	}
}
