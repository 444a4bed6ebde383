package client_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynago/dynago/client"
	"github.com/dynago/dynago/internal/testutil"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/security"
	"github.com/dynago/dynago/server"
)

const (
	readToken  = "reader-token-0123456789"
	writeToken = "writer-token-0123456789"
	adminToken = "admin-token-0123456789"
)

// startSecureNode runs one real node with TLS on HTTP and a tokens file,
// and returns its HTTP address and certs directory (which also holds
// client certificates "reader", role read, and "ops", role admin).
func startSecureNode(t *testing.T) (addr, certs string) {
	t.Helper()
	certs = t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(security.CreateCA(certs, time.Hour, false))
	must(security.CreateNode(certs, []string{"127.0.0.1"}, time.Hour))
	must(security.CreateClient(certs, "reader", security.RoleRead, time.Hour))
	must(security.CreateClient(certs, "ops", security.RoleAdmin, time.Hour))
	tokens := filepath.Join(t.TempDir(), "tokens")
	must(os.WriteFile(tokens, []byte(readToken+" read\n"+writeToken+" write\n"+adminToken+" admin\n"), 0o600))
	addr, rpc := testutil.FreeAddr(t), testutil.FreeAddr(t)
	srv, err := server.Start(server.Config{
		ID: "n1", DataDir: t.TempDir(), HTTPAddr: addr, RPCAddr: rpc, GossipAddr: "127.0.0.1:0",
		Cluster: []server.Peer{{ID: ring.NodeID("n1"), RPCAddr: rpc, HTTPAddr: addr}}, Node: node.Config{N: 1},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Security: server.Security{CertsDir: certs, TokensFile: tokens},
	})
	must(err)
	t.Cleanup(func() { srv.Close() })
	return addr, certs
}

func tlsConfig(t *testing.T, certs, name string) *tls.Config {
	t.Helper()
	cfg, err := security.ClientConfig(certs, name)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestTLSAndTokens: against a real node with TLS and tokens, the client
// dials HTTPS with WithTLS, authenticates with WithToken or a client
// certificate, and reports 401 and 403 as ErrUnauthorized and ErrForbidden.
func TestTLSAndTokens(t *testing.T) {
	addr, certs := startSecureNode(t)
	ctx := testContext(t)
	caOnly := tlsConfig(t, certs, "")

	// Plain HTTP to a TLS port gets no data through.
	if _, err := newClient(t, []string{addr}).Get(ctx, "k", nil); err == nil || errors.Is(err, client.ErrNotFound) {
		t.Fatalf("plain HTTP to the TLS port: %v, want an error", err)
	}

	// TLS without credentials: 401.
	anon := newClient(t, []string{addr}, client.WithTLS(caOnly))
	_, err := anon.Get(ctx, "k", nil)
	var apiErr *client.APIError
	if !errors.Is(err, client.ErrUnauthorized) || !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized {
		t.Fatalf("Get without credentials = %v, want ErrUnauthorized from a 401 *APIError", err)
	}
	if errors.Is(err, client.ErrForbidden) {
		t.Errorf("a 401 also matches ErrForbidden: %v", err)
	}

	// A write token writes; a read token reads but may not write.
	writer := newClient(t, []string{addr}, client.WithTLS(caOnly), client.WithToken(writeToken))
	if _, err := writer.Put(ctx, "k", []byte("v1"), nil); err != nil {
		t.Fatalf("Put with a write token: %v", err)
	}
	reader := newClient(t, []string{"https://" + addr}, client.WithTLS(caOnly), client.WithToken(readToken))
	v, err := reader.Get(ctx, "k", nil)
	if err != nil || len(v.Siblings) != 1 || string(v.Siblings[0]) != "v1" {
		t.Fatalf("Get with a read token = %q, %v; want v1", v.Siblings, err)
	}
	_, err = reader.Put(ctx, "k", []byte("v2"), &client.PutOptions{Context: v.Context})
	if !errors.Is(err, client.ErrForbidden) || errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("Put with a read token = %v, want ErrForbidden", err)
	}
	if err := reader.Delete(ctx, "k", &client.PutOptions{Context: v.Context}); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("Delete with a read token = %v, want ErrForbidden", err)
	}
	// An unknown token is no credential.
	stranger := newClient(t, []string{addr}, client.WithTLS(caOnly), client.WithToken("not-a-known-token-0123"))
	if _, err := stranger.Get(ctx, "k", nil); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("Get with an unknown token = %v, want ErrUnauthorized", err)
	}

	// /admin/* needs admin.
	if _, err := writer.Plan(ctx); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("Plan with a write token = %v, want ErrForbidden", err)
	}
	admin := newClient(t, []string{addr}, client.WithTLS(caOnly), client.WithToken(adminToken))
	if _, err := admin.Plan(ctx); err != nil {
		t.Fatalf("Plan with an admin token: %v", err)
	}

	// Client certificates carry their role.
	ops := newClient(t, []string{addr}, client.WithTLS(tlsConfig(t, certs, "ops")))
	if _, err := ops.Plan(ctx); err != nil {
		t.Fatalf("Plan with an admin certificate: %v", err)
	}
	if _, err := ops.Put(ctx, "k2", []byte("x"), nil); err != nil {
		t.Fatalf("Put with an admin certificate: %v", err)
	}
	readerCert := newClient(t, []string{addr}, client.WithTLS(tlsConfig(t, certs, "reader")))
	if _, err := readerCert.Get(ctx, "k2", nil); err != nil {
		t.Fatalf("Get with a read certificate: %v", err)
	}
	if _, err := readerCert.Put(ctx, "k2", []byte("y"), nil); !errors.Is(err, client.ErrForbidden) {
		t.Fatalf("Put with a read certificate = %v, want ErrForbidden", err)
	}

	// Client-driven routing reads /ring with the same TLS and token and
	// keeps https for the nodes it learns.
	routed := newClient(t, []string{addr}, client.WithTLS(caOnly), client.WithToken(writeToken), client.WithRouting())
	if _, err := routed.Put(ctx, "k3", []byte("z"), nil); err != nil {
		t.Fatalf("routed Put: %v", err)
	}
	if got, err := routed.RouteOf("k3"); err != nil || got != addr {
		t.Fatalf("RouteOf = %q, %v; want %s (the ring was read over TLS)", got, err, addr)
	}

	// A CA that did not sign the node's certificate: the handshake fails.
	other := t.TempDir()
	if err := security.CreateCA(other, time.Hour, false); err != nil {
		t.Fatal(err)
	}
	wrongCA := newClient(t, []string{addr}, client.WithTLS(tlsConfig(t, other, "")), client.WithToken(readToken))
	_, err = wrongCA.Get(ctx, "k", nil)
	var verr *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &verr) || !errors.As(err, &unknown) {
		t.Fatalf("Get trusting another CA = %v, want a certificate verification error", err)
	}
}

