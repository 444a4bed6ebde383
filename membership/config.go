package membership

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/dynago/dynago/ring"
)

// Presets name memberlist timing sets.
const (
	// PresetLAN is memberlist's DefaultLANConfig, unchanged: tuned by
	// HashiCorp for Consul and Serf on real networks. A crashed node is
	// suspected within a few seconds (one probe per member per second) and
	// declared dead 4 s to 24 s later, depending on cluster size and on how
	// many members confirm the suspicion.
	PresetLAN = "lan"
	// PresetLab is for tests and the lab on one machine: a crashed node is
	// suspected and declared dead within about 1–2 s. See labConfig.
	PresetLab = "lab"
)

// Config configures a Membership.
type Config struct {
	// ID names this member; it is the ring's node ID and memberlist's node
	// name, and must be unique in the cluster.
	ID ring.NodeID
	// BindAddr is the gossip address, ip:port, for both UDP and TCP. The IP
	// must be a literal: exactly that address is bound, and all interfaces
	// only when the operator says 0.0.0.0 (or [::]) explicitly. Port 0 picks
	// a free port; Addr reports it.
	BindAddr string
	// AdvertiseAddr, ip:port, is the gossip address other members are told
	// to use, when it differs from BindAddr (NAT, containers). Optional;
	// required when binding [::].
	AdvertiseAddr string
	// Meta is published to the other members; see Meta.
	Meta Meta
	// Preset selects memberlist's timings: PresetLAN (the default when
	// empty) or PresetLab.
	Preset string
	// Logger receives memberlist's log lines at debug level, and this
	// package's own diagnostics. Nil discards them.
	Logger *slog.Logger
	// OnEvent is called for every change of a member's status, meta or
	// address, this member included, in the order the changes happened. It
	// runs on one goroutine of this package, never on memberlist's, so a
	// slow OnEvent delays later callbacks but not failure detection. It must
	// not call Shutdown. Optional.
	OnEvent func(Event)
	// OnState is called, on the same goroutine as OnEvent, when a strictly
	// newer cluster state arrives from another member; states it is given
	// are strictly increasing. It is not called for states set locally with
	// SetState; a state it is given may race with one the caller is setting,
	// so the caller must still ignore states not newer than its own. state
	// belongs to the callee. Optional.
	OnState func(version uint64, state []byte)

	// ClusterName is memberlist's label: it is put on every gossip packet
	// and stream, and a member drops whatever carries another name, so two
	// clusters never merge because a seed address was mistyped. Every
	// member of a cluster must use the same name; empty means no label
	// (and then only members without one). See ValidClusterName.
	ClusterName string

	// GossipKeys, when set, encrypts gossip with memberlist's keyring:
	// GossipKeys[0] encrypts, every key decrypts (for rotation, see
	// SetGossipKeys), and unencrypted packets are refused. Keys are 16, 24
	// or 32 bytes. Empty: gossip is plaintext.
	GossipKeys [][]byte

	// ValidateState checks a cluster state received from another member
	// before this member adopts it (this package never interprets the
	// bytes itself). A state it rejects is dropped and counted in
	// Stats().StatesRejected; it is never adopted, passed on, or handed to
	// OnState. It runs on memberlist's goroutines, only for states newer
	// than the one held, and must not block. Optional (nil accepts all
	// that pass the package's own checks, see MaxStateVersion).
	ValidateState func(version uint64, state []byte) error

	// Reconnect tunes how members marked dead and the seeds are tried
	// again; zero fields take the preset's values. See Reconnect.
	Reconnect Reconnect

	// WrapTransport, when set, wraps the gossip network transport: the
	// fault lab injects delay, loss and partitions into gossip this way,
	// as it does into node-to-node RPC. Optional.
	WrapTransport func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport

	// Test hook: tune adjusts memberlist's timings after the preset.
	tune func(*memberlist.Config)
}

// Reconnect tunes the reconnect loop (see the package doc, "Healing").
type Reconnect struct {
	// Interval is the wait before the first retry of a member marked
	// dead, doubled after every attempt up to MaxInterval, with jitter.
	// Default 1 s (lab 250 ms).
	Interval time.Duration
	// MaxInterval caps the wait between two attempts at one member, and so
	// bounds how long after a partition heals the two sides find each
	// other again. Default 8 s (lab 2 s).
	MaxInterval time.Duration
	// ReapTimeout is how long a member stays dead before this member stops
	// trying it (it stays listed as Dead: which nodes belong to the cluster
	// is the ring's business). Default 24 h, as Serf's reconnect timeout.
	ReapTimeout time.Duration
}

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("membership: invalid config")

// endpoint is a parsed ip:port.
type endpoint struct {
	ip   string // canonical literal, as memberlist wants it
	port int
}

// parseEndpoint accepts only IP literals. memberlist passes a bind address
// through net.ParseIP and binds every interface when that fails, so a host
// name here would silently bind 0.0.0.0.
func parseEndpoint(what, addr string) (endpoint, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return endpoint{}, fmt.Errorf("%w: %s %q: %v", ErrConfig, what, addr, err)
	}
	if host == "" {
		return endpoint{}, fmt.Errorf("%w: %s %q has no IP (write 0.0.0.0 to mean every interface)", ErrConfig, what, addr)
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return endpoint{}, fmt.Errorf("%w: %s %q: host must be an IP literal", ErrConfig, what, addr)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return endpoint{}, fmt.Errorf("%w: %s %q: bad port", ErrConfig, what, addr)
	}
	return endpoint{ip: ip.String(), port: port}, nil
}

