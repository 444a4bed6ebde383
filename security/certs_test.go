package security

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mustCA(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := CreateCA(dir, 24*time.Hour, false); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCreateCertsModesAndUsages(t *testing.T) {
	dir := mustCA(t)
	if err := CreateCA(dir, time.Hour, false); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second create-ca: %v, want a refusal", err)
	}
	if err := CreateNode(dir, []string{"127.0.0.1", "node1.example", "::1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := CreateClient(dir, "alice", RoleRead, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{CAKeyFile, NodeKey, ClientKeyFile("alice")} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	ca, _, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	node, err := LoadCertFile(filepath.Join(dir, NodeCert))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := node.Verify(x509.VerifyOptions{Roots: pool, DNSName: "node1.example", KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
			t.Errorf("node cert usage %v: %v", u, err)
		}
	}
	if err := node.VerifyHostname("127.0.0.1"); err != nil {
		t.Error(err)
	}
	if err := node.VerifyHostname("other.example"); err == nil {
		t.Error("node cert valid for a host it was not made for")
	}
	if RoleOf(node) != RoleAdmin {
		t.Errorf("node role %q", RoleOf(node))
	}
	cl, err := LoadCertFile(filepath.Join(dir, ClientCertFile("alice")))
	if err != nil {
		t.Fatal(err)
	}
	if RoleOf(cl) != RoleRead || cl.Subject.CommonName != "alice" {
		t.Errorf("client role %q cn %q", RoleOf(cl), cl.Subject.CommonName)
	}
	if _, err := cl.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("a client certificate must not serve")
	}
}

func TestCreateRejectsBadInput(t *testing.T) {
	dir := mustCA(t)
	if err := CreateClient(dir, "bob", "root", time.Hour); err == nil {
		t.Error("role root accepted")
	}
	if err := CreateClient(dir, "../x", RoleRead, time.Hour); err == nil {
		t.Error("path in client name accepted")
	}
	if err := CreateNode(dir, nil, time.Hour); err == nil {
		t.Error("node without hosts accepted")
	}
	if err := CreateNode(t.TempDir(), []string{"h"}, time.Hour); err == nil {
		t.Error("node signed without a CA")
	}
}

// TestMutualTLS runs a real handshake: a node accepts a peer with a node
// certificate of its CA, and refuses none, or one from another CA.
func TestMutualTLS(t *testing.T) {
	dir := mustCA(t)
	if err := CreateNode(dir, []string{"127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	certs, err := LoadNodeCerts(dir)
	if err != nil {
		t.Fatal(err)
	}
	other := mustCA(t)
	if err := CreateNode(other, []string{"127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	otherCerts, err := LoadNodeCerts(other)
	if err != nil {
		t.Fatal(err)
	}

	ln, err := tls.Listen("tcp", "127.0.0.1:0", certs.PeerServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_ = c.(*tls.Conn).Handshake()
				_, _ = c.Write([]byte("ok"))
			}()
		}
	}()
	dial := func(cfg *tls.Config) error {
		d := &net.Dialer{Timeout: 5 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 2)
		_, err = c.Read(buf) // TLS 1.3: a refused client cert surfaces on read
		return err
	}
	good := certs.PeerClientConfig()
	good.ServerName = "127.0.0.1"
	if err := dial(good); err != nil {
		t.Fatalf("node with a valid cert refused: %v", err)
	}
	noCert, err := ClientConfig(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := dial(noCert); err == nil {
		t.Error("peer port accepted a client without a certificate")
	}
	foreign := otherCerts.PeerClientConfig()
	foreign.ServerName = "127.0.0.1"
	if err := dial(foreign); err == nil {
		t.Error("peer port accepted a certificate from another CA")
	}

	// Reload: after a new node cert is written, new handshakes still succeed
	// and serve the new certificate.
	before := certs.state.Load().cert.Leaf
	if err := CreateNode(dir, []string{"127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := certs.Reload(); err != nil {
		t.Fatal(err)
	}
	if certs.state.Load().cert.Leaf.SerialNumber.Cmp(before.SerialNumber) == 0 {
		t.Error("reload kept the old certificate")
	}
	if err := dial(good); err != nil {
		t.Fatalf("after reload: %v", err)
	}
}

// TestIsNodeCert: only CreateNode's certificates pass the peer port's
// check; a client certificate named "node" does not.
func TestIsNodeCert(t *testing.T) {
	dir := t.TempDir()
	if err := CreateCA(dir, time.Hour, false); err != nil {
		t.Fatal(err)
	}
	if err := CreateNode(dir, []string{"127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := CreateClient(dir, "node", RoleAdmin, time.Hour); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]bool{NodeCert: true, ClientCertFile("node"): false, CACertFile: false} {
		c, err := LoadCertFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if got := IsNodeCert(c); got != want {
			t.Errorf("IsNodeCert(%s) = %v, want %v", file, got, want)
		}
	}
}
