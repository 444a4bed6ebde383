package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/dynago/dynago/fault"
	"github.com/dynago/dynago/membership"
	"github.com/dynago/dynago/ring"
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

	// Advertise addresses: where other nodes and clients reach this one,
	// when that is not the listen address (NAT, containers, listening on
	// 0.0.0.0). Each defaults to its listen address; a listen address that
	// binds every interface requires one (see advertise.go). HTTP and RPC
	// take host names; a gossip host name is resolved once, at start.
	AdvertiseHTTP, AdvertiseRPC, AdvertiseGossip string

	// Join lists gossip addresses of existing members to join through.
	Join []string
	// Preset picks timing defaults: "default" for servers, "lab" for
	// tests and the lab (failure detection in ~1–2 s, anti-entropy every
	// 200 ms, fallbacks after 200 ms of silence).
	Preset string
	// ClusterName labels every gossip packet and stream; nodes with
	// different names ignore each other (default "dynago").
	ClusterName string

	// Security: TLS, gossip keys, tokens (see security.go).
	Security Security

	// Cluster lists every member, this node included. Membership is static:
	// every node must be given the same list.
	Cluster []Peer

	Partitions int // Q, a power of two; default 64 (fixed at cluster creation)
	N, R, W    int // defaults 3, 2, 2

	RequestTimeout time.Duration // default 5s
	MaxKeySize     int           // default 1 KiB
	MaxValueSize   int           // default 1 MiB
	CacheSize      int64         // Pebble block cache, bytes; default 64 MiB
	TickInterval   time.Duration // core clock granularity; default 5ms
	ReplicaTimeout time.Duration // silence before a fallback takes a write; default 1s (lab 200ms)
	AEInterval     time.Duration // anti-entropy exchange interval; default 1s (lab 200ms)
	AEMaxKeys      int           // objects repaired per exchange and direction; default 1000

	// LWW makes the node last-write-wins: merges keep only the newest
	// sibling, silently dropping concurrent writes. Every node of a cluster
	// must agree. It exists as an explicit choice and as the negative
	// control of `dynago chaos --lww`, which must catch it losing writes.
	LWW bool

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
}

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
	switch c.Preset {
	case "", "default":
		c.Preset = "default"
		if c.ReplicaTimeout == 0 {
			c.ReplicaTimeout = time.Second
		}
		if c.AEInterval == 0 {
			c.AEInterval = time.Second
		}
	case "lab":
		// Fast enough to watch on a laptop, slow enough not to flap on a
		// loaded 2-core CI machine.
		if c.ReplicaTimeout == 0 {
			c.ReplicaTimeout = 200 * time.Millisecond
		}
		if c.AEInterval == 0 {
			c.AEInterval = 200 * time.Millisecond
		}
	default:
		return fmt.Errorf("%w: --preset must be default or lab, not %q", ErrConfig, c.Preset)
	}
	if c.ClusterName == "" {
		c.ClusterName = "dynago"
	}
	if err := membership.ValidClusterName(c.ClusterName); err != nil {
		return fmt.Errorf("%w: --cluster-name: %v", ErrConfig, err)
	}
	if c.Partitions == 0 {
		c.Partitions = 64
	}
	if c.N == 0 {
		c.N = 3
	}
	if c.R == 0 {
		c.R = c.N/2 + 1
	}
	if c.W == 0 {
		c.W = c.N/2 + 1
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.MaxKeySize == 0 {
		c.MaxKeySize = 1 << 10
	}
	if c.MaxValueSize == 0 {
		c.MaxValueSize = 1 << 20
	}
	if c.CacheSize == 0 {
		c.CacheSize = 64 << 20
	}
	if c.TickInterval == 0 {
		c.TickInterval = 5 * time.Millisecond
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
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if c.R < 1 || c.R > c.N || c.W < 1 || c.W > c.N {
		return fmt.Errorf("%w: R=%d and W=%d must be within 1..N=%d", ErrConfig, c.R, c.W, c.N)
	}
	return nil
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
