package membership

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/dynago/dynago/internal/testutil"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

// Lab-preset bounds the tests hold the failure detector to. The expected
// times are about 1–2 s (see labConfig); the bounds leave room for a
// loaded machine running -race.
const (
	detectBound = 5 * time.Second // crash → Dead everywhere
	leaveBound  = 2 * time.Second // Leave → Dead everywhere
	joinBound   = 5 * time.Second
	stateBound  = 2 * time.Second // a published state reaches everyone
)

func TestJoinThroughSeedSeesAllAliveWithMeta(t *testing.T) {
	logs := &captureHandler{}
	ms := startCluster(t, 3, func(c *Config) {
		if c.ID == "n1" {
			c.Logger = slog.New(logs)
		}
	})
	for _, m := range ms {
		got := m.Members()
		var want []Member
		for _, x := range ms {
			want = append(want, Member{ID: x.id, Addr: fmt.Sprintf("127.0.0.1:%d", x.port), Meta: metaFor(x.id, x.port), Status: node.Alive})
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s members:\n got %+v\nwant %+v", m.id, got, want)
		}
		// Every member, itself included, is announced Alive with its meta.
		// Callbacks run after the table changes, so they may lag a little.
		for _, x := range want {
			testutil.Eventually(t, time.Second, fmt.Sprintf("%s reports %+v", m.id, x), func() bool {
				ev, ok := m.rec.lastEvent(x.ID)
				return ok && ev.Member == x
			})
		}
	}

	// Meta changes reach the others as events.
	newMeta := Meta{HTTPAddr: "127.0.0.1:1", RPCAddr: "127.0.0.1:2"}
	if err := ms[1].UpdateMeta(newMeta); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*tmember{ms[0], ms[2]} {
		testutil.Eventually(t, joinBound, string(m.id)+" sees n2's new meta", func() bool {
			ev, ok := m.rec.lastEvent("n2")
			return ok && ev.Member.Meta == newMeta && ev.Member.Status == node.Alive
		})
	}

	// memberlist's own log lines arrive in slog, at debug level.
	lines := logs.memberlistLines()
	if len(lines) == 0 {
		t.Fatal("no memberlist log lines reached the slog logger")
	}
	for _, l := range lines {
		if l != slog.LevelDebug {
			t.Fatalf("memberlist line logged at %v, want debug", l)
		}
	}
}

func TestCrashIsSuspectedThenDeadThenRejoins(t *testing.T) {
	ms := startCluster(t, 3, nil)
	a, b, c := ms[0], ms[1], ms[2]

	crashed := time.Now()
	if err := c.Shutdown(); err != nil { // no Leave: to the others, a crash
		t.Fatal(err)
	}
	for _, m := range []*tmember{a, b} {
		waitReported(t, m, "n3", node.Dead, detectBound)
		t.Logf("%s: n3 dead after %v; history %v", m.id, time.Since(crashed).Round(time.Millisecond), m.rec.history("n3"))
	}

	// SWIM suspects before it declares death: the member whose probe failed
	// first raised the suspicion, so at least one saw Suspect before Dead.
	// A member that learns of the death by gossip first may skip Suspect.
	sawSuspect := false
	for _, m := range []*tmember{a, b} {
		h := m.rec.history("n3")
		if len(h) == 0 || h[0] != node.Alive {
			t.Errorf("%s: history of n3 %v does not start Alive", m.id, h)
		}
		if i := slices.Index(h, node.Dead); i != len(h)-1 {
			t.Errorf("%s: history of n3 %v has changes after Dead", m.id, h)
		}
		if i := slices.Index(h, node.Suspect); i >= 0 && i < len(h)-1 && h[len(h)-1] == node.Dead {
			sawSuspect = true
		}
	}
	if !sawSuspect {
		t.Errorf("no member saw n3 Suspect before Dead: %v, %v", a.rec.history("n3"), b.rec.history("n3"))
	}

	// A crashed member restarted on the same address with the same ID is
	// Alive again: memberlist refutes the death it is told about on join.
	c2 := startMember(t, "n3", c.port, nil)
	if _, err := c2.Join([]string{a.Addr()}); err != nil {
		t.Fatal(err)
	}
	all := []*tmember{a, b, c2}
	for _, m := range all {
		waitAllAlive(t, m, all, joinBound)
	}
	for _, m := range []*tmember{a, b} {
		waitReported(t, m, "n3", node.Alive, time.Second)
	}
}

