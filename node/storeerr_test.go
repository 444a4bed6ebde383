package node

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dynago/dynago/cluster"
	"github.com/dynago/dynago/coord"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// brokenDisk is a one-node core (N=1) over a storage.Faulty, with a driver
// that applies each Ready's writes and keeps its outputs for the test to
// look at. Only reads are failed in these tests, so writes always apply.
type brokenDisk struct {
	t    *testing.T
	n    *Node
	disk *storage.Faulty
	now  time.Time
	id   uint64
}

func newBrokenDisk(t *testing.T, disk *storage.Faulty) *brokenDisk {
	t.Helper()
	st, err := cluster.Initial(8, 1, []ring.NodeID{"a"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{ID: "a", Actor: ActorFor("a", 1), State: &st, TreeLeaves: 16}, disk)
	if err != nil {
		t.Fatal(err)
	}
	b := &brokenDisk{t: t, n: n, disk: disk, now: time.Unix(1000, 0)}
	n.Tick(b.now)
	b.drain()
	return b
}

// drain applies every pending Ready and returns them.
func (b *brokenDisk) drain() []Ready {
	b.t.Helper()
	var out []Ready
	for i := 0; b.n.HasReady(); i++ {
		if i == 100 {
			b.t.Fatal("HasReady stays true: a driver looping on it would spin")
		}
		rd := b.n.Ready()
		if err := b.disk.Apply(rd.Batch(), true); err != nil {
			b.t.Fatal(err)
		}
		b.n.Advance()
		out = append(out, rd)
	}
	return out
}

// propose hands the core a client request without draining.
func (b *brokenDisk) propose(op Op, key, value string) {
	b.id++
	b.now = b.now.Add(time.Millisecond)
	b.n.Propose(b.now, Request{ID: b.id, Op: op, Key: []byte(key), Value: []byte(value)})
}

func (b *brokenDisk) put(key, value string) {
	b.t.Helper()
	b.propose(OpPut, key, value)
	for _, rd := range b.drain() {
		for _, r := range rd.Replies {
			if r.ID == b.id && r.Code == CodeOK {
				return
			}
		}
	}
	b.t.Fatalf("put %q: no OK reply", key)
}

// onlyErr asserts that rds is exactly one Ready carrying a storage read
// error (the injected one) and nothing else.
func onlyErr(t *testing.T, rds []Ready) {
	t.Helper()
	if len(rds) != 1 {
		t.Fatalf("got %d Readys, want 1 carrying the read error", len(rds))
	}
	rd := rds[0]
	if !errors.Is(rd.Err, ErrStorageRead) || !errors.Is(rd.Err, storage.ErrInjected) {
		t.Fatalf("Ready.Err = %v, want ErrStorageRead wrapping storage.ErrInjected", rd.Err)
	}
	if len(rd.Writes)+len(rd.Requests)+len(rd.Messages)+len(rd.Replies) != 0 || rd.State != nil {
		t.Fatalf("a stopped core let outputs out: %d writes, %d requests, %d messages, %d replies",
			len(rd.Writes), len(rd.Requests), len(rd.Messages), len(rd.Replies))
	}
}

// TestReadErrorStopsTheCore: a failed read latches the core, as a storage
// error does in raft. The next Ready carries the error and nothing else,
// not even the acknowledgement of an earlier write of the same batch (its
// write will never be made durable); afterwards the core answers nothing,
// even once the disk reads again: only a restart clears it.
func TestReadErrorStopsTheCore(t *testing.T) {
	disk := storage.NewFaulty(storage.NewMem())
	b := newBrokenDisk(t, disk)
	b.put("k", "v")

	b.propose(OpPut, "k2", "v2") // acknowledged in this batch, not yet durable
	disk.FailReads(storage.ErrInjected)
	b.propose(OpGet, "k", "")
	onlyErr(t, b.drain())
	if !errors.Is(b.n.Err(), storage.ErrInjected) {
		t.Fatalf("Err() = %v", b.n.Err())
	}

	disk.FailReads(nil)
	b.propose(OpGet, "k", "")
	b.propose(OpPut, "k3", "v3")
	b.n.Step(b.now, Message{Type: MsgReplicaGet, From: "a", To: "a", ReqID: 9, Key: []byte("k")})
	b.n.SetStatus("a", Dead)
	b.n.Tick(b.now.Add(time.Hour))
	if b.n.HasReady() {
		t.Fatal("HasReady after the error was reported")
	}
	// Every later Ready still names the error, for a driver that missed it.
	onlyErr(t, []Ready{b.n.Ready()})
	if _, err := b.n.Plan(nil); !errors.Is(err, ErrStorageRead) {
		t.Fatalf("Plan on a stopped core: %v", err)
	}
	if err := b.n.StageLeave(b.now, "a"); !errors.Is(err, ErrStorageRead) {
		t.Fatalf("StageLeave on a stopped core: %v", err)
	}
}

// scanBreaker fails a Scan after it has delivered some keys: an iterator
// error halfway, the case where a caller could act on a partial result.
type scanBreaker struct {
	*storage.Faulty
	after int // keys delivered before the failure; <0 never fails
}

var errMidScan = errors.New("test: iterator failed mid-scan")

func (s *scanBreaker) Scan(lower, upper []byte, fn func(k, v []byte) error) error {
	if s.after < 0 {
		return s.Faulty.Scan(lower, upper, fn)
	}
	seen := 0
	return s.Faulty.Scan(lower, upper, func(k, v []byte) error {
		if seen == s.after {
			return fmt.Errorf("%w (%w)", errMidScan, storage.ErrInjected)
		}
		seen++
		return fn(k, v)
	})
}

// TestFailedTreeBuildCachesNothing: a Merkle tree whose scan failed halfway
// is not kept (it would miss keys for the life of the process, and every
// exchange would send or ask for keys wrongly); the core stops instead. A
// fresh core on the same disk, reading normally, builds the full tree.
func TestFailedTreeBuildCachesNothing(t *testing.T) {
	inner := storage.NewFaulty(storage.NewMem())
	b := newBrokenDisk(t, inner)
	for i := range 40 {
		b.put(fmt.Sprintf("key-%d", i), "v")
	}
	p := b.n.Ring().PartitionOf([]byte("key-0"))
	lo, hi := storage.ObjectRange(p)
	inP := 0
	if err := inner.Scan(lo, hi, func(_, _ []byte) error { inP++; return nil }); err != nil {
		t.Fatal(err)
	}
	if inP < 2 {
		t.Fatalf("partition %d holds %d keys; the test needs a scan to fail halfway", p, inP)
	}

	// A restarted node: no tree built yet, and its disk fails mid-scan.
	st := b.n.State()
	broken := &scanBreaker{Faulty: inner, after: -1}
	n, err := New(Config{ID: "a", Actor: ActorFor("a", 2), State: &st, TreeLeaves: 16}, broken)
	if err != nil {
		t.Fatal(err)
	}
	broken.after = inP / 2
	if root := n.TreeRoot(p); root != 0 {
		t.Fatalf("TreeRoot after a failed build = %x, want 0", root)
	}
	if _, cached := n.ae.trees[p]; cached {
		t.Fatal("a tree built from a failed scan was cached")
	}
	if s := n.AEStats(); s.TreeBuilds != 0 || s.TreeBuildKeys != 0 {
		t.Fatalf("a failed build counted as a build: %+v", s)
	}
	rd := n.Ready()
	if !errors.Is(rd.Err, errMidScan) || !errors.Is(rd.Err, ErrStorageRead) {
		t.Fatalf("Ready.Err = %v, want the mid-scan error", rd.Err)
	}

	// The same disk read in full gives a real tree of every key.
	broken.after = -1
	fresh, err := New(Config{ID: "a", Actor: ActorFor("a", 3), State: &st, TreeLeaves: 16}, broken)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.TreeRoot(p) == 0 {
		t.Fatal("a full build has root 0")
	}
	if s := fresh.AEStats(); s.TreeBuilds != 1 || s.TreeBuildKeys != uint64(inP) {
		t.Fatalf("full build: %+v, want 1 build of %d keys", s, inP)
	}
	if fresh.Err() != nil {
		t.Fatal(fresh.Err())
	}
}

// TestAntiEntropyStopsOnReadError: the periodic exchange builds its tree
// from a scan; when that fails, no exchange starts on a partial tree.
func TestAntiEntropyStopsOnReadError(t *testing.T) {
	st, err := cluster.Initial(4, 2, []ring.NodeID{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	disk := storage.NewFaulty(storage.NewMem())
	n, err := New(Config{ID: "a", Actor: ActorFor("a", 1), State: &st, AEInterval: time.Second, TreeLeaves: 16}, disk)
	if err != nil {
		t.Fatal(err)
	}
	disk.FailReads(storage.ErrInjected)
	n.Tick(time.Unix(1000, 0))
	rd := n.Ready()
	if !errors.Is(rd.Err, storage.ErrInjected) {
		t.Fatalf("Ready.Err = %v", rd.Err)
	}
	if len(rd.Requests) != 0 || n.ae.cur != nil || len(n.ae.trees) != 0 {
		t.Fatalf("exchange started on a failed read: requests %v, run %v, trees %d", rd.Requests, n.ae.cur, len(n.ae.trees))
	}
}

// TestNewFailsWhenItCannotLookForOrphans: a restarting core scans for data
// of partitions it no longer replicates; if that scan fails it must not
// start (it would keep the stray copies forever).
func TestNewFailsWhenItCannotLookForOrphans(t *testing.T) {
	st, err := cluster.Initial(8, 1, []ring.NodeID{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	disk := storage.NewFaulty(storage.NewMem())
	disk.FailReads(storage.ErrInjected)
	_, err = New(Config{ID: "a", Actor: ActorFor("a", 1), State: &st}, disk)
	if !errors.Is(err, ErrStorageRead) || !errors.Is(err, storage.ErrInjected) {
		t.Fatalf("New over an unreadable disk: %v", err)
	}
}

// TestConfigErrorsKeepTheirCause: ErrConfig wraps the cause with %w, so
// callers can tell which check failed.
func TestConfigErrorsKeepTheirCause(t *testing.T) {
	st, err := cluster.Initial(8, 3, []ring.NodeID{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(Config{ID: "a", Actor: ActorFor("a", 1), State: &st, W: 4}, storage.NewMem())
	if !errors.Is(err, ErrConfig) || !errors.Is(err, coord.ErrBadQuorum) {
		t.Fatalf("W=4 of N=3: %v, want ErrConfig wrapping coord.ErrBadQuorum", err)
	}
}
