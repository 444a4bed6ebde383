package membership

import (
	"cmp"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

var (
	// ErrJoin reports that no seed could be reached.
	ErrJoin = errors.New("membership: join failed")
	// ErrShutdown reports a call on a Membership that was shut down.
	ErrShutdown = errors.New("membership: shut down")
	// ErrBind reports that the gossip address could not be bound (in use,
	// or not an address of this host).
	ErrBind = errors.New("membership: cannot bind gossip address")
)

// pushParallel bounds concurrent SendReliable calls when a large state is
// published: enough to reach a few dozen members in one TCP timeout when
// some are unreachable, few enough not to flood the publisher's uplink.
const pushParallel = 8

// Membership is this member's view of the cluster. It is safe for
// concurrent use.
type Membership struct {
	cfg   Config
	log   *slog.Logger
	rc    Reconnect // validated, preset defaults filled in
	mlc   *memberlist.Config
	ml    *memberlist.Memberlist
	bcast *memberlist.TransmitLimitedQueue
	addr  string

	mu      sync.Mutex
	members map[ring.NodeID]*entry
	meta    []byte
	state   clusterState
	// events and pendingState await delivery by dispatch. pendingState is
	// the newest state adopted from another member since the last delivery;
	// SetState clears it because the caller then already holds something
	// newer.
	events       []Event
	pendingState *clusterState
	stopped      bool
	// seeds are the addresses given to Join, retried by the reconnect
	// loop; reconnecting counts attempts under way.
	seeds        []*seedRetry
	reconnecting int

	stats struct {
		reconnectAttempts, reconnectSuccesses, statesRejected atomic.Uint64
	}

	wakeDispatch chan struct{}
	wakePush     chan struct{}
	stop         chan struct{}
	wg           sync.WaitGroup
}

// entry is a member plus the address memberlist needs to reach it, and
// the reconnect loop's bookkeeping while it is dead.
type entry struct {
	Member
	ip    net.IP
	port  uint16
	left  bool // it announced a graceful leave: not retried
	retry retry
}

// Start binds the gossip address and starts a single-member cluster; Join
// connects it to others.
func Start(cfg Config) (*Membership, error) {
	s, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	m := &Membership{
		cfg:          cfg,
		log:          cfg.Logger.With("component", "membership"),
		rc:           s.reconnect,
		mlc:          s.ml,
		members:      map[ring.NodeID]*entry{},
		meta:         s.meta,
		state:        newClusterState(0, nil),
		wakeDispatch: make(chan struct{}, 1),
		wakePush:     make(chan struct{}, 1),
		stop:         make(chan struct{}),
	}
	mlc := s.ml
	mlc.Name = string(cfg.ID)
	mlc.BindAddr, mlc.BindPort = s.bind.ip, s.bind.port
	if s.advertise != nil {
		mlc.AdvertiseAddr, mlc.AdvertisePort = s.advertise.ip, s.advertise.port
	} else {
		mlc.AdvertiseAddr, mlc.AdvertisePort = "", 0
	}
	h := hooks{m}
	mlc.Delegate, mlc.Events, mlc.Alive = h, h, h
	mlc.Logger = log.New(logBridge{m}, "", 0)
	if cfg.tune != nil {
		cfg.tune(mlc)
	}
	m.bcast = &memberlist.TransmitLimitedQueue{NumNodes: m.numLive, RetransmitMult: mlc.RetransmitMult}

	// The transport is built here rather than by memberlist so that a bind
	// failure surfaces as ErrBind and tests can put a gate in front of it.
	t, err := newTransport(s.bind, mlc.Logger)
	if err != nil {
		return nil, err
	}
	mlc.BindPort = t.GetAutoBindPort()
	var nt memberlist.NodeAwareTransport = t
	if cfg.WrapTransport != nil {
		nt = cfg.WrapTransport(nt)
	}
	mlc.Transport = nt

	ml, err := memberlist.Create(mlc)
	if err != nil {
		// Create shuts the transport down only when it got far enough to
		// own it; a second Shutdown just finds the listeners closed.
		_ = nt.Shutdown()
		return nil, fmt.Errorf("membership: start memberlist: %w", err)
	}
	m.ml = ml
	m.addr = ml.LocalNode().Address()

	m.wg.Add(4)
	go m.dispatch()
	go m.pushLoop()
	go m.pingSuspects()
	go m.reconnectLoop()
	return m, nil
}

// newTransport binds exactly ep. With port 0 the kernel picks the TCP port
// and UDP must then get the same one, which can race with other binders,
// so that case is retried like memberlist itself does.
func newTransport(ep endpoint, logger *log.Logger) (*memberlist.NetTransport, error) {
	attempts := 1
	if ep.port == 0 {
		attempts = 10
	}
	var err error
	for range attempts {
		var t *memberlist.NetTransport
		t, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{ep.ip},
			BindPort:  ep.port,
			Logger:    logger,
		})
		if err == nil {
			return t, nil
		}
		// NetTransport formats the bind error with %v, so the cause can
		// only be recognised by its text.
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, fmt.Errorf("%w %s: %w", ErrBind, net.JoinHostPort(ep.ip, fmt.Sprint(ep.port)), err)
}

