package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/security"
)

func TestPlaintextBeyondLoopbackNeedsInsecure(t *testing.T) {
	base := Config{ID: "a", DataDir: t.TempDir(), HTTPAddr: "0.0.0.0:0", AdvertiseHTTP: "a.example:9101", RPCAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0"}
	_, err := Start(base)
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "--insecure") {
		t.Fatalf("plain 0.0.0.0 listener: %v, want a refusal naming --insecure", err)
	}
	for _, ok := range []string{"127.0.0.1:1", "localhost:1", "[::1]:1"} {
		if !isLoopbackListen(ok) {
			t.Errorf("%s not loopback", ok)
		}
	}
	for _, bad := range []string{"0.0.0.0:1", ":1", "10.0.0.1:1", "[::]:1", "example.com:1"} {
		if isLoopbackListen(bad) {
			t.Errorf("%s taken for loopback", bad)
		}
	}
	c := base
	c.Security.Insecure = true
	if err := c.checkListeners(); err != nil {
		t.Errorf("--insecure refused: %v", err)
	}
}

func TestParseTokens(t *testing.T) {
	m, err := ParseTokens([]byte("# ops\nreadtoken-0123456789 read\n  admintoken-0123456789   admin\n"))
	if err != nil || m["readtoken-0123456789"] != "read" || m["admintoken-0123456789"] != "admin" {
		t.Fatalf("%v %v", m, err)
	}
	for _, bad := range []string{"tok-0123456789abcdef root\n", "short read\n", "a b c\n"} {
		if _, err := ParseTokens([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestSecureCluster: three nodes with mutual TLS between them, encrypted
// gossip and tokens still replicate; HTTP is TLS, and a read token can GET
// but not PUT.
func TestSecureCluster(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(security.CreateCA(dir, time.Hour, false))
	must(security.CreateNode(dir, []string{"127.0.0.1"}, time.Hour))
	must(security.CreateClient(dir, "ops", security.RoleAdmin, time.Hour))
	keyFile := filepath.Join(dir, "gossip.key")
	must(os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))+"\n"), 0o600))
	tokFile := filepath.Join(dir, "tokens")
	must(os.WriteFile(tokFile, []byte("reader-token-0123456789 read\nwriter-token-0123456789 write\n"), 0o600))
	srvs := startCluster(t, 3, func(c *Config) {
		c.Security = Security{CertsDir: dir, GossipKeyFile: keyFile, TokensFile: tokFile}
	})
	ctx := context.Background()
	r := srvs[0].Do(ctx, node.Request{Op: node.OpPut, Key: []byte("k"), Value: []byte("v")})
	if r.Code != node.CodeOK || r.Acks < 2 {
		t.Fatalf("put over mTLS: %s %s acks=%d", r.Code, r.Err, r.Acks)
	}

	tlsCfg, err := security.ClientConfig(dir, "")
	must(err)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	do := func(method, tok string) int {
		t.Helper()
		req, err := http.NewRequest(method, "https://"+srvs[1].HTTPAddr()+"/kv/k", strings.NewReader("w"))
		must(err)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := hc.Do(req)
		must(err)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := do("GET", ""); got != http.StatusUnauthorized {
		t.Errorf("GET without token: %d, want 401", got)
	}
	if got := do("GET", "reader-token-0123456789"); got != http.StatusOK {
		t.Errorf("GET with read token: %d, want 200", got)
	}
	if got := do("PUT", "reader-token-0123456789"); got != http.StatusForbidden {
		t.Errorf("PUT with read token: %d, want 403", got)
	}
	if got := do("PUT", "wrong-token-0123456789"); got != http.StatusUnauthorized {
		t.Errorf("PUT with unknown token: %d, want 401", got)
	}
	if got := do("PUT", "writer-token-0123456789"); got != http.StatusNoContent {
		t.Errorf("PUT with write token: %d, want 204", got)
	}
	// Plain HTTP is not served.
	if resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + srvs[1].HTTPAddr() + "/kv/k"); err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("plain HTTP answered %d", resp.StatusCode)
		}
	}
	// A client certificate with role admin reaches /admin/*.
	certCfg, err := security.ClientConfig(dir, "ops")
	must(err)
	cc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: certCfg}}
	resp, err := cc.Get("https://" + srvs[1].HTTPAddr() + "/admin/stats")
	must(err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/admin/stats with an admin certificate: %d", resp.StatusCode)
	}
	// SIGHUP's reload: a revoked token stops working.
	must(os.WriteFile(tokFile, []byte("writer-token-0123456789 write\n"), 0o600))
	must(srvs[1].Reload())
	if got := do("GET", "reader-token-0123456789"); got != http.StatusUnauthorized {
		t.Errorf("GET with a removed token after reload: %d, want 401", got)
	}
}
