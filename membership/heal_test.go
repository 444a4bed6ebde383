package membership

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/dynago/dynago/internal/testutil"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

// healBound is how long after a partition heals every member must see
// every other alive again, in the lab preset (reconnect backoff capped at
// 2 s, plus the follow-up join and gossip): the daemon promises 15 s; the
// lab gets there in a few, and this leaves room for -race on a loaded box.
const healBound = 8 * time.Second

// splitAndWaitDead cuts the last member off and waits until it and the
// others have declared each other dead, which is where memberlist stops
// trying on its own.
// pastGossipToTheDead makes memberlist stop gossiping to a dead member
// 500 ms after its death instead of the lab's 15 s (LAN 30 s), so these
// tests see in seconds what a partition longer than that looks like: while
// memberlist still gossips to the dead, a heal can be noticed without help.
func pastGossipToTheDead(c *Config) {
	c.tune = func(mc *memberlist.Config) { mc.GossipToTheDeadTime = 500 * time.Millisecond }
}

func splitAndWaitDead(t *testing.T, ms []*tmember, cut *atomic.Bool) {
	t.Helper()
	lone := ms[len(ms)-1]
	cut.Store(true)
	for _, m := range ms[:len(ms)-1] {
		waitReported(t, m, lone.id, node.Dead, detectBound)
		waitReported(t, lone, m.id, node.Dead, detectBound)
	}
}

func deadSomewhere(ms []*tmember) string {
	for _, m := range ms {
		for _, x := range m.Members() {
			if x.Status != node.Alive {
				return fmt.Sprintf("%s sees %s %v", m.id, x.ID, x.Status)
			}
		}
	}
	return ""
}

func TestPartitionLongerThanTheDeadTimeoutHeals(t *testing.T) {
	var cut atomic.Bool
	ms := startCluster(t, 4, func(c *Config) {
		pastGossipToTheDead(c)
		if c.ID == "n4" {
			c.WrapTransport = gate(&cut)
		}
	})
	splitAndWaitDead(t, ms, &cut)
	// Stay apart well past the dead mark: memberlist has stopped probing
	// the dead by now, and the reconnect loop has backed off to its cap.
	time.Sleep(3 * time.Second)
	if d := deadSomewhere(ms); d == "" {
		t.Fatal("the partition did not hold: everyone alive while cut")
	}

	cut.Store(false)
	healed := time.Now()
	for _, m := range ms {
		waitAllAlive(t, m, ms, healBound)
	}
	t.Logf("every member sees every other alive %v after the heal", time.Since(healed).Round(time.Millisecond))
	var attempts, successes uint64
	for _, m := range ms {
		st := m.Stats()
		attempts += st.ReconnectAttempts
		successes += st.ReconnectSuccesses
	}
	if successes == 0 || attempts <= successes {
		t.Errorf("reconnect counters: %d attempts, %d answered; want failures while cut and a success after", attempts, successes)
	}
}

// The negative control: with the reconnect loop held back, memberlist
// alone leaves the two sides apart after the heal (hashicorp/memberlist
// #222). If this starts failing, memberlist heals by itself now.
func TestWithoutReconnectAPartitionStaysSplit(t *testing.T) {
	var cut atomic.Bool
	ms := startCluster(t, 3, func(c *Config) {
		c.Reconnect = Reconnect{Interval: time.Hour}
		pastGossipToTheDead(c)
		if c.ID == "n3" {
			c.WrapTransport = gate(&cut)
		}
	})
	splitAndWaitDead(t, ms, &cut)
	cut.Store(false)
	time.Sleep(healBound)
	if d := deadSomewhere(ms); d == "" {
		t.Fatal("healed without the reconnect loop: is it still needed?")
	} else {
		t.Logf("%v after the heal without reconnect: %s", healBound, d)
	}
}

func TestGracefulLeaveIsNotRetried(t *testing.T) {
	ms := startCluster(t, 3, nil)
	a, b, c := ms[0], ms[1], ms[2]
	if err := c.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*tmember{a, b} {
		// A member that missed memberlist's leave notice on a loaded
		// machine finds n3 dead by probing it: it must still not retry.
		waitReported(t, m, "n3", node.Dead, detectBound)
	}
	// Six lab intervals: a crashed member would have been tried by now
	// (TestDeadMemberIsRetriedUntilReaped).
	time.Sleep(1500 * time.Millisecond)
	for _, m := range []*tmember{a, b} {
		if n := m.Stats().ReconnectAttempts; n != 0 {
			t.Errorf("%s made %d reconnect attempts to a member that left", m.id, n)
		}
	}
}