// Addr returns the gossip address other members use for this one: the
// advertised address, or the bound one (with the real port when BindAddr
// asked for port 0).
func (m *Membership) Addr() string { return m.addr }

// Join contacts the seeds (gossip addresses; host names are resolved) and
// merges their view of the cluster, cluster state included. It returns how
// many seeds answered; it fails with ErrJoin when none did. Retrying a
// first Join that failed is the caller's business; after it, the seeds are
// remembered and the reconnect loop tries them again when this member has
// lost touch (see the package doc, "Healing").
func (m *Membership) Join(seeds []string) (int, error) {
	if m.isStopped() {
		return 0, ErrShutdown
	}
	if len(seeds) == 0 {
		return 0, fmt.Errorf("%w: no seeds", ErrJoin)
	}
	m.rememberSeeds(seeds)
	n, err := m.ml.Join(seeds)
	if err != nil {
		return n, fmt.Errorf("%w: %w", ErrJoin, err)
	}
	return n, nil
}

// Members returns every member this one knows, itself included and dead
// ones too, sorted by ID.
func (m *Membership) Members() []Member {
	m.mu.Lock()
	out := make([]Member, 0, len(m.members))
	for _, e := range m.members {
		out = append(out, e.Member)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// SetState publishes a new cluster state. It fails with ErrStaleState when
// the state is not newer than the one held (the caller should then read
// State); publishing the held state again is a no-op. The state is copied.
func (m *Membership) SetState(version uint64, state []byte) error {
	if len(state) > MaxStateSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrStateTooLarge, len(state), MaxStateSize)
	}
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return ErrShutdown
	}
	switch compareStates(version, state, m.state.version, m.state.data) {
	case 0:
		m.mu.Unlock()
		return nil
	case -1:
		cur := m.state.version
		m.mu.Unlock()
		return fmt.Errorf("%w: version %d, holding %d", ErrStaleState, version, cur)
	}
	cs := newClusterState(version, state)
	m.state = cs
	m.pendingState = nil
	m.mu.Unlock()
	m.spread(cs)
	return nil
}

// spread sends a state this member just adopted or published on its way:
// a small one by gossip, a large one directly to every live member.
func (m *Membership) spread(cs clusterState) {
	if len(cs.msg) <= maxBroadcastState {
		m.bcast.QueueBroadcast(&stateBroadcast{msg: cs.msg})
		return
	}
	select {
	case m.wakePush <- struct{}{}:
	default:
	}
}

// State returns the newest cluster state this member holds: its own or one
// adopted from gossip. Before any, it is version 0 with no bytes.
func (m *Membership) State() (uint64, []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state.version, slices.Clone(m.state.data)
}

// UpdateMeta changes the meta this member publishes. It returns once
// memberlist has finished broadcasting the change, or with an error after
// the preset's TCP timeout; either way the new meta is in effect and later
// push/pulls carry it.
func (m *Membership) UpdateMeta(meta Meta) error {
	b, err := encodeMeta(meta)
	if err != nil {
		return err
	}
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return ErrShutdown
	}
	m.meta = b
	m.mu.Unlock()
	if err := m.ml.UpdateNode(m.mlc.TCPTimeout); err != nil {
		return fmt.Errorf("membership: update meta: %w", err)
	}
	return nil
}

// Leave tells the other members this one is leaving, so they mark it Dead
// at once instead of after a suspicion, and waits up to timeout for the
// notice to go out. Call Shutdown afterwards.
func (m *Membership) Leave(timeout time.Duration) error {
	if m.isStopped() {
		return ErrShutdown
	}
	m.announceLeave(timeout / 2)
	if err := m.ml.Leave(timeout); err != nil {
		return fmt.Errorf("membership: leave: %w", err)
	}
	return nil
}

// Shutdown stops gossip and closes the sockets without telling anyone (to
// others it looks like a crash unless Leave came first). No callback runs
// after it returns. It may wait for in-flight state sends, which are
// bounded by the preset's TCP timeout. Calling it again does nothing.
func (m *Membership) Shutdown() error {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return nil
	}
	m.stopped = true
	m.events, m.pendingState = nil, nil
	m.mu.Unlock()
	err := m.ml.Shutdown()
	close(m.stop)
	m.wg.Wait()
	if err != nil {
		return fmt.Errorf("membership: shutdown: %w", err)
	}
	return nil
}