// settings is a validated Config.
type settings struct {
	bind      endpoint
	advertise *endpoint
	meta      []byte
	ml        *memberlist.Config
	reconnect Reconnect
}

// maxClusterNameLen keeps the label, which rides on every UDP packet, small
// next to maxBroadcastState (memberlist itself allows 255 bytes).
const maxClusterNameLen = 64

// ValidClusterName checks a cluster name: at most 64 bytes of ASCII
// letters, digits, '.', '_' and '-' (or empty, for no label). It is what
// operators type and what shows in logs, so nothing exotic.
func ValidClusterName(name string) error {
	if len(name) > maxClusterNameLen {
		return fmt.Errorf("%w: cluster name longer than %d bytes", ErrConfig, maxClusterNameLen)
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return fmt.Errorf("%w: cluster name %q: only letters, digits, '.', '_' and '-'", ErrConfig, name)
		}
	}
	return nil
}

func (c *Config) validate() (settings, error) {
	var s settings
	if c.ID == "" {
		return s, fmt.Errorf("%w: empty ID", ErrConfig)
	}
	var err error
	if s.bind, err = parseEndpoint("bind address", c.BindAddr); err != nil {
		return s, err
	}
	if c.AdvertiseAddr != "" {
		adv, err := parseEndpoint("advertise address", c.AdvertiseAddr)
		if err != nil {
			return s, err
		}
		if net.ParseIP(adv.ip).IsUnspecified() || adv.port == 0 {
			return s, fmt.Errorf("%w: advertise address %q must be a concrete ip:port", ErrConfig, c.AdvertiseAddr)
		}
		s.advertise = &adv
	} else if s.bind.ip != "0.0.0.0" && net.ParseIP(s.bind.ip).IsUnspecified() {
		// memberlist picks a private address to advertise only for 0.0.0.0.
		return s, fmt.Errorf("%w: binding %q needs an advertise address", ErrConfig, c.BindAddr)
	}
	if s.meta, err = encodeMeta(c.Meta); err != nil {
		return s, err
	}
	if err := ValidClusterName(c.ClusterName); err != nil {
		return s, err
	}
	switch c.Preset {
	case "", PresetLAN:
		s.ml = memberlist.DefaultLANConfig()
		s.reconnect = Reconnect{Interval: time.Second, MaxInterval: 8 * time.Second, ReapTimeout: 24 * time.Hour}
	case PresetLab:
		s.ml = labConfig()
		s.reconnect = Reconnect{Interval: 250 * time.Millisecond, MaxInterval: 2 * time.Second, ReapTimeout: 24 * time.Hour}
	default:
		return s, fmt.Errorf("%w: unknown preset %q (want %q or %q)", ErrConfig, c.Preset, PresetLAN, PresetLab)
	}
	r := c.Reconnect
	if r.Interval < 0 || r.MaxInterval < 0 || r.ReapTimeout < 0 {
		return s, fmt.Errorf("%w: negative reconnect timing %+v", ErrConfig, r)
	}
	if r.Interval > 0 {
		s.reconnect.Interval = r.Interval
	}
	if r.MaxInterval > 0 {
		s.reconnect.MaxInterval = r.MaxInterval
	}
	if r.ReapTimeout > 0 {
		s.reconnect.ReapTimeout = r.ReapTimeout
	}
	if s.reconnect.MaxInterval < s.reconnect.Interval {
		s.reconnect.MaxInterval = s.reconnect.Interval
	}
	s.ml.Label = c.ClusterName
	if len(c.GossipKeys) > 0 {
		kr, err := newKeyring(c.GossipKeys)
		if err != nil {
			return s, err
		}
		s.ml.Keyring = kr
		s.ml.GossipVerifyIncoming = true
		s.ml.GossipVerifyOutgoing = true
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// labConfig is memberlist's DefaultLocalConfig (meant for loopback and one
// host) made faster still, so that tests and the lab see a crash within
// about 1–2 s. On a 3-node cluster a stopped node is probed within
// 2 × ProbeInterval, its probe fails after ProbeInterval, and it is declared
// dead SuspicionMult × ProbeInterval later once another member confirms the
// suspicion, or at most SuspicionMaxTimeoutMult times that without one.
func labConfig() *memberlist.Config {
	c := memberlist.DefaultLocalConfig()
	// Five probes a second per member costs nothing on loopback, and with a
	// handful of lab nodes every node is probed well within a second.
	c.ProbeInterval = 200 * time.Millisecond
	// Loopback answers in microseconds; 100 ms still covers the GC and
	// scheduler pauses of a loaded laptop or a -race test, which would
	// otherwise raise false suspicions.
	c.ProbeTimeout = 100 * time.Millisecond
	// As DefaultLocalConfig: suspicion lasts 3 probe intervals (600 ms for
	// up to 10 nodes), enough for a falsely suspected node to refute.
	c.SuspicionMult = 3
	// LAN's 6 would let an unconfirmed suspicion last 3.6 s; 3 caps it at
	// 1.8 s, which keeps detection inside the lab's bound.
	c.SuspicionMaxTimeoutMult = 3
	// Suspicion and death notices are gossiped; twice as often as
	// DefaultLocalConfig spreads them in tens of milliseconds.
	c.GossipInterval = 50 * time.Millisecond
	// Push/pull repairs missed cluster-state updates; 5 s bounds how long a
	// lab member can run on an old ring without it costing much (one TCP
	// exchange per member every 5 s).
	c.PushPullInterval = 5 * time.Second
	return c
}