func TestDeadMemberIsRetriedUntilReaped(t *testing.T) {
	const reap = 1500 * time.Millisecond
	ms := startCluster(t, 3, func(c *Config) { c.Reconnect.ReapTimeout = reap })
	a, b, c := ms[0], ms[1], ms[2]
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitReported(t, a, "n3", node.Dead, detectBound)
	dead := time.Now()
	testutil.Eventually(t, reap, "n1 retries the crashed n3", func() bool { return a.Stats().ReconnectAttempts > 0 })
	// Past the reap timeout (plus one attempt that may be under way), the
	// attempts stop; the member is still listed, as Dead.
	time.Sleep(time.Until(dead.Add(reap + time.Second)))
	before := a.Stats().ReconnectAttempts
	time.Sleep(time.Second)
	if after := a.Stats().ReconnectAttempts; after != before {
		t.Errorf("n1 still retrying after the reap timeout: %d attempts, then %d", before, after)
	}
	if st, ok := statusOf(a.Membership, "n3"); !ok || st != node.Dead {
		t.Errorf("n3 after reaping: %v (listed %v), want Dead and listed", st, ok)
	}
	_ = b
}

func TestSeedsAreRetriedWhenNobodyAnswered(t *testing.T) {
	// n2 is given n1's address before n1 runs; its one Join fails, and no
	// caller retries it: the reconnect loop must.
	port := testutil.FreeGossipPort(t)
	b := startMember(t, "n2", 0, nil)
	if _, err := b.Join([]string{fmt.Sprintf("127.0.0.1:%d", port)}); !errors.Is(err, ErrJoin) {
		t.Fatalf("join with nobody there: %v", err)
	}
	a := startMember(t, "n1", port, nil)
	for _, m := range []*tmember{a, b} {
		waitAllAlive(t, m, []*tmember{a, b}, joinBound)
	}
}

func TestClusterNameKeepsClustersApart(t *testing.T) {
	named := func(name string) func(*Config) { return func(c *Config) { c.ClusterName = name } }
	alpha := startMember(t, "a1", 0, named("alpha"))
	beta := startMember(t, "b1", 0, named("beta"))
	plain := startMember(t, "p1", 0, nil)

	if n, err := beta.Join([]string{alpha.Addr()}); !errors.Is(err, ErrJoin) || n != 0 {
		t.Errorf("beta joined alpha: %d, %v", n, err)
	}
	if n, err := plain.Join([]string{alpha.Addr()}); !errors.Is(err, ErrJoin) || n != 0 {
		t.Errorf("an unnamed member joined alpha: %d, %v", n, err)
	}
	alpha2 := startMember(t, "a2", 0, named("alpha"))
	if n, err := alpha2.Join([]string{alpha.Addr()}); err != nil || n != 1 {
		t.Fatalf("a2 could not join its own cluster: %d, %v", n, err)
	}
	both := []*tmember{alpha, alpha2}
	for _, m := range both {
		waitAllAlive(t, m, both, joinBound)
	}
	// Neither the refused joins nor their retries by the reconnect loop
	// let anyone in.
	time.Sleep(time.Second)
	for _, m := range []*tmember{alpha, alpha2, beta, plain} {
		for _, x := range m.Members() {
			if x.ID[0] != m.id[0] {
				t.Errorf("%s lists %s from another cluster", m.id, x.ID)
			}
		}
	}
}

// ringLike stands in for the daemon's ring decoder: a valid state starts
// with "ring:".
func ringLike(v uint64, b []byte) error {
	if !bytes.HasPrefix(b, []byte("ring:")) {
		return errors.New("not a ring")
	}
	return nil
}

