package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dynago/dynago/client"
	"github.com/dynago/dynago/devcluster"
	"github.com/dynago/dynago/internal/testutil"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/security"
	"github.com/dynago/dynago/transport"
)

const (
	secReadToken  = "e2e-read-token-0123456789"
	secWriteToken = "e2e-write-token-0123456789"
	secAdminToken = "e2e-admin-token-0123456789"
)

// secureFiles writes what a secure cluster needs into a fresh directory:
// a CA, a node certificate for 127.0.0.1, an admin client certificate
// "root", a gossip key file and a tokens file with one token per role.
func secureFiles(t *testing.T) (certs, gossipKey, tokens string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	certs = t.TempDir()
	must(security.CreateCA(certs, time.Hour, false))
	must(security.CreateNode(certs, []string{"127.0.0.1", "localhost"}, time.Hour))
	must(security.CreateClient(certs, "root", security.RoleAdmin, time.Hour))
	other := t.TempDir()
	gossipKey = filepath.Join(other, "gossip.key")
	must(os.WriteFile(gossipKey, []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))+"\n"), 0o600))
	tokens = filepath.Join(other, "tokens")
	must(os.WriteFile(tokens, []byte(secReadToken+" read\n"+secWriteToken+" write\n"+secAdminToken+" admin\n"), 0o600))
	return certs, gossipKey, tokens
}

