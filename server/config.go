package server

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/dynago/dynago/cluster"
	"github.com/dynago/dynago/fault"
	"github.com/dynago/dynago/membership"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// Peer is one member of a static cluster.
type Peer struct {
	ID       ring.NodeID
	RPCAddr  string
	HTTPAddr string // optional; shown by /cluster
}

// Config configures a daemon. Zero fields take the documented defaults.
type Config struct {
	ID         ring.NodeID
	DataDir    string
	HTTPAddr   string // default 127.0.0.1:9101
	RPCAddr    string // default 127.0.0.1:9201
	GossipAddr string // default 127.0.0.1:9301; memberlist binds exactly this address
	// RESPAddr, when set, serves the RESP front end (package resp) there:
	// Redis clients and redis-benchmark. Empty: no RESP listener.
	RESPAddr string

	// Advertise addresses: where other nodes and clients reach this one,
	// when that is not the listen address (NAT, containers, listening on
	// 0.0.0.0). Each defaults to its listen address; a listen address that
	// binds every interface requires one (see advertise.go). HTTP and RPC
	// take host names; a gossip host name is resolved once, at start.
	AdvertiseHTTP, AdvertiseRPC, AdvertiseGossip string

	// Join lists gossip addresses of existing members to join through.
	Join []string
	// Preset picks the defaults of Node and of gossip: "default" for
	// servers (node.DefaultConfig, memberlist's LAN timing), "lab" for
	// tests and the lab (node.LabConfig: Q=64, anti-entropy every 200 ms,
	// fallbacks after 200 ms of silence; failure detection in ~1–2 s).
	Preset string
	// ClusterName labels every gossip packet and stream; nodes with
	// different names ignore each other (default "dynago").
	ClusterName string

	// Security: TLS, gossip keys, tokens (see security.go).
	Security Security

	// Cluster lists every member, this node included. Membership is static:
	// every node must be given the same list.
	Cluster []Peer

	// Node is the protocol core's configuration: Q (Partitions, used when
	// this node creates the cluster), N, the default R and W, timeouts,
	// limits, anti-entropy and LWW (which every node of a cluster must
	// agree on: `dynago chaos --lww` is its negative control). Zero fields
	// take the Preset's values (node.DefaultConfig or node.LabConfig, with
	// the reason for each beside it); R and W default to a majority of N.
	// Start sets the identity fields (ID, Actor, OpIDBase, State, Ring)
	// itself, from ID, the data directory and the cluster list.
	Node node.Config

	CacheSize    int64         // Pebble block cache, bytes; 0 = pebbledb.DefaultCacheSize
	MemTableSize int64         // Pebble memtable, bytes; 0 = pebbledb.DefaultMemTableSize
	TickInterval time.Duration // core clock granularity; default 5ms

	// LazySyncDelay bounds how long a write that only acknowledgements no
	// quorum waits for depend on (a W=1 put's replica copies,
	// node.Message.LazySync) may wait for an fsync somebody else starts,
	// before this node starts one for it. 0 means DefaultLazySyncDelay;
	// negative, none: every write's fsync starts at once.
	LazySyncDelay time.Duration
	// MaxInflight bounds the client requests (HTTP and RESP) this node
	// is answering at once; one past it is answered CodeOverloaded at
	// once, before anything is done. A request stops counting when its
	// caller returns: one whose client gave up (disconnected, timed out)
	// frees its slot then, while the core finishes coordinating it in
	// the background, bounded by the request's timeout. 0 means
	// DefaultMaxInflight; negative, no bound.
	MaxInflight int

	// Pprof serves Go's profiler under /debug/pprof/ on the HTTP address.
	Pprof bool

	// Dashboard serves the web dashboard under /dashboard/ on the HTTP
	// address: the observing views, with every member reached through
	// this node (process control is dynago dev's alone).
	Dashboard bool

	// Faults are the fault-injection rules at start (the lab's latency,
	// loss and partitions; changeable at run time through /admin/faults).
	Faults fault.Rules

	Logger *slog.Logger

	// coreStore, when set, wraps the engine the core reads through: the
	// seam tests use to fail reads (storage.Faulty) under a running
	// daemon. Unexported, so only this package's tests can set it.
	coreStore func(storage.Engine) node.Store
	// beforeSync, when set, runs in the syncer before every fsync: the
	// seam tests use to hold an fsync and watch what waits for it.
	beforeSync func()
}