// TestAuthErrorsFromProxies: a 401 or 403 without the API's JSON (from a
// proxy in front of the node) matches the sentinels too.
func TestAuthErrorsFromProxies(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "go away", status)
		}))
		_, err := newClient(t, []string{srv.Listener.Addr().String()}).Get(testContext(t), "k", nil)
		srv.Close()
		want := map[int]error{401: client.ErrUnauthorized, 403: client.ErrForbidden}[status]
		if !errors.Is(err, want) || !strings.Contains(err.Error(), "go away") {
			t.Errorf("status %d: %v, want %v quoting the answer", status, err, want)
		}
	}
}

// TestTokenSentAndOptionsChecked: the token travels as a bearer header on
// every request; a token that cannot be a header value, and WithTLS over a
// transport the client cannot configure, are refused by New.
func TestTokenSentAndOptionsChecked(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.Header.Get("Authorization"):
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	shared := &http.Client{Timeout: 5 * time.Second}
	c := newClient(t, []string{srv.Listener.Addr().String()}, client.WithHTTPClient(shared),
		client.WithTLS(&tls.Config{RootCAs: pool}), client.WithToken("tok-0123456789abcdef"))
	if _, err := c.Put(testContext(t), "k", []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	if h := <-got; h != "Bearer tok-0123456789abcdef" {
		t.Errorf("Authorization = %q", h)
	}
	if shared.Transport != nil {
		t.Errorf("WithTLS changed the caller's http.Client")
	}

	for _, bad := range []string{"two words", "line\nbreak", "tab\tbed", "é-accent"} {
		if _, err := client.New([]string{"127.0.0.1:1"}, client.WithToken(bad)); !errors.Is(err, client.ErrBadOption) {
			t.Errorf("WithToken(%q): %v, want ErrBadOption", bad, err)
		}
	}
	odd := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("x") })}
	if _, err := client.New([]string{"127.0.0.1:1"}, client.WithHTTPClient(odd), client.WithTLS(&tls.Config{})); !errors.Is(err, client.ErrBadOption) {
		t.Errorf("WithTLS over a custom RoundTripper: %v, want ErrBadOption", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
