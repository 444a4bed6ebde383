package server

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/dynago/dynago/cluster"
	"github.com/dynago/dynago/internal/testutil"
	"github.com/dynago/dynago/membership"
	"github.com/dynago/dynago/ring"
)

func TestDecodeGossipState(t *testing.T) {
	st, err := cluster.Initial(8, 2, []ring.NodeID{"n1", "n2", "n3"})
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := st.Ring()
	if _, err := decodeGossipState(1, cluster.Encode(st), cur); err != nil {
		t.Fatalf("a valid state: %v", err)
	}
	if _, err := decodeGossipState(1, cluster.Encode(st), nil); err != nil {
		t.Fatalf("a valid state, no ring held yet: %v", err)
	}
	mod := func(f func(*cluster.State)) []byte {
		c := st.Clone()
		f(&c)
		return cluster.Encode(c)
	}
	other, _ := cluster.Initial(16, 2, []ring.NodeID{"n1", "n2"})
	for name, raw := range map[string][]byte{
		"garbage":              []byte("\x00\xffnot json"),
		"version 0":            mod(func(c *cluster.State) { c.Version = 0 }),
		"another version":      mod(func(c *cluster.State) { c.Version = 9 }),
		"another Q":            cluster.Encode(other),
		"another N":            mod(func(c *cluster.State) { c.N = 5 }),
		"Q not a power of two": mod(func(c *cluster.State) { c.Partitions = 7; c.Owners = c.Owners[:7] }),
		"empty owner":          mod(func(c *cluster.State) { c.Owners[3] = "" }),
		"owner with a newline": mod(func(c *cluster.State) { c.Owners[3] = "n1\nn2" }),
		"owner ID too long":    mod(func(c *cluster.State) { c.Owners[3] = ring.NodeID(bytes.Repeat([]byte("n"), 300)) }),
		"handoff without transition": mod(func(c *cluster.State) {
			c.Done = []cluster.Handoff{{Partition: 1, To: "n1"}}
		}),
		"handoff out of range": mod(func(c *cluster.State) {
			c.Next, c.Claimant = c.Owners, "n1"
			c.Done = []cluster.Handoff{{Partition: 8, To: "n1"}}
		}),
		"handoff to a stranger": mod(func(c *cluster.State) {
			c.Next, c.Claimant = c.Owners, "n1"
			c.Done = []cluster.Handoff{{Partition: 1, To: "n9"}}
		}),
	} {
		if _, err := decodeGossipState(1, raw, cur); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// A forged state sent to a running server is refused and counted, the
// server keeps its ring, and each peer's liveness is exported.
func TestForgedGossipStateIsRefusedAndCounted(t *testing.T) {
	srvs := startCluster(t, 2, func(c *Config) { c.Preset = "lab" })
	if _, err := srvs[1].members.Join([]string{srvs[0].members.Addr()}); err != nil {
		t.Fatal(err)
	}
	gather := func(s *Server, name, peer string) (float64, bool) {
		mfs, err := s.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				if peer != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != peer) {
					continue
				}
				if c := m.GetCounter(); c != nil {
					return c.GetValue(), true
				}
				return m.GetGauge().GetValue(), true
			}
		}
		return 0, false
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		testutil.Eventually(t, 10*time.Second, what, cond)
	}
	waitFor("n2 exports n1 alive", func() bool { v, ok := gather(srvs[1], "dynago_member_status", "n1"); return ok && v == 2 })

	// The forger speaks the cluster's gossip (same name) and publishes
	// states no honest node would, large enough to be sent to each member
	// directly.
	rogue, err := membership.Start(membership.Config{
		ID: "rogue", BindAddr: "127.0.0.1:0", Preset: membership.PresetLab, ClusterName: "dynago",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rogue.Shutdown()
	if _, err := rogue.Join([]string{srvs[0].members.Addr()}); err != nil {
		t.Fatal(err)
	}
	waitFor("the forger sees both nodes", func() bool { return len(rogue.Members()) == 3 })
	valid := srvs[0].core.State()
	other, _ := cluster.Initial(1024, 3, []ring.NodeID{"x1", "x2", "x3"}) // another cluster's Q
	other.Version = valid.Version + 1
	forged := valid.Clone()
	forged.Version = math.MaxUint64
	for _, s := range []struct {
		v   uint64
		raw []byte
	}{
		{valid.Version + 1, append([]byte("not a state at all"), bytes.Repeat([]byte{' '}, 2048)...)},
		{other.Version, cluster.Encode(other)},
		{math.MaxUint64, append(cluster.Encode(forged), bytes.Repeat([]byte{' '}, 2048)...)},
	} {
		before, _ := gather(srvs[0], "dynago_gossip_states_rejected_total", "")
		if err := rogue.SetState(s.v, s.raw); err != nil {
			t.Fatal(err)
		}
		waitFor("n1 counts the refusal", func() bool {
			v, _ := gather(srvs[0], "dynago_gossip_states_rejected_total", "")
			return v > before
		})
	}
	for _, s := range srvs {
		if v := s.Ring().Version(); v != valid.Version {
			t.Errorf("%s: ring version %d after the forgeries, want %d", s.cfg.ID, v, valid.Version)
		}
		if v, _ := s.members.State(); v != valid.Version && v != 0 {
			t.Errorf("%s: gossip holds version %d", s.cfg.ID, v)
		}
	}
	if _, ok := gather(srvs[0], "dynago_gossip_reconnect_attempts_total", ""); !ok {
		t.Error("reconnect attempts not exported")
	}

	// A gossip member outside the ring is exported while alive, and
	// forgotten once dead: a departed node must not leave a series at 0
	// for ever (an alert on it would never clear).
	waitFor("n1 exports the forger alive", func() bool { v, ok := gather(srvs[0], "dynago_member_status", "rogue"); return ok && v == 2 })
	rogue.Shutdown()
	waitFor("n1 drops the dead forger's series", func() bool { _, ok := gather(srvs[0], "dynago_member_status", "rogue"); return !ok })

	// A peer of the ring that goes away is exported as dead.
	srvs[1].Close()
	waitFor("n1 exports n2 dead", func() bool { v, ok := gather(srvs[0], "dynago_member_status", "n2"); return ok && v == 0 })
}

func TestClusterNameIsValidated(t *testing.T) {
	c := Config{ID: "a", DataDir: "x", ClusterName: "has space"}
	if err := c.validate(); !errors.Is(err, ErrConfig) {
		t.Errorf("a cluster name with a space: %v", err)
	}
	c = Config{ID: "a", DataDir: "x"}
	if err := c.validate(); err != nil || c.ClusterName != "dynago" {
		t.Errorf("default cluster name %q, %v", c.ClusterName, err)
	}
}