func TestLeaveIsDeadAtOnceAndRejoinIsAlive(t *testing.T) {
	ms := startCluster(t, 3, nil)
	a, b, c := ms[0], ms[1], ms[2]

	left := time.Now()
	if err := c.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*tmember{a, b} {
		waitReported(t, m, "n3", node.Dead, leaveBound)
		// A leave is announced, so nobody needs to suspect first.
		if h := m.rec.history("n3"); slices.Contains(h, node.Suspect) {
			t.Errorf("%s: n3 was suspected although it left: %v", m.id, h)
		}
	}
	t.Logf("n3 dead everywhere %v after Leave", time.Since(left).Round(time.Millisecond))

	c2 := startMember(t, "n3", c.port, nil)
	if _, err := c2.Join([]string{b.Addr()}); err != nil {
		t.Fatal(err)
	}
	all := []*tmember{a, b, c2}
	for _, m := range all {
		waitAllAlive(t, m, all, joinBound)
	}
}

func TestSuspectRecoversWhenTheNodeAnswersAgain(t *testing.T) {
	var cut atomic.Bool
	ms := startCluster(t, 3, func(c *Config) {
		// Suspicion lasts 20 s here, so the cut member is only ever Suspect.
		c.tune = func(mc *memberlist.Config) { mc.SuspicionMult = 100 }
		if c.ID == "n3" {
			c.WrapTransport = gate(&cut)
		}
	})
	a, b := ms[0], ms[1]

	cut.Store(true)
	for _, m := range []*tmember{a, b} {
		waitReported(t, m, "n3", node.Suspect, detectBound)
	}
	cut.Store(false)
	for _, m := range []*tmember{a, b} {
		waitReported(t, m, "n3", node.Alive, detectBound)
		if h := m.rec.history("n3"); slices.Contains(h, node.Dead) {
			t.Errorf("%s: n3 was declared dead: %v", m.id, h)
		}
	}
}

// noPushPull makes the periodic push/pull too rare to matter, so a state
// that arrives in time must have come by broadcast or SendReliable.
func noPushPull(c *Config) {
	c.tune = func(mc *memberlist.Config) { mc.PushPullInterval = time.Hour }
}

func waitState(t *testing.T, m *tmember, v uint64, data []byte, within time.Duration) {
	t.Helper()
	testutil.Eventually(t, within, fmt.Sprintf("%s holds state v%d", m.id, v), func() bool {
		gv, gd := m.State()
		return gv == v && bytes.Equal(gd, data)
	})
}

// checkStateLog checks OnState saw strictly increasing states, ending with
// (v, data).
func checkStateLog(t *testing.T, m *tmember, v uint64, data []byte) {
	t.Helper()
	testutil.Eventually(t, time.Second, fmt.Sprintf("%s's OnState reports v%d", m.id, v), func() bool {
		log := m.rec.stateLog()
		return len(log) > 0 && log[len(log)-1].version >= v
	})
	log := m.rec.stateLog()
	for i := 1; i < len(log); i++ {
		p, q := log[i-1], log[i]
		if compareStates(p.version, []byte(p.data), q.version, []byte(q.data)) >= 0 {
			t.Errorf("%s: OnState went from v%d to v%d (not newer)", m.id, p.version, q.version)
		}
	}
	if len(log) == 0 || log[len(log)-1].version != v || log[len(log)-1].data != string(data) {
		t.Errorf("%s: OnState log ends %v, want v%d", m.id, log, v)
	}
}

