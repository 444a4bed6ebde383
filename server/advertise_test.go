package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynago/dynago/buildinfo"
	"github.com/dynago/dynago/internal/testutil"
	"github.com/dynago/dynago/membership"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

// A node told to listen on every interface and not told what to advertise
// refuses to start, and says which flag it needs; it never publishes
// 0.0.0.0 or [::].
func TestUnspecifiedListenWithoutAdvertiseIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		mut  func(*Config)
		flag string
	}{
		{"http 0.0.0.0", func(c *Config) { c.HTTPAddr = "0.0.0.0:0" }, "--advertise-http"},
		{"http no host", func(c *Config) { c.HTTPAddr = ":0" }, "--advertise-http"},
		{"rpc [::]", func(c *Config) { c.RPCAddr = "[::]:0" }, "--advertise-rpc"},
		{"gossip 0.0.0.0", func(c *Config) { c.GossipAddr = "0.0.0.0:0" }, "--advertise-gossip"},
		{"advertise unspecified", func(c *Config) { c.AdvertiseRPC = "0.0.0.0:9201" }, "--advertise-rpc"},
		{"advertise port 0", func(c *Config) { c.AdvertiseHTTP = "10.0.0.1:0" }, "--advertise-http"},
		{"advertise no port", func(c *Config) { c.AdvertiseGossip = "10.0.0.1" }, "--advertise-gossip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{ID: "a", DataDir: filepath.Join(t.TempDir(), "a"), HTTPAddr: "127.0.0.1:0", RPCAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
				Node: node.Config{N: 1}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			tc.mut(&cfg)
			s, err := Start(cfg)
			if err == nil {
				s.Close()
				t.Fatal("started")
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.flag) {
				t.Fatalf("error %q: want a config error naming %s", err, tc.flag)
			}
		})
	}
	// With the advertise address given, listening on every interface is fine
	// (validation only: this test binds nothing but 127.0.0.1).
	cfg := Config{ID: "a", DataDir: "x", HTTPAddr: "0.0.0.0:9101", AdvertiseHTTP: "node-a.example:9101", RPCAddr: "127.0.0.1:9201", GossipAddr: "127.0.0.1:9301"}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Cluster[0].HTTPAddr != "node-a.example:9101" {
		t.Fatalf("a cluster of one lists itself at %q, want the advertised address", cfg.Cluster[0].HTTPAddr)
	}
}

// What a node publishes (its gossip meta, hence the others' transport and
// /cluster, and its own /cluster entry) is its advertise addresses, not
// its listen addresses. "localhost:port" reaches the 127.0.0.1 listeners
// but differs from them as a string, which is what the test looks for.
func TestAdvertisedAddressesArePublished(t *testing.T) {
	type addrs struct{ http, rpc string }
	bound := map[ring.NodeID]addrs{}
	adv := map[ring.NodeID]addrs{}
	var peers []Peer
	for _, id := range []ring.NodeID{"n1", "n2"} {
		h, r := testutil.FreeAddr(t), testutil.FreeAddr(t)
		bound[id] = addrs{h, r}
		adv[id] = addrs{localhost(h), localhost(r)}
		peers = append(peers, Peer{ID: id, RPCAddr: adv[id].rpc, HTTPAddr: adv[id].http})
	}
	dir := t.TempDir()
	var srvs []*Server
	for _, p := range peers {
		cfg := Config{
			ID: p.ID, DataDir: filepath.Join(dir, string(p.ID)), HTTPAddr: bound[p.ID].http, RPCAddr: bound[p.ID].rpc,
			AdvertiseHTTP: adv[p.ID].http, AdvertiseRPC: adv[p.ID].rpc, GossipAddr: "127.0.0.1:0",
			Cluster: peers, Node: node.Config{N: 2, W: 2, R: 2}, Preset: "lab", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		}
		if len(srvs) > 0 {
			_, _, g := srvs[0].Advertised()
			cfg.Join = []string{g}
		}
		s, err := Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		srvs = append(srvs, s)
	}
	if h, r, _ := srvs[0].Advertised(); h != adv["n1"].http || r != adv["n1"].rpc {
		t.Fatalf("n1 advertises %s %s, want %+v", h, r, adv["n1"])
	}
	// Gossip carries n2's advertised addresses to n1.
	testutil.EventuallyNil(t, 10*time.Second, func() error {
		var meta membership.Meta
		for _, m := range srvs[0].members.Members() {
			if m.ID == "n2" {
				meta = m.Meta
			}
		}
		bi := buildinfo.Get()
		if want := (membership.Meta{HTTPAddr: adv["n2"].http, RPCAddr: adv["n2"].rpc, Version: bi.Version, Commit: bi.Commit}); meta != want {
			return fmt.Errorf("n1 sees n2's meta %+v, want %+v", meta, want)
		}
		return nil
	})
	resp, err := http.Get("http://" + srvs[0].HTTPAddr() + "/cluster")
	if err != nil {
		t.Fatal(err)
	}
	var cl struct {
		Nodes []struct {
			ID       ring.NodeID `json:"id"`
			HTTPAddr string      `json:"http_addr"`
		} `json:"nodes"`
	}
	err = json.NewDecoder(resp.Body).Decode(&cl)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(cl.Nodes) != 2 {
		t.Fatalf("/cluster nodes %+v", cl.Nodes)
	}
	for _, n := range cl.Nodes {
		if n.HTTPAddr != adv[n.ID].http {
			t.Errorf("/cluster shows %s at %s, want its advertised %s", n.ID, n.HTTPAddr, adv[n.ID].http)
		}
	}
	// And the advertised RPC addresses work: a W=2 write needs both nodes.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if r := srvs[0].Do(ctx, node.Request{Op: node.OpPut, Key: []byte("k"), Value: []byte("v")}); r.Code != node.CodeOK || r.Acks != 2 {
		t.Fatalf("W=2 put over the advertised RPC addresses: %s %s acks=%d", r.Code, r.Err, r.Acks)
	}
}

func localhost(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return net.JoinHostPort("localhost", port)
}

func TestGossipAdvertiseNameIsResolved(t *testing.T) {
	got, err := resolveGossipAdvertise("localhost:7946")
	if err != nil || got != "127.0.0.1:7946" {
		t.Fatalf("localhost:7946 resolved to %q, %v; want 127.0.0.1:7946", got, err)
	}
	if got, err := resolveGossipAdvertise("10.1.2.3:7946"); err != nil || got != "10.1.2.3:7946" {
		t.Fatalf("an IP literal changed: %q %v", got, err)
	}
	if _, err := resolveGossipAdvertise("no-such-host.invalid:7946"); err == nil || !strings.Contains(err.Error(), "--advertise-gossip") {
		t.Fatalf("unresolvable name: %v", err)
	}
}