func TestForgedStatesAreRejectedAndLaterChangesStillSpread(t *testing.T) {
	ms := startCluster(t, 3, func(c *Config) { c.ValidateState = ringLike })
	// The forger is a member of the cluster that validates nothing and
	// publishes what no honest member would: garbage, then a well-formed
	// state with the largest version there is. Both are too large for a
	// broadcast, so they go to every member directly (an honest member
	// passes on only states it adopted).
	rogue := startMember(t, "rogue", 0, nil)
	if _, err := rogue.Join([]string{ms[0].Addr()}); err != nil {
		t.Fatal(err)
	}
	// The forger's pushes go to the members it knows alive.
	waitAllAlive(t, rogue, append([]*tmember{rogue}, ms...), joinBound)
	pad := bytes.Repeat([]byte{'x'}, 2*maxBroadcastState)
	if err := rogue.SetState(7, append([]byte("garbage, not a ring"), pad...)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, stateBound, "every member rejected the garbage", func() bool {
		for _, m := range ms {
			if m.Stats().StatesRejected == 0 {
				return false
			}
		}
		return true
	})
	before := ms[0].Stats().StatesRejected
	if err := rogue.SetState(math.MaxUint64, append([]byte("ring:forged"), pad...)); err != nil {
		t.Fatal(err)
	}
	// Raw bytes straight into a member's receive path, as a packet
	// carrying them would arrive.
	for _, raw := range [][]byte{{msgState}, {msgState, 1, 2}, {0xff, 0xfe}, newClusterState(MaxStateVersion+1, []byte("ring:x")).msg, newClusterState(0, []byte("ring:x")).msg} {
		hooks{ms[1].Membership}.NotifyMsg(raw)
		hooks{ms[1].Membership}.MergeRemoteState(raw, false)
	}
	testutil.Eventually(t, stateBound, "n1 rejected the forged version", func() bool { return ms[0].Stats().StatesRejected > before })
	if v, _ := rogue.State(); v != math.MaxUint64 {
		t.Fatalf("the forger holds v%d", v)
	}
	for _, m := range ms {
		if v, _ := m.State(); v != 0 {
			t.Errorf("%s adopted a forged state: version %d", m.id, v)
		}
		if log := m.rec.stateLog(); len(log) != 0 {
			t.Errorf("%s handed a forged state to OnState: %v", m.id, log)
		}
	}

	// Legitimate changes still go through, everywhere. They are ring-sized
	// (a real ring's encoding is kilobytes), so each is sent to every
	// member directly: a small broadcast's fan-out is random, and the
	// forger, holding its own "newer" state, passes nothing on.
	var last []byte
	for v, from := range []*tmember{ms[0], ms[2]} {
		version := uint64(v + 1)
		last = append(fmt.Appendf(nil, "ring:v%d", version), pad...)
		if err := from.SetState(version, last); err != nil {
			t.Fatalf("%s publishing v%d: %v", from.id, version, err)
		}
		for _, m := range ms {
			waitState(t, m, version, last, 2*stateBound)
		}
	}
	checkStateLog(t, ms[1], 2, last)
}

// newBareMembership is a Membership with no network, enough for the
// receive path.
func newBareMembership(validate func(uint64, []byte) error) *Membership {
	m := &Membership{
		cfg:          Config{ID: "n1", ValidateState: validate},
		log:          slog.New(slog.DiscardHandler),
		members:      map[ring.NodeID]*entry{},
		state:        newClusterState(0, nil),
		wakeDispatch: make(chan struct{}, 1),
		stop:         make(chan struct{}),
	}
	m.bcast = &memberlist.TransmitLimitedQueue{NumNodes: m.numLive, RetransmitMult: 2}
	return m
}

// FuzzReceive feeds arbitrary bytes to the path every gossip message takes
// (broadcast, SendReliable and push/pull alike): it must never panic, and
// a state it adopts must be one validation accepts.
func FuzzReceive(f *testing.F) {
	f.Add(newClusterState(3, []byte("ring:ok")).msg)
	f.Add(newClusterState(math.MaxUint64, []byte("ring:forged")).msg)
	f.Add(newClusterState(MaxStateVersion, []byte("ring:max")).msg)
	f.Add(newClusterState(5, []byte("junk")).msg)
	f.Add(encodeLeave("n2"))
	f.Add([]byte{msgLeave})
	f.Add([]byte{9, 9, 9})
	f.Fuzz(func(t *testing.T, buf []byte) {
		m := newBareMembership(ringLike)
		m.receive(buf, "fuzz")
		v, data := m.State()
		if v == 0 {
			return
		}
		if v > MaxStateVersion || ringLike(v, data) != nil {
			t.Fatalf("adopted an invalid state: v%d %q", v, data)
		}
		if m.Stats().StatesRejected != 0 {
			t.Fatal("adopted and rejected the same message")
		}
	})
}