// TestSecurity runs a 3-node cluster of real processes with mutual TLS,
// an encrypted gossip keyring and tokens, and checks what an attacker on
// the network and an under-privileged client can and cannot do.
func TestSecurity(t *testing.T) {
	certs, gossipKey, tokens := secureFiles(t)
	base := freeBase(t, 6)
	c := startCluster(t, devcluster.Config{
		Nodes: 3, HTTPBasePort: base, CertsDir: certs,
		ExtraArgs: []string{"--gossip-key-file", gossipKey, "--tokens-file", tokens},
	})
	if c.Scheme() != "https" || !strings.HasPrefix(c.Nodes[0].URL, "https://") {
		t.Fatalf("devcluster with CertsDir serves %s (%s), want https", c.Scheme(), c.Nodes[0].URL)
	}
	caOnly, err := security.ClientConfig(certs, "")
	if err != nil {
		t.Fatal(err)
	}
	addrs := []string{c.Nodes[0].HTTPAddr, c.Nodes[1].HTTPAddr, c.Nodes[2].HTTPAddr}
	newClient := func(token string, node int) *client.Client {
		t.Helper()
		cl, err := client.New([]string{addrs[node]}, client.WithTLS(caOnly), client.WithToken(token), client.WithTimeout(15*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("ClusterFormsAndServesOverTLS", func(t *testing.T) {
		// Every node sees the other two alive: gossip with the key works.
		for i := range 3 {
			testutil.Eventually(t, 20*time.Second, "node sees 3 alive members", func() bool {
				cl, err := newClient(secReadToken, i).Cluster(ctx)
				return err == nil && aliveIDs(cl) == "n1,n2,n3"
			})
		}
		// W=3 and R=3: every replica acknowledges over the mutual-TLS peer port.
		if _, err := newClient(secWriteToken, 0).Put(ctx, "secret", []byte("v1"), &client.PutOptions{W: 3}); err != nil {
			t.Fatalf("PUT with W=3 through n1: %v", err)
		}
		v, err := newClient(secReadToken, 2).Get(ctx, "secret", &client.GetOptions{R: 3})
		if err != nil || len(v.Siblings) != 1 || string(v.Siblings[0]) != "v1" {
			t.Fatalf("GET with R=3 through n3 = %q, %v; want v1", v.Siblings, err)
		}
	})

	t.Run("PeerPortRefusesWithoutNodeCertificate", func(t *testing.T) {
		probe := func(clientTLS func() *tls.Config) error {
			tr, err := transport.New(transport.Config{ID: "prober", ListenAddr: "127.0.0.1:0", CallTimeout: 3 * time.Second, ClientTLS: clientTLS}, func([]node.Message) {})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			return tr.Probe(pctx, ring.NodeID("n2"), c.Nodes[1].RPCAddr)
		}
		nodeCerts, err := security.LoadNodeCerts(certs)
		if err != nil {
			t.Fatal(err)
		}
		// The control: the cluster's own node certificate gets through.
		if err := probe(nodeCerts.PeerClientConfig); err != nil {
			t.Fatalf("a peer with the cluster's node certificate was refused: %v", err)
		}
		if err := probe(nil); err == nil {
			t.Error("the peer port answered a plaintext peer")
		}
		// TLS that trusts the node but presents no certificate.
		if err := probe(func() *tls.Config { return &tls.Config{RootCAs: caOnly.RootCAs} }); err == nil {
			t.Error("the peer port answered a peer without a client certificate")
		}
		// A node certificate of another CA, for the same address.
		foreign := t.TempDir()
		if err := security.CreateCA(foreign, time.Hour, false); err != nil {
			t.Fatal(err)
		}
		if err := security.CreateNode(foreign, []string{"127.0.0.1"}, time.Hour); err != nil {
			t.Fatal(err)
		}
		theirs, err := security.LoadNodeCerts(foreign)
		if err != nil {
			t.Fatal(err)
		}
		foreignCfg := func() *tls.Config {
			cfg := theirs.PeerClientConfig()
			cfg.RootCAs = caOnly.RootCAs // trust the server, so only the client's certificate is at stake
			return cfg
		}
		if err := probe(foreignCfg); err == nil {
			t.Error("the peer port answered a peer whose certificate another CA signed")
		}
		// A client certificate of the cluster's CA (role admin, even) is
		// not a node's: it must not send replica messages.
		rootCfg, err := security.ClientConfig(certs, "root")
		if err != nil {
			t.Fatal(err)
		}
		if err := probe(func() *tls.Config { return rootCfg.Clone() }); err == nil {
			t.Error("the peer port answered a peer holding a client certificate")
		}
	})

	t.Run("GossipKeepsOutMembersWithoutTheKey", func(t *testing.T) {
		wrongKey := filepath.Join(t.TempDir(), "wrong.key")
		if err := os.WriteFile(wrongKey, []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{8}, 32))+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		join := c.Nodes[0].GossipAddr + "," + c.Nodes[1].GossipAddr
		// Valid node certificates and tokens, the right cluster name: only
		// the gossip key is wrong (n5) or missing (n6).
		outsider := func(id string, i int, extra ...string) {
			t.Helper()
			dir := t.TempDir()
			args := append([]string{"server", "--id", id, "--data-dir", dir,
				"--http-addr", hostPort(base + i), "--rpc-addr", hostPort(base + 100 + i), "--gossip-addr", hostPort(base + 200 + i),
				"--join", join, "--preset", "lab", "--cluster-name", c.ClusterName(),
				"--certs-dir", certs, "--tokens-file", tokens}, extra...)
			startProcess(t, dir+".log", args...)
		}
		outsider("n5", 4, "--gossip-key-file", wrongKey)
		outsider("n6", 5)
		probe := devcluster.ProbeClient(caOnly)
		for _, i := range []int{4, 5} {
			waitUp(t, probe, "https://"+hostPort(base+i))
		}
		// The control: a node with the key (devcluster passes the
		// cluster's flags) is seen by the members, so the outsiders,
		// started earlier, had as long to be seen.
		n4, err := c.AddNode(ctx)
		if err != nil {
			t.Fatalf("adding n4 with the key: %v", err)
		}
		testutil.Eventually(t, 20*time.Second, "n4, holding the key, is seen alive by n1", func() bool {
			cl, err := newClient(secReadToken, 0).Cluster(ctx)
			return err == nil && strings.Contains(aliveIDs(cl), n4.ID)
		})
		// Keep looking a while longer: gossip (lab preset) runs every
		// few hundred milliseconds.
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			for i := range 3 {
				cl, err := newClient(secReadToken, i).Cluster(ctx)
				if err != nil {
					t.Fatalf("n%d /cluster: %v", i+1, err)
				}
				for _, n := range cl.Nodes {
					if n.ID == "n5" || n.ID == "n6" {
						t.Fatalf("n%d lists %s (%s), which has no valid gossip key", i+1, n.ID, n.Status)
					}
				}
			}
			time.Sleep(250 * time.Millisecond)
		}
		// Nor do the outsiders see the cluster.
		for _, i := range []int{4, 5} {
			cl, err := client.New([]string{hostPort(base + i)}, client.WithTLS(caOnly), client.WithToken(secReadToken))
			if err != nil {
				t.Fatal(err)
			}
			// An outsider never got the cluster state: it has no ring.
			view, err := cl.Cluster(ctx)
			var apiErr *client.APIError
			if !errors.As(err, &apiErr) || apiErr.Code != "no_ring" {
				t.Errorf("outsider on %s: /cluster = %+v, %v; want 503 no_ring (never joined)", hostPort(base+i), view, err)
			}
		}
	})

	t.Run("TokensAndRoles", func(t *testing.T) {
		anon, err := client.New([]string{addrs[0]}, client.WithTLS(caOnly))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := anon.Get(ctx, "secret", nil); !errors.Is(err, client.ErrUnauthorized) {
			t.Errorf("GET without credentials = %v, want 401", err)
		}
		reader, writer, admin := newClient(secReadToken, 1), newClient(secWriteToken, 1), newClient(secAdminToken, 1)
		v, err := reader.Get(ctx, "secret", nil)
		if err != nil || len(v.Siblings) != 1 {
			t.Fatalf("GET with a read token = %q, %v", v.Siblings, err)
		}
		if _, err := reader.Put(ctx, "secret", []byte("v2"), &client.PutOptions{Context: v.Context}); !errors.Is(err, client.ErrForbidden) {
			t.Errorf("PUT with a read token = %v, want 403", err)
		}
		if _, err := writer.Put(ctx, "secret", []byte("v2"), &client.PutOptions{Context: v.Context}); err != nil {
			t.Errorf("PUT with a write token: %v", err)
		}
		if _, err := writer.Plan(ctx); !errors.Is(err, client.ErrForbidden) {
			t.Errorf("GET /admin/plan with a write token = %v, want 403", err)
		}
		p, err := admin.Plan(ctx)
		if err != nil {
			t.Errorf("GET /admin/plan with an admin token: %v", err)
		}
		// After the gossip subtest n4 is alive outside the ring: the plan
		// checked its HTTPS address with the node's own certificate.
		if len(c.List()) == 4 && (err != nil || !slices.Contains(p.Joining, "n4")) {
			t.Errorf("plan joining = %v, want n4", p.Joining)
		}
		// Plain HTTP to the HTTPS port gets nothing.
		plain, err := client.New([]string{"http://" + addrs[0]}, client.WithToken(secReadToken))
		if err != nil {
			t.Fatal(err)
		}
		if v, err := plain.Get(ctx, "secret", nil); err == nil {
			t.Errorf("plain HTTP read %q", v.Siblings)
		}
	})

	t.Run("CLI", func(t *testing.T) {
		readFile := filepath.Join(t.TempDir(), "read.token")
		if err := os.WriteFile(readFile, []byte(secReadToken+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		env := []string{"DYNAGO_ADDR=" + addrs[0], "DYNAGO_CERTS_DIR=" + certs}
		// A token takes precedence over the root certificate in certs.
		out, errOut, code := runCLI(t, env, "get", "secret", "--token-file", readFile)
		if code != 0 || !strings.Contains(out, "v2") {
			t.Errorf("get with a read token: exit %d, %q %q", code, out, errOut)
		}
		_, errOut, code = runCLI(t, append(env, "DYNAGO_TOKEN="+secReadToken), "put", "secret", "v3")
		if code != 1 || !strings.Contains(errOut, "403") {
			t.Errorf("put with a read token: exit %d, stderr %q; want 1 and a 403", code, errOut)
		}
		_, errOut, code = runCLI(t, []string{"DYNAGO_ADDR=" + addrs[0]}, "status", "--certs-dir", certs, "--cert-name", "missing")
		if code != 2 || !strings.Contains(errOut, "client.missing.crt") {
			t.Errorf("status with a missing certificate: exit %d, stderr %q; want 2 naming the file", code, errOut)
		}
		// No token: the admin certificate client.root.crt authenticates.
		out, errOut, code = runCLI(t, env, "status")
		if code != 0 || !strings.Contains(out, "n3") {
			t.Errorf("status with the root certificate: exit %d, %q %q", code, out, errOut)
		}
		out, errOut, code = runCLI(t, env, "fault", "show", "--all")
		if code != 0 || strings.Count(out, "127.0.0.1:") < 3 {
			t.Errorf("fault show --all with the root certificate: exit %d, %q %q", code, out, errOut)
		}
		_, errOut, code = runCLI(t, append(env, "DYNAGO_TOKEN="+secWriteToken), "fault", "show")
		if code != 1 || !strings.Contains(errOut, "forbidden") {
			t.Errorf("fault show with a write token: exit %d, %q; want 1, forbidden", code, errOut)
		}
		// The container's health probe: HTTPS, no credentials.
		out, errOut, code = runCLI(t, []string{"DYNAGO_HTTP_ADDR=" + addrs[1], "DYNAGO_CERTS_DIR=" + certs}, "healthcheck")
		if code != 0 || !strings.Contains(out, "n2 ok") {
			t.Errorf("healthcheck over HTTPS: exit %d, %q %q", code, out, errOut)
		}
		if _, _, code = runCLI(t, []string{"DYNAGO_HTTP_ADDR=" + addrs[1]}, "healthcheck"); code != 1 {
			t.Errorf("healthcheck over plain HTTP of an HTTPS node: exit %d, want 1", code)
		}
	})
}

// TestSecurityRefusesPlaintextBeyondLoopback: without certificates and
// without --insecure, `dynago server` refuses a listener beyond loopback
// before it opens anything; the same flags on loopback start. (Only the
// refused process is given 0.0.0.0, and it exits before listening.)
func TestSecurityRefusesPlaintextBeyondLoopback(t *testing.T) {
	base := freeBase(t, 1)
	dir := filepath.Join(t.TempDir(), "data")
	args := []string{"server", "--id", "x", "--data-dir", dir,
		"--http-addr", "0.0.0.0:" + strconv.Itoa(base), "--advertise-http", hostPort(base),
		"--rpc-addr", hostPort(base + 100), "--gossip-addr", hostPort(base + 200), "--preset", "lab"}
	cmd := exec.Command(binary, args...)
	cmd.Env = cleanEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	code := waitExit(t, cmd, 30*time.Second)
	if code != 2 || !strings.Contains(stderr.String(), "--insecure") || !strings.Contains(stderr.String(), "--http-addr") {
		t.Fatalf("plaintext on 0.0.0.0: exit %d, stderr %q; want exit 2 naming --http-addr and --insecure", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused server opened its store (%v)", err)
	}
	// The control: the same flags with HTTP on loopback start a node.
	loop := slices.Clone(args)
	loop[slices.Index(loop, "0.0.0.0:"+strconv.Itoa(base))] = hostPort(base)
	startProcess(t, dir+".log", loop...)
	waitUp(t, devcluster.ProbeClient(nil), "http://"+hostPort(base))
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// aliveIDs lists the alive members of a cluster view, sorted, comma-joined.
func aliveIDs(cl client.Cluster) string {
	var ids []string
	for _, n := range cl.Nodes {
		if n.Status == "alive" {
			ids = append(ids, string(n.ID))
		}
	}
	slices.Sort(ids)
	return strings.Join(ids, ",")
}

// cleanEnv is the test's environment without DYNAGO_* variables, so that
// a developer's shell cannot change what a process under test does.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DYNAGO_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// waitExit waits for cmd to exit, killing it after within, and returns
// its exit code.
func waitExit(t *testing.T, cmd *exec.Cmd, within time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(within):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%v did not exit within %v", cmd.Args, within)
		return -1
	}
}

// runCLI runs the dynago binary with env (over a clean environment) and
// returns its stdout, stderr and exit code.
func runCLI(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = cleanEnv(env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	code := waitExit(t, cmd, 60*time.Second)
	return out.String(), errOut.String(), code
}

// startProcess runs the dynago binary with args, logging to logPath, and
// stops it (SIGTERM, then SIGKILL) when the test ends.
func startProcess(t *testing.T, logPath string, args ...string) {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("--- %s log (tail) ---\n%s", args[2], tail(b, 3000))
			}
		}
	})
}

// waitUp polls url/healthz with hc until it answers 200, for at most 30s.
func waitUp(t *testing.T, hc *http.Client, url string) {
	t.Helper()
	testutil.EventuallyNil(t, 30*time.Second, func() error {
		resp, err := hc.Get(url + "/healthz")
		if err != nil {
			return fmt.Errorf("%s/healthz: %w", url, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s/healthz: %s", url, resp.Status)
		}
		return nil
	})
}

// TestSecurityDevSecure: `dynago dev --secure` is still one command; it
// prints how to connect, and what it prints works.
func TestSecurityDevSecure(t *testing.T) {
	base := freeBase(t, 3)
	cmd := exec.Command(binary, "dev", "--secure", "--nodes", "3", "--http-base-port", strconv.Itoa(base), "--quiet")
	cmd.Env = cleanEnv()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	t.Cleanup(func() {
		if !exited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	// Read what dev prints until its export line, for at most 90s.
	lines := make(chan string)
	go func() {
		defer close(lines)
		buf := make([]byte, 4096)
		var acc []byte
		for {
			n, err := stdout.Read(buf)
			acc = append(acc, buf[:n]...)
			for {
				i := bytes.IndexByte(acc, '\n')
				if i < 0 {
					break
				}
				lines <- string(acc[:i])
				acc = acc[i+1:]
			}
			if err != nil {
				return
			}
		}
	}()
	var export string
	deadline := time.After(90 * time.Second)
	for export == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("dev exited before printing how to connect; stderr:\n%s", stderr.String())
			}
			if strings.HasPrefix(strings.TrimSpace(l), "export DYNAGO_CERTS_DIR=") {
				export = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "export "))
			}
		case <-deadline:
			t.Fatalf("dev printed no export line within 90s; stderr:\n%s", stderr.String())
		}
	}
	go func() {
		for range lines { // keep dev's stdout drained
		}
	}()
	env := strings.Fields(export) // DYNAGO_CERTS_DIR=... DYNAGO_ADDR=...
	certs := strings.TrimPrefix(env[0], "DYNAGO_CERTS_DIR=")
	if _, _, code := runCLI(t, env, "put", "greeting", "hello"); code != 0 {
		t.Fatalf("put with the printed environment: exit %d", code)
	}
	if out, errOut, code := runCLI(t, env, "get", "greeting"); code != 0 || !strings.HasPrefix(out, "hello\n") {
		t.Fatalf("get with the printed environment: exit %d, %q %q", code, out, errOut)
	}
	// Without the certificates the nodes do not answer over plain HTTP.
	if _, _, code := runCLI(t, env[1:], "get", "greeting"); code == 0 {
		t.Error("plain get of a --secure dev cluster succeeded")
	}
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		exited = true
	case <-time.After(60 * time.Second):
		t.Fatal("dev did not stop within 60s of SIGINT")
	}
	if _, err := os.Stat(certs); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dev left its temporary certificates behind: %s (%v)", certs, err)
	}
}
