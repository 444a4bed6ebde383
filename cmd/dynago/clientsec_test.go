package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynago/dynago/client"
	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/httpapi/httpapitest"
	"github.com/dynago/dynago/security"
)

const (
	cliReadToken  = "cli-read-token-0123456789"
	cliWriteToken = "cli-write-token-0123456789"
)

// secureNode serves the real HTTP API over TLS with the real role check
// (httpapi.WithAuth): two tokens, and client certificates' roles. hosts
// are the names of its certificate. It returns its address and the certs
// directory, which holds ca.crt and no client certificate.
func secureNode(t *testing.T, hosts ...string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	if err := security.CreateCA(dir, time.Hour, false); err != nil {
		t.Fatal(err)
	}
	if err := security.CreateNode(dir, hosts, time.Hour); err != nil {
		t.Fatal(err)
	}
	certs, err := security.LoadNodeCerts(dir)
	if err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{cliReadToken: "read", cliWriteToken: "write"}
	h := httpapi.WithAuth(httpapi.New(httpapitest.New(), httpapi.Options{}), func(r *http.Request) (string, bool) {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			return tokens[tok], tokens[tok] != ""
		}
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
			role := security.RoleOf(r.TLS.VerifiedChains[0][0])
			return role, role != ""
		}
		return "", false
	})
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = certs.HTTPServerConfig()
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), dir
}

func TestCLIOverTLSWithTokens(t *testing.T) {
	addr, dir := secureNode(t, "127.0.0.1")
	t.Setenv("DYNAGO_ADDR", addr) // no scheme: https because of --certs-dir
	t.Setenv("DYNAGO_CERTS_DIR", dir)

	if _, err := run(t, "", "put", "k", "v", "--token", cliWriteToken); err != nil {
		t.Fatalf("put with a write token: %v", err)
	}
	tokFile := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(tokFile, []byte(cliReadToken+"\n# the rest is ignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, "", "get", "k", "--token-file", tokFile); err != nil || !strings.HasPrefix(out, "v\n") {
		t.Fatalf("get with a read token file: %q, %v", out, err)
	}
	t.Setenv("DYNAGO_TOKEN", cliReadToken)
	if _, err := run(t, "", "put", "k", "w"); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("put with DYNAGO_TOKEN of role read: %v, want ErrForbidden", err)
	}
	t.Setenv("DYNAGO_TOKEN", "")
	if _, err := run(t, "", "status"); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("status without credentials: %v, want ErrUnauthorized", err)
	}
	// The default client certificate, once it exists, authenticates.
	if err := security.CreateClient(dir, defaultCertName, security.RoleAdmin, time.Hour); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, "", "status"); err != nil || !strings.Contains(out, "ring version") {
		t.Fatalf("status with client.root.crt: %q, %v", out, err)
	}
	if err := security.CreateClient(dir, "viewer", security.RoleRead, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "", "put", "k", "x", "--cert-name", "viewer"); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("put with a read certificate: %v, want ErrForbidden", err)
	}
	// Without the CA the node's certificate is not trusted.
	t.Setenv("DYNAGO_CERTS_DIR", "")
	if _, err := run(t, "", "get", "k", "--addr", "https://"+addr, "--token", cliReadToken); err == nil {
		t.Fatal("https without --certs-dir trusted a private CA")
	}
}

func TestCLISecurityFlagErrors(t *testing.T) {
	_, dir := secureNode(t, "127.0.0.1")
	t.Setenv("DYNAGO_ADDR", "127.0.0.1:1") // never reached: every case is refused before
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"token and token file": {"status", "--token", cliReadToken, "--token-file", empty},
		"missing token file":   {"status", "--token-file", filepath.Join(dir, "nope")},
		"empty token file":     {"status", "--token-file", empty},
		"token with a space":   {"status", "--token", "two words"},
		"missing certs dir":    {"status", "--certs-dir", filepath.Join(dir, "nope")},
		"missing cert name":    {"status", "--certs-dir", dir, "--cert-name", "nobody"},
		"cert name with path":  {"status", "--certs-dir", dir, "--cert-name", "../ca"},
		"cert name, no dir":    {"status", "--cert-name", "root"},
		"healthcheck bad dir":  {"healthcheck", "--addr", "127.0.0.1:1", "--certs-dir", filepath.Join(dir, "nope")},
		"bench bad token":      {"bench", "--token", "a\tb", "--ops", "1"},
		"fault bad token file": {"fault", "show", "--token-file", filepath.Join(dir, "nope")},
		"admin bad certs dir":  {"admin", "plan", "--certs-dir", filepath.Join(dir, "nope")},
	} {
		if _, err := run(t, "", args...); !errors.Is(err, errUsage) {
			t.Errorf("%s: %v, want a usage error (exit 2)", name, err)
		}
	}
}

func TestCLISecurityEnvRefused(t *testing.T) {
	t.Setenv("DYNAGO_CERT_NAME", "../etc/x")
	_, err := run(t, "", "status", "--help")
	if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), `DYNAGO_CERT_NAME="../etc/x"`) {
		t.Errorf("DYNAGO_CERT_NAME=../etc/x: %v, want exit 2 naming it", err)
	}
	t.Setenv("DYNAGO_CERT_NAME", "")
	t.Setenv("DYNAGO_TOKEN", "secret with spaces")
	_, err = run(t, "", "status", "--help")
	if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "DYNAGO_TOKEN") {
		t.Errorf("DYNAGO_TOKEN with spaces: %v, want exit 2 naming it", err)
	}
	if strings.Contains(fmt.Sprint(err), "secret with spaces") {
		t.Errorf("the refusal printed the token: %v", err)
	}
}

// TestHealthcheckOverTLS: the container probe speaks HTTPS with
// DYNAGO_CERTS_DIR; on loopback it checks the node's certificate against
// the CA even when the certificate does not name 127.0.0.1, and still
// refuses a certificate of another CA.
func TestHealthcheckOverTLS(t *testing.T) {
	addr, dir := secureNode(t, "n1.example.internal")
	port := addr[strings.LastIndex(addr, ":")+1:]
	t.Setenv("DYNAGO_HTTP_ADDR", "0.0.0.0:"+port)
	t.Setenv("DYNAGO_CERTS_DIR", dir)
	if out := mustRun(t, "healthcheck"); !strings.HasSuffix(out, " ok\n") {
		t.Fatalf("healthcheck printed %q", out)
	}
	other := t.TempDir()
	if err := security.CreateCA(other, time.Hour, false); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "", "healthcheck", "--certs-dir", other, "--timeout", "2s"); err == nil {
		t.Error("healthcheck trusted a node certificate of another CA")
	}
	t.Setenv("DYNAGO_CERTS_DIR", "")
	if _, err := run(t, "", "healthcheck", "--timeout", "2s"); err == nil {
		t.Error("plain-HTTP healthcheck of an HTTPS node succeeded")
	}
}
