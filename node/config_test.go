package node

import (
	"errors"
	"testing"
	"time"

	"github.com/dynago/dynago/cluster"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// TestPresetsRun: both presets start a core unchanged, every setting is
// filled (so WithDefaults from a preset leaves no zero for validate to
// guess), and the lab preset keeps the daemon's ratios.
func TestPresetsRun(t *testing.T) {
	st, err := cluster.Initial(8, 3, []ring.NodeID{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]Config{"default": DefaultConfig(), "lab": LabConfig()} {
		p.ID, p.Actor, p.State = "a", ActorFor("a", 1), &st
		n, err := New(p, storage.NewMem())
		if err != nil {
			t.Fatalf("%s preset: %v", name, err)
		}
		got := n.cfg
		if got.R != 2 || got.W != 2 {
			t.Errorf("%s preset: R=%d W=%d, want the majority 2 of N=3", name, got.R, got.W)
		}
		// The only fields validate changed are those it derives.
		p.R, p.W = got.R, got.W
		if got != p {
			t.Errorf("%s preset: validate changed it:\n got %+v\nwant %+v", name, got, p)
		}
		if got.HintRetry != 5*got.ReplicaTimeout || got.AETimeout != 10*got.AEInterval {
			t.Errorf("%s preset: HintRetry %v for ReplicaTimeout %v, AETimeout %v for AEInterval %v; want 5× and 10×",
				name, got.HintRetry, got.ReplicaTimeout, got.AETimeout, got.AEInterval)
		}
	}
	if d, l := DefaultConfig(), LabConfig(); d.Partitions != 256 || l.Partitions != 64 {
		t.Errorf("Q: default %d, lab %d; DESIGN says 256 for servers, 64 for the lab", d.Partitions, l.Partitions)
	}
}

// TestWithDefaultsKeepsWhatIsNamed: a driver's overrides survive, zeros
// and only zeros take the preset's value, and a negative AEInterval
// (disabled) is not a zero.
func TestWithDefaultsKeepsWhatIsNamed(t *testing.T) {
	c := Config{ID: "x", N: 5, ReplicaTimeout: 50 * time.Millisecond, AEInterval: -1, TreeLeaves: 16}.WithDefaults(LabConfig())
	lab := LabConfig()
	if c.ID != "x" || c.N != 5 || c.ReplicaTimeout != 50*time.Millisecond || c.AEInterval != -1 || c.TreeLeaves != 16 {
		t.Errorf("overrides lost: %+v", c)
	}
	if c.HintRetry != lab.HintRetry || c.Partitions != lab.Partitions || c.MaxValueSize != lab.MaxValueSize || c.R != 0 {
		t.Errorf("zeros not filled from the preset (R stays 0, a majority): %+v", c)
	}
}

// TestSetDefaults: a changed default applies to the next request that
// names no quorum; zero keeps a value; an out-of-range change is refused
// and changes nothing; a request naming a quorum outside 1..N gets
// CodeBadQuorum.
func TestSetDefaults(t *testing.T) {
	n, now, key, _, _ := newPutNode(t, func(pl, _ []ring.NodeID) ring.NodeID { return pl[0] })
	if err := n.SetDefaults(1, 0); err != nil {
		t.Fatal(err)
	}
	if nrep, r, w := n.Defaults(); nrep != 3 || r != 1 || w != 2 {
		t.Fatalf("after SetDefaults(1, 0): N=%d R=%d W=%d, want 3 1 2", nrep, r, w)
	}
	for _, bad := range [][2]int{{4, 0}, {0, 4}, {-1, 2}, {2, -3}} {
		if err := n.SetDefaults(bad[0], bad[1]); !errors.Is(err, ErrBadQuorum) {
			t.Errorf("SetDefaults(%d, %d) = %v, want ErrBadQuorum", bad[0], bad[1], err)
		}
	}
	if _, r, w := n.Defaults(); r != 1 || w != 2 {
		t.Fatalf("refused changes changed the defaults to R=%d W=%d", r, w)
	}
	if err := n.SetDefaults(0, 3); err != nil {
		t.Fatal(err)
	}
	// W=3 now: the write waits for both other replicas.
	n.Propose(now, Request{ID: 1, Op: OpPut, Key: key, Value: []byte("v"), Timeout: time.Second})
	rd := step(n)
	if len(rd.Replies) != 0 || len(rd.Requests) != 2 {
		t.Fatalf("put after W=3: replies %+v, %d requests", rd.Replies, len(rd.Requests))
	}
	n.Step(now, Message{Type: MsgReplicaPutResp, From: rd.Requests[0].To, ReqID: rd.Requests[0].ReqID})
	if reps := step(n).Replies; len(reps) != 0 {
		t.Fatalf("answered after 2 of W=3: %+v", reps)
	}
	n.Step(now, Message{Type: MsgReplicaPutResp, From: rd.Requests[1].To, ReqID: rd.Requests[1].ReqID})
	if reps := step(n).Replies; len(reps) != 1 || reps[0].Code != CodeOK || reps[0].Required != 3 {
		t.Fatalf("after 3 acks: %+v, want OK with Required 3", reps)
	}
	for i, req := range []Request{
		{ID: 2, Op: OpPut, Key: key, W: 4},
		{ID: 3, Op: OpGet, Key: key, R: 9},
		{ID: 4, Op: OpDelete, Key: key, W: -1},
	} {
		n.Propose(now, req)
		if reps := step(n).Replies; len(reps) != 1 || reps[0].Code != CodeBadQuorum || reps[0].ID != req.ID {
			t.Errorf("request %d (R=%d W=%d): %+v, want one CodeBadQuorum", i, req.R, req.W, reps)
		}
	}
}
