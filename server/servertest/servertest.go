// Package servertest runs an in-process dynago cluster for tests: real
// servers over gRPC and Pebble on loopback ports, as the daemon runs them.
// It is for _test.go files only (internal/layering checks that no
// production package links it). server's own tests, which are inside
// package server, cannot import it (that would be an import cycle) and
// keep a small start-up of their own; every other package and the bench
// module use this one.
package servertest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/dynago/dynago/internal/testutil"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/server"
)

// StartCluster starts n nodes, n1..nN, each knowing all the others, with
// N = min(3, n), Q = 64 (the lab's: a few nodes on one machine), data in the
// test's temporary directory and logs discarded.
// mut, if not nil, edits each node's Config before it starts (set
// RESPAddr, Preset, security...). The nodes close when the test ends,
// also when a later one fails to start.
func StartCluster(t testing.TB, n int, mut func(*server.Config)) []*server.Server {
	t.Helper()
	peers := make([]server.Peer, n)
	for i := range peers {
		peers[i] = server.Peer{
			ID:      ring.NodeID(fmt.Sprintf("n%d", i+1)),
			RPCAddr: testutil.FreeAddr(t), HTTPAddr: testutil.FreeAddr(t),
		}
	}
	dir := t.TempDir()
	var out []*server.Server
	replicas := 0
	t.Cleanup(func() {
		for _, s := range out {
			s.Close()
		}
	})
	for _, p := range peers {
		cfg := server.Config{
			ID: p.ID, DataDir: filepath.Join(dir, string(p.ID)), HTTPAddr: p.HTTPAddr, RPCAddr: p.RPCAddr,
			Cluster: append([]server.Peer(nil), peers...), Node: node.Config{Partitions: 64, N: min(3, n)}, GossipAddr: "127.0.0.1:0",
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		}
		if mut != nil {
			mut(&cfg)
		}
		s, err := server.Start(cfg)
		if err != nil {
			t.Fatalf("starting %s: %v", p.ID, err)
		}
		out = append(out, s)
		replicas = cfg.Node.N
	}
	// Warm every node's streams before handing the cluster over. These
	// clusters run no gossip, so nothing calls Reconnect: a message sent
	// while a peer's first dial is still failing or backing off (the nodes
	// start one after another) is lost and not resent, and a test's first
	// write could miss an ack it needs. A get at R=N of a key nobody wrote
	// answers not-found only once every replica has answered, both ways,
	// and stores nothing.
	if replicas <= 0 {
		replicas = min(3, n)
	}
	for _, s := range out {
		testutil.Eventually(t, 10*time.Second, fmt.Sprintf("%s reaches every replica", s.NodeID()), func() bool {
			r := s.Do(context.Background(), node.Request{Op: node.OpGet, Key: []byte("servertest-warm-up"), R: replicas})
			return r.Code == node.CodeNotFound
		})
	}
	return out
}

// HTTPAddrs returns the HTTP addresses of srvs, in order: what a client or
// a benchmark binding is given.
func HTTPAddrs(srvs []*server.Server) []string {
	out := make([]string, len(srvs))
	for i, s := range srvs {
		out[i] = s.HTTPAddr()
	}
	return out
}