func TestStateReachesEveryMember(t *testing.T) {
	ms := startCluster(t, 3, noPushPull)

	small := []byte("ring v1: small enough for one UDP broadcast")
	if err := ms[0].SetState(1, small); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[1:] {
		waitState(t, m, 1, small, stateBound)
	}

	// A ring of 1024 partitions is several KB: too big for a broadcast, so
	// it goes to every member over TCP.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1024)
	if err := ms[1].SetState(2, big); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*tmember{ms[0], ms[2]} {
		waitState(t, m, 2, big, stateBound)
	}
	checkStateLog(t, ms[0], 2, big)
	checkStateLog(t, ms[2], 2, big)
	// n2's own SetState is not reported back to it.
	checkStateLog(t, ms[1], 1, small)

	// Republishing the held state is a no-op; an older one is refused.
	if err := ms[2].SetState(2, big); err != nil {
		t.Errorf("republishing the current state: %v", err)
	}
	if err := ms[2].SetState(1, []byte("late")); !errors.Is(err, ErrStaleState) {
		t.Errorf("SetState with an older version: %v, want ErrStaleState", err)
	}
	if err := ms[2].SetState(3, make([]byte, MaxStateSize+1)); !errors.Is(err, ErrStateTooLarge) {
		t.Errorf("SetState of %d bytes: %v, want ErrStateTooLarge", MaxStateSize+1, err)
	}
}

func TestOlderStateNeverOverridesNewer(t *testing.T) {
	ms := startCluster(t, 3, nil)
	newer := []byte("ring v5")
	if err := ms[0].SetState(5, newer); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		waitState(t, m, 5, newer, stateBound)
	}

	// A member that was apart holds an older state, which it broadcast, and
	// brings it along when it joins.
	late := startMember(t, "n4", 0, nil)
	if err := late.SetState(3, []byte("ring v3, stale")); err != nil {
		t.Fatal(err)
	}
	if _, err := late.Join([]string{ms[1].Addr()}); err != nil {
		t.Fatal(err)
	}
	waitState(t, late, 5, newer, stateBound)
	// Give the stale broadcast time to reach everyone, then check nobody
	// took it.
	time.Sleep(time.Second)
	for _, m := range append(ms, late) {
		if v, d := m.State(); v != 5 || !bytes.Equal(d, newer) {
			t.Errorf("%s holds v%d %q, want v5", m.id, v, d)
		}
	}
	for _, m := range ms[1:] {
		checkStateLog(t, m, 5, newer)
	}
	checkStateLog(t, late, 5, newer)
}

func TestEqualVersionsConvergeOnTheLargerBytes(t *testing.T) {
	// Two clusters each publish version 7, then merge.
	left := startCluster(t, 2, nil)
	right := []*tmember{startMember(t, "n9", 0, nil)}
	if err := left[0].SetState(7, []byte("aaa")); err != nil {
		t.Fatal(err)
	}
	if err := right[0].SetState(7, []byte("bbb")); err != nil {
		t.Fatal(err)
	}
	waitState(t, left[1], 7, []byte("aaa"), stateBound)
	if _, err := right[0].Join([]string{left[1].Addr()}); err != nil {
		t.Fatal(err)
	}
	for _, m := range append(left, right...) {
		waitState(t, m, 7, []byte("bbb"), stateBound)
	}
}

func TestBindsExactlyTheConfiguredAddress(t *testing.T) {
	port := testutil.FreeGossipPort(t)
	m := startMember(t, "n1", port, nil)
	want := fmt.Sprintf("127.0.0.1:%d", port)
	if m.Addr() != want {
		t.Fatalf("Addr() = %q, want %q", m.Addr(), want)
	}
	// The port is taken on 127.0.0.1, for both protocols...
	if ln, err := net.Listen("tcp", want); err == nil {
		ln.Close()
		t.Errorf("TCP %s is not bound by the member", want)
	}
	if pc, err := net.ListenPacket("udp", want); err == nil {
		pc.Close()
		t.Errorf("UDP %s is not bound by the member", want)
	}
	// ...but free on another loopback address, so the member did not bind
	// every interface.
	other := fmt.Sprintf("127.0.0.2:%d", port)
	ln, err := net.Listen("tcp", other)
	if err != nil {
		t.Fatalf("TCP %s is taken too: the member bound more than 127.0.0.1: %v", other, err)
	}
	ln.Close()
	pc, err := net.ListenPacket("udp", other)
	if err != nil {
		t.Fatalf("UDP %s is taken too: the member bound more than 127.0.0.1: %v", other, err)
	}
	pc.Close()

	// Port 0 binds a free port, which Addr reports.
	m0 := startMember(t, "n2", 0, func(c *Config) { c.BindAddr = "127.0.0.1:0" })
	host, p, err := net.SplitHostPort(m0.Addr())
	if err != nil || host != "127.0.0.1" || p == "0" {
		t.Fatalf("Addr() with port 0 = %q", m0.Addr())
	}
	if _, err := m0.Join([]string{m.Addr()}); err != nil {
		t.Fatalf("joining through a member on a kernel-chosen port: %v", err)
	}
}