// DefaultLazySyncDelay is Config.LazySyncDelay's default: long enough that
// on a busy node a lazy write nearly always rides along with an fsync
// somebody waits for, and short enough that the copy is on disk soon. No
// timeout notices the late acknowledgement: the coordinator had its
// quorum when it sent the write, so it neither resends nor hints it.
const DefaultLazySyncDelay = 50 * time.Millisecond

// MaxLazySyncDelay bounds Config.LazySyncDelay: a coordinator keeps a put's
// state until every acknowledgement is in or the request times out.
const MaxLazySyncDelay = time.Second

// DefaultMaxInflight is Config.MaxInflight's default. Each request in
// flight holds its value (up to --max-value-size) and a goroutine; past a
// few thousand a node is only queueing, and every request waits longer.
// Shedding answers at once, so a client can back off or go to another
// node, where queueing would let latency and memory grow without bound
// until requests time out anyway (Riak's overload protection and
// Cassandra's native-transport limits do the same). Ten thousand is far
// above what a node serves at its best (a few hundred in flight at 50
// clients), so it only bites under overload.
const DefaultMaxInflight = 10000

// ErrConfig reports an invalid daemon configuration.
var ErrConfig = errors.New("server: invalid config")

func (c *Config) validate() error {
	if c.ID == "" {
		return fmt.Errorf("%w: --id is required", ErrConfig)
	}
	if c.DataDir == "" {
		return fmt.Errorf("%w: --data-dir is required", ErrConfig)
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:9101"
	}
	if c.RPCAddr == "" {
		c.RPCAddr = "127.0.0.1:9201"
	}
	if c.GossipAddr == "" {
		c.GossipAddr = "127.0.0.1:9301"
	}
	preset, err := Preset(c.Preset)
	if err != nil {
		return err
	}
	c.Preset = cmp.Or(c.Preset, "default")
	c.Node = c.Node.WithDefaults(preset)
	c.Node.R, c.Node.W = cmp.Or(c.Node.R, node.Majority(c.Node.N)), cmp.Or(c.Node.W, node.Majority(c.Node.N))
	if c.ClusterName == "" {
		c.ClusterName = "dynago"
	}
	if err := membership.ValidClusterName(c.ClusterName); err != nil {
		return fmt.Errorf("%w: --cluster-name: %v", ErrConfig, err)
	}
	if c.TickInterval == 0 {
		c.TickInterval = 5 * time.Millisecond
	}
	switch {
	case c.LazySyncDelay == 0:
		c.LazySyncDelay = DefaultLazySyncDelay
	case c.LazySyncDelay > MaxLazySyncDelay:
		return fmt.Errorf("%w: --lazy-sync-delay %v: at most %v", ErrConfig, c.LazySyncDelay, MaxLazySyncDelay)
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = DefaultMaxInflight
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if err := c.validateAdvertise(); err != nil {
		return err
	}
	if len(c.Cluster) == 0 && len(c.Join) == 0 {
		// Neither a cluster list nor anyone to join: a cluster of one.
		c.Cluster = []Peer{{ID: c.ID, RPCAddr: advertisedOr(c.AdvertiseRPC, c.RPCAddr), HTTPAddr: advertisedOr(c.AdvertiseHTTP, c.HTTPAddr)}}
	}
	seen := map[ring.NodeID]bool{}
	self := false
	for i, p := range c.Cluster {
		if p.ID == "" || p.RPCAddr == "" {
			return fmt.Errorf("%w: cluster member %d needs an ID and an RPC address", ErrConfig, i+1)
		}
		if seen[p.ID] {
			return fmt.Errorf("%w: node %s listed twice in the cluster", ErrConfig, p.ID)
		}
		seen[p.ID] = true
		if p.ID == c.ID {
			self = true
			if p.HTTPAddr == "" {
				c.Cluster[i].HTTPAddr = advertisedOr(c.AdvertiseHTTP, c.HTTPAddr)
			}
		}
	}
	if !self && len(c.Cluster) > 0 {
		return fmt.Errorf("%w: this node (%s) is not in the cluster list", ErrConfig, c.ID)
	}
	if err := c.Faults.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	// The core checks these too, but only after storage is open; a bad
	// flag is refused here, before anything starts (exit 2).
	if n := c.Node.N; n < 1 || c.Node.R < 1 || c.Node.R > n || c.Node.W < 1 || c.Node.W > n {
		return fmt.Errorf("%w: R=%d and W=%d must be within 1..N=%d", ErrConfig, c.Node.R, c.Node.W, n)
	}
	// Likewise the ring a new cluster would start with (Q a power of
	// two, N against Q): built once here, on nothing but the flags, so
	// that a bad --partitions is refused before the data directory is
	// created or an epoch drawn, not after the store opened.
	ids := c.memberIDs()
	if len(ids) == 0 {
		ids = []ring.NodeID{c.ID} // joining: the ring comes from gossip, but the flags must still make one
	}
	if _, err := cluster.Initial(c.Node.Partitions, c.Node.N, ids); err != nil {
		return fmt.Errorf("%w: --partitions %d, --n %d: %v", ErrConfig, c.Node.Partitions, c.Node.N, err)
	}
	return nil
}

// Preset returns the core configuration a --preset names: "default" (or
// "") for servers, "lab" for tests and the lab.
func Preset(name string) (node.Config, error) {
	switch name {
	case "", "default":
		return node.DefaultConfig(), nil
	case "lab":
		return node.LabConfig(), nil
	}
	return node.Config{}, fmt.Errorf("%w: --preset must be default or lab, not %q", ErrConfig, name)
}

// ParseCluster parses a static cluster list: comma-separated entries
// "id=rpc_addr" or "id=rpc_addr/http_addr".
func ParseCluster(s string) ([]Peer, error) {
	var out []Peer
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		id, addrs, ok := strings.Cut(entry, "=")
		if !ok || id == "" {
			return nil, fmt.Errorf("%w: cluster entry %q is not id=rpc_addr[/http_addr]", ErrConfig, entry)
		}
		rpc, httpAddr, _ := strings.Cut(addrs, "/")
		for _, a := range []string{rpc, httpAddr} {
			if a == "" {
				continue
			}
			if _, _, err := net.SplitHostPort(a); err != nil {
				return nil, fmt.Errorf("%w: cluster entry %q: %v", ErrConfig, entry, err)
			}
		}
		if rpc == "" {
			return nil, fmt.Errorf("%w: cluster entry %q has no RPC address", ErrConfig, entry)
		}
		out = append(out, Peer{ID: ring.NodeID(id), RPCAddr: rpc, HTTPAddr: httpAddr})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty cluster list", ErrConfig)
	}
	return out, nil
}

// FormatCluster is the inverse of ParseCluster.
func FormatCluster(peers []Peer) string {
	parts := make([]string, len(peers))
	for i, p := range peers {
		parts[i] = string(p.ID) + "=" + p.RPCAddr
		if p.HTTPAddr != "" {
			parts[i] += "/" + p.HTTPAddr
		}
	}
	return strings.Join(parts, ",")
}

func (c *Config) memberIDs() []ring.NodeID {
	ids := make([]ring.NodeID, len(c.Cluster))
	for i, p := range c.Cluster {
		ids[i] = p.ID
	}
	slices.Sort(ids)
	return ids
}
