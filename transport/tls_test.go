package transport

import (
	"context"
	"testing"
	"time"

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/security"
)

// TestMutualTLSPeerPort: with certificates, the peer port answers a node
// holding a certificate of the cluster's CA and refuses a plaintext peer
// and a peer whose certificate another CA signed.
func TestMutualTLSPeerPort(t *testing.T) {
	certsFor := func() *security.Certs {
		dir := t.TempDir()
		if err := security.CreateCA(dir, time.Hour, false); err != nil {
			t.Fatal(err)
		}
		if err := security.CreateNode(dir, []string{"127.0.0.1"}, time.Hour); err != nil {
			t.Fatal(err)
		}
		c, err := security.LoadNodeCerts(dir)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ours, theirs := certsFor(), certsFor()
	start := func(id string, c *security.Certs) *Transport {
		cfg := Config{ID: ring.NodeID(id), ListenAddr: "127.0.0.1:0", CallTimeout: time.Second}
		if c != nil {
			cfg.ServerTLS = c.PeerServerConfig()
			cfg.ClientTLS = c.PeerClientConfig
		}
		tr, err := New(cfg, func([]node.Message) {})
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		return tr
	}
	a, b := start("a", ours), start("b", ours)
	plain, foreign := start("p", nil), start("f", theirs)
	probe := func(from *Transport) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return from.Probe(ctx, "b", b.Addr())
	}
	if err := probe(a); err != nil {
		t.Fatalf("a node with a valid certificate was refused: %v", err)
	}
	if err := probe(plain); err == nil {
		t.Error("the peer port answered a plaintext client")
	}
	if err := probe(foreign); err == nil {
		t.Error("the peer port answered a certificate of another CA")
	}
}