// announceLeave tells the others this member is leaving on purpose, so
// they do not try to reconnect to it: directly to each member not known
// dead, waiting at most wait for those sends, and by gossip for the ones
// that cannot be reached now; receivers pass it on once. A member that misses
// it anyway retries a closed port until the reap timeout, which costs a
// refused dial now and then.
func (m *Membership) announceLeave(wait time.Duration) {
	msg := encodeLeave(string(m.cfg.ID))
	m.bcast.QueueBroadcast(&leaveBroadcast{msg: msg})
	m.mu.Lock()
	var targets []memberlist.Node
	for _, e := range m.members {
		if e.ID != m.cfg.ID && e.Status != node.Dead {
			targets = append(targets, memberlist.Node{Name: string(e.ID), Addr: e.ip, Port: e.port})
		}
	}
	m.mu.Unlock()
	// Sends still under way after wait end with an error once Shutdown
	// closes the transport.
	done := make(chan struct{})
	go func() {
		defer close(done)
		sem := make(chan struct{}, pushParallel)
		var wg sync.WaitGroup
		for _, t := range targets {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if err := m.ml.SendReliable(&t, msg); err != nil {
					m.log.Debug("leave intent not sent; gossip carries it", "to", t.Name, "err", err)
				}
			})
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(wait):
	}
}

func (m *Membership) isStopped() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stopped
}

// numLive sizes the broadcast retransmit count. It counts from this
// package's table rather than asking memberlist, because the queue is
// consulted from inside memberlist, possibly under memberlist's locks.
func (m *Membership) numLive() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, e := range m.members {
		if e.Status != node.Dead {
			n++
		}
	}
	return n
}

// update applies f to a member's entry (creating it when create is set)
// and queues an Event when the member's public view changed. f returns
// false to leave the entry as it was.
func (m *Membership) update(id ring.NodeID, create bool, f func(e *entry) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	e, ok := m.members[id]
	if !ok {
		if !create {
			return
		}
		e = &entry{Member: Member{ID: id, Status: node.Dead}}
	}
	before := e.Member
	next := *e
	if !f(&next) {
		return
	}
	if ok && next.Member == before {
		*e = next
		return
	}
	*e = next
	m.members[id] = e
	m.events = append(m.events, Event{Member: next.Member})
	m.signalDispatch()
}

// signalDispatch wakes dispatch; the caller holds mu or owns the change.
func (m *Membership) signalDispatch() {
	select {
	case m.wakeDispatch <- struct{}{}:
	default:
	}
}

// receive handles a message from another member: a cluster state (by
// gossip, SendReliable or push/pull) or a leave intent. via says which
// path it came by; memberlist's delegate API does not tell who sent it.
func (m *Membership) receive(buf []byte, via string) {
	if len(buf) > 0 && buf[0] == msgLeave {
		id, err := decodeLeave(buf)
		if err != nil {
			m.log.Debug("dropping gossip message", "via", via, "err", err)
			return
		}
		first := false
		m.update(ring.NodeID(id), false, func(e *entry) bool {
			first = !e.left
			e.left = true
			return true
		})
		if first {
			// Passed on once by whoever hears it first, as memberlist's
			// own notices are, so that one lost packet does not leave a
			// member retrying a node that left.
			m.bcast.QueueBroadcast(&leaveBroadcast{msg: slices.Clone(buf)})
		}
		return
	}
	if len(buf) > 0 && buf[0] != msgState {
		// A newer member's kind of message: not ours to judge.
		m.log.Debug("dropping gossip message of unknown kind", "via", via, "tag", buf[0])
		return
	}
	cs, err := decodeState(buf) // copies buf, which memberlist reuses
	if err != nil {
		m.reject(via, 0, err)
		return
	}
	m.adopt(cs, via)
}

// reject counts and reports a state that was not adopted.
func (m *Membership) reject(via string, version uint64, err error) {
	m.stats.statesRejected.Add(1)
	m.log.Warn("rejected a cluster state from gossip", "via", via, "version", version, "err", err)
}

// checkState is the gate every received state passes before adoption.
func (m *Membership) checkState(cs clusterState) error {
	switch {
	case cs.version == 0:
		return fmt.Errorf("%w: version 0", ErrStateRejected)
	case cs.version > MaxStateVersion:
		return fmt.Errorf("%w: version %d above the ceiling %d", ErrStateRejected, cs.version, uint64(MaxStateVersion))
	}
	if m.cfg.ValidateState != nil {
		if err := m.cfg.ValidateState(cs.version, slices.Clone(cs.data)); err != nil {
			return fmt.Errorf("%w: %w", ErrStateRejected, err)
		}
	}
	return nil
}