func TestAdvertiseAddrIsWhatOthersSee(t *testing.T) {
	// Bind one port and advertise another (as behind a port mapping): the
	// others must record the advertised address.
	bindPort, advPort := testutil.FreeGossipPort(t), testutil.FreeGossipPort(t)
	adv := fmt.Sprintf("127.0.0.1:%d", advPort)
	m := startMember(t, "n1", bindPort, func(c *Config) { c.AdvertiseAddr = adv })
	if m.Addr() != adv {
		t.Fatalf("Addr() = %q, want the advertised %q", m.Addr(), adv)
	}
	b := startMember(t, "n2", 0, nil)
	if _, err := b.Join([]string{fmt.Sprintf("127.0.0.1:%d", bindPort)}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, joinBound, "n2 knows n1 by its advertised address", func() bool {
		for _, x := range b.Members() {
			if x.ID == "n1" {
				return x.Addr == adv
			}
		}
		return false
	})
}

func TestConfigErrors(t *testing.T) {
	port := testutil.FreeGossipPort(t)
	bind := fmt.Sprintf("127.0.0.1:%d", port)
	cases := []struct {
		name string
		cfg  Config
		want error
	}{
		{"empty ID", Config{BindAddr: bind}, ErrConfig},
		{"no bind address", Config{ID: "n1"}, ErrConfig},
		{"no host means every interface", Config{ID: "n1", BindAddr: fmt.Sprintf(":%d", port)}, ErrConfig},
		{"host name", Config{ID: "n1", BindAddr: fmt.Sprintf("localhost:%d", port)}, ErrConfig},
		{"no port", Config{ID: "n1", BindAddr: "127.0.0.1"}, ErrConfig},
		{"bad port", Config{ID: "n1", BindAddr: "127.0.0.1:70000"}, ErrConfig},
		{"IPv6 any without advertise", Config{ID: "n1", BindAddr: fmt.Sprintf("[::]:%d", port)}, ErrConfig},
		{"advertise without port", Config{ID: "n1", BindAddr: bind, AdvertiseAddr: "10.0.0.1"}, ErrConfig},
		{"advertise any", Config{ID: "n1", BindAddr: bind, AdvertiseAddr: "0.0.0.0:7946"}, ErrConfig},
		{"unknown preset", Config{ID: "n1", BindAddr: bind, Preset: "wan"}, ErrConfig},
		{"meta too large", Config{ID: "n1", BindAddr: bind, Meta: Meta{HTTPAddr: strings.Repeat("x", 600) + ":1"}}, ErrMetaTooLarge},
		{"meta address not host:port", Config{ID: "n1", BindAddr: bind, Meta: Meta{RPCAddr: "nohost"}}, errBadMeta},
		{"cluster name with a space", Config{ID: "n1", BindAddr: bind, ClusterName: "my cluster"}, ErrConfig},
		{"cluster name too long", Config{ID: "n1", BindAddr: bind, ClusterName: strings.Repeat("c", 65)}, ErrConfig},
		{"negative reconnect interval", Config{ID: "n1", BindAddr: bind, Reconnect: Reconnect{Interval: -time.Second}}, ErrConfig},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Start(tc.cfg)
			if err == nil {
				m.Shutdown()
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Start: %v, want %v", err, tc.want)
			}
		})
	}

	// The port stays bound by a running member: a second one fails cleanly.
	startMember(t, "n1", port, nil)
	if m, err := Start(Config{ID: "n2", BindAddr: bind, Preset: PresetLab}); !errors.Is(err, ErrBind) {
		if err == nil {
			m.Shutdown()
		}
		t.Fatalf("second member on the same address: %v, want ErrBind", err)
	}
}

func TestCallsAfterShutdown(t *testing.T) {
	m := startMember(t, "n1", 0, nil)
	if err := m.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := m.Shutdown(); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if _, err := m.Join([]string{"127.0.0.1:1"}); !errors.Is(err, ErrShutdown) {
		t.Errorf("Join after Shutdown: %v", err)
	}
	if err := m.SetState(1, nil); !errors.Is(err, ErrShutdown) {
		t.Errorf("SetState after Shutdown: %v", err)
	}
	if err := m.UpdateMeta(Meta{}); !errors.Is(err, ErrShutdown) {
		t.Errorf("UpdateMeta after Shutdown: %v", err)
	}
	if err := m.Leave(time.Second); !errors.Is(err, ErrShutdown) {
		t.Errorf("Leave after Shutdown: %v", err)
	}
}

func TestJoinErrors(t *testing.T) {
	m := startMember(t, "n1", 0, nil)
	if _, err := m.Join(nil); !errors.Is(err, ErrJoin) {
		t.Errorf("Join(nil): %v, want ErrJoin", err)
	}
	nobody := fmt.Sprintf("127.0.0.1:%d", testutil.FreeGossipPort(t))
	if n, err := m.Join([]string{nobody}); !errors.Is(err, ErrJoin) || n != 0 {
		t.Errorf("Join(%s) with nobody there: %d, %v; want 0, ErrJoin", nobody, n, err)
	}
	if got := m.Members(); len(got) != 1 || got[0].ID != ring.NodeID("n1") {
		t.Errorf("members after failed join: %+v", got)
	}
}

func TestForeignMemberlistNodeIsRefused(t *testing.T) {
	m := startMember(t, "n1", 0, nil)

	// A plain memberlist node, as another product's agent on a reused
	// port would be: no dynago meta.
	fc := memberlist.DefaultLocalConfig()
	fc.Name = "foreign"
	fc.BindAddr, fc.BindPort = "127.0.0.1", testutil.FreeGossipPort(t)
	fc.AdvertisePort = fc.BindPort
	fc.LogOutput = io.Discard
	foreign, err := memberlist.Create(fc)
	if err != nil {
		t.Fatal(err)
	}
	defer foreign.Shutdown()
	if _, err := foreign.Join([]string{m.Addr()}); err != nil {
		t.Fatal(err)
	}
	// A dynago member joining the same way shows up, the foreign one never.
	friend := startMember(t, "n2", 0, nil)
	if _, err := friend.Join([]string{m.Addr()}); err != nil {
		t.Fatal(err)
	}
	waitAllAlive(t, m, []*tmember{m, friend}, joinBound)
	time.Sleep(500 * time.Millisecond)
	for _, x := range m.Members() {
		if x.ID == "foreign" {
			t.Fatalf("foreign memberlist node admitted: %+v", x)
		}
	}
}

func TestSlowCallbackDoesNotStallDetection(t *testing.T) {
	release := make(chan struct{})
	var stalled atomic.Bool
	ms := startCluster(t, 3, nil)
	// A fourth member whose OnEvent blocks from the first call on.
	d := startMember(t, "n4", 0, func(c *Config) {
		inner := c.OnEvent
		c.OnEvent = func(ev Event) {
			if stalled.CompareAndSwap(false, true) {
				<-release
			}
			inner(ev)
		}
	})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	if _, err := d.Join([]string{ms[0].Addr()}); err != nil {
		t.Fatal(err)
	}
	all := append(ms, d)
	waitAllAlive(t, d, all, joinBound)

	if err := ms[2].Shutdown(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, detectBound, "n4 holds n3 dead while its callback is stuck", func() bool {
		st, _ := statusOf(d.Membership, "n3")
		return st == node.Dead
	})
	if h := d.rec.history("n3"); len(h) != 0 {
		t.Fatalf("events delivered past a blocked callback: %v", h)
	}
	close(release)
	// Once unblocked, the queued events arrive in order.
	testutil.Eventually(t, joinBound, "n4's queued events are delivered", func() bool {
		h := d.rec.history("n3")
		return len(h) > 0 && h[len(h)-1] == node.Dead
	})
	if h := d.rec.history("n3"); h[0] != node.Alive {
		t.Errorf("n3's history at n4 = %v, want it to start Alive", h)
	}
}