// adopt takes a state received from another member if it is newer and
// valid. Validation runs outside the lock (it may decode a large ring) and
// only for states that would be adopted, so the push/pull that brings the
// state already held every interval costs a comparison.
func (m *Membership) adopt(cs clusterState, via string) {
	m.mu.Lock()
	newer := !m.stopped && compareStates(cs.version, cs.data, m.state.version, m.state.data) > 0
	m.mu.Unlock()
	if !newer {
		return
	}
	if err := m.checkState(cs); err != nil {
		m.reject(via, cs.version, err)
		return
	}
	m.mu.Lock()
	if m.stopped || compareStates(cs.version, cs.data, m.state.version, m.state.data) <= 0 {
		m.mu.Unlock()
		return
	}
	m.state = cs
	m.pendingState = &cs
	m.signalDispatch()
	m.mu.Unlock()
	// A received small state is gossiped on, as in any epidemic protocol,
	// so it spreads even if its publisher stops. A large one is not: its
	// publisher sent it to everyone, and push/pull covers the rest.
	if len(cs.msg) <= maxBroadcastState {
		m.bcast.QueueBroadcast(&stateBroadcast{msg: cs.msg})
	}
}

// dispatch runs the daemon's callbacks, in order, off memberlist's
// goroutines.
func (m *Membership) dispatch() {
	defer m.wg.Done()
	for {
		select {
		case <-m.stop:
			return
		case <-m.wakeDispatch:
		}
		for {
			m.mu.Lock()
			evs, st := m.events, m.pendingState
			m.events, m.pendingState = nil, nil
			m.mu.Unlock()
			if len(evs) == 0 && st == nil {
				break
			}
			for _, ev := range evs {
				if m.stopping() {
					return
				}
				if m.cfg.OnEvent != nil {
					m.cfg.OnEvent(ev)
				}
			}
			if st != nil && m.cfg.OnState != nil && !m.stopping() {
				m.cfg.OnState(st.version, slices.Clone(st.data))
			}
		}
	}
}

func (m *Membership) stopping() bool {
	select {
	case <-m.stop:
		return true
	default:
		return false
	}
}

// pushLoop sends large states straight to every member not known dead,
// over TCP. If a newer state is published meanwhile, the rest of the old
// one's sends are skipped and the new one goes out next.
func (m *Membership) pushLoop() {
	defer m.wg.Done()
	for {
		select {
		case <-m.stop:
			return
		case <-m.wakePush:
		}
		m.mu.Lock()
		cs := m.state
		var targets []memberlist.Node
		for _, e := range m.members {
			if e.ID != m.cfg.ID && e.Status != node.Dead {
				targets = append(targets, memberlist.Node{Name: string(e.ID), Addr: e.ip, Port: e.port})
			}
		}
		m.mu.Unlock()
		if len(cs.msg) <= maxBroadcastState {
			continue // superseded by a small state, which gossip carries
		}
		sem := make(chan struct{}, pushParallel)
		var wg sync.WaitGroup
		for _, t := range targets {
			if m.stopping() || m.superseded(cs) {
				break
			}
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if err := m.ml.SendReliable(&t, cs.msg); err != nil {
					m.log.Debug("state send failed; push/pull will repair", "to", t.Name, "version", cs.version, "err", err)
				}
			})
		}
		wg.Wait()
	}
}

func (m *Membership) superseded(cs clusterState) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return compareStates(m.state.version, m.state.data, cs.version, cs.data) != 0
}

// pingSuspects pings every member this one suspects, once per probe
// interval, and marks those that answer Alive again. memberlist clears a
// refuted suspicion silently, so without this a wrongly suspected member
// would stay Suspect here until memberlist happened to probe it again.
func (m *Membership) pingSuspects() {
	defer m.wg.Done()
	tick := time.NewTicker(m.mlc.ProbeInterval)
	defer tick.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-tick.C:
		}
		m.mu.Lock()
		var suspects []entry
		for _, e := range m.members {
			if e.Status == node.Suspect {
				suspects = append(suspects, *e)
			}
		}
		m.mu.Unlock()
		var wg sync.WaitGroup
		for _, e := range suspects {
			wg.Go(func() {
				// Ping waits at most ProbeTimeout and checks the answer
				// comes from the member with this name.
				addr := &net.UDPAddr{IP: e.ip, Port: int(e.port)}
				if _, err := m.ml.Ping(string(e.ID), addr); err != nil {
					return
				}
				m.update(e.ID, false, func(e *entry) bool {
					if e.Status != node.Suspect {
						return false // declared dead meanwhile: memberlist decides
					}
					e.Status = node.Alive
					return true
				})
			})
		}
		wg.Wait()
	}
}
