package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/dynago/dynago/client"
	"github.com/dynago/dynago/security"
)

// The security flags of every command that talks to a node: which CA to
// trust and which client certificate to present (--certs-dir, --cert-name)
// and which bearer token to send (--token, --token-file). They live here,
// apart from the commands, so that each command gains them with one line.

// defaultCertName is the client certificate the commands present when
// --cert-name is not given: client.root.crt, as `dynago cert create-client
// root --role admin` writes it (CockroachDB's CLI also defaults to root).
// When that file does not exist the commands go on without a certificate:
// a certs directory may hold only ca.crt, or a node's files.
const defaultCertName = "root"

// clientSec holds the parsed security flags of a client command.
type clientSec struct {
	certsDir, certName, token, tokenFile *string
	envName                              string // DYNAGO_CERT_NAME, to tell a --cert-name flag from it
}

// clientSecFlags registers --certs-dir, --cert-name, --token and
// --token-file on fs, each defaulting to its DYNAGO_* variable.
func clientSecFlags(fs *flag.FlagSet) *clientSec {
	name := envDefault("DYNAGO_CERT_NAME", "")
	if err := checkCertName(name); name != "" && err != nil {
		refuseEnv("DYNAGO_CERT_NAME", name, "a client name as given to dynago cert create-client", err)
	}
	tok := envDefault("DYNAGO_TOKEN", "")
	if err := checkToken(tok); err != nil {
		// Not refuseEnv: the value is a secret and is not echoed.
		envErrs = append(envErrs, usageError{fmt.Sprintf("invalid DYNAGO_TOKEN: %v", err)})
	}
	return &clientSec{
		envName:  name,
		certsDir: fs.String("certs-dir", envDefault("DYNAGO_CERTS_DIR", ""), "directory with ca.crt (trusted for the nodes' certificates) and client.NAME.crt/.key; addresses without a scheme are then dialed over https (env DYNAGO_CERTS_DIR)"),
		certName: fs.String("cert-name", name, "client certificate to present: client.NAME.crt in --certs-dir (default "+defaultCertName+", used when that file exists) (env DYNAGO_CERT_NAME)"),
		token:    fs.String("token", tok, "bearer token sent with every request (see --tokens-file of dynago server) (env DYNAGO_TOKEN)"),
		tokenFile: fs.String("token-file", envDefault("DYNAGO_TOKEN_FILE", ""),
			"file whose first line is the bearer token; keeps it out of the process list (env DYNAGO_TOKEN_FILE)"),
	}
}

// checkCertName applies the rules of dynago cert create-client, so that a
// name cannot point outside the certs directory.
func checkCertName(name string) error {
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return fmt.Errorf("bad client name %q", name)
	}
	return nil
}

// checkToken refuses what cannot travel in an Authorization header.
func checkToken(tok string) error {
	for i := 0; i < len(tok); i++ {
		if tok[i] <= ' ' || tok[i] >= 0x7f {
			return errors.New("a token is printable ASCII without spaces")
		}
	}
	return nil
}

// creds is what the security flags resolved to.
type creds struct {
	tls   *tls.Config // nil: plaintext for addresses without a scheme
	token string

	once sync.Once
	hc   *http.Client // built on first use from tls, shared by concurrent calls
}

// resolve reads the files the flags name. Errors are usage errors (exit
// 2): the command never reached a node.
func (s *clientSec) resolve() (*creds, error) {
	c := &creds{token: *s.token}
	if *s.tokenFile != "" {
		if c.token != "" {
			return nil, fmt.Errorf("%w: give --token or --token-file, not both", errUsage)
		}
		raw, err := os.ReadFile(*s.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("%w: --token-file: %v", errUsage, err)
		}
		first, _, _ := strings.Cut(string(raw), "\n")
		c.token = strings.TrimSpace(first)
		if c.token == "" {
			return nil, fmt.Errorf("%w: --token-file %s: the first line is empty", errUsage, *s.tokenFile)
		}
	}
	if err := checkToken(c.token); err != nil {
		return nil, fmt.Errorf("%w: --token: %v", errUsage, err)
	}
	name, explicit := *s.certName, *s.certName != ""
	if !explicit {
		name = defaultCertName
	} else if err := checkCertName(name); err != nil {
		return nil, fmt.Errorf("%w: --cert-name: %v", errUsage, err)
	}
	if *s.certsDir == "" {
		if explicit && *s.certName != s.envName { // given as a flag, not inherited from the environment
			return nil, fmt.Errorf("%w: --cert-name needs --certs-dir", errUsage)
		}
		return c, nil
	}
	if !explicit {
		if _, err := os.Stat(filepath.Join(*s.certsDir, security.ClientCertFile(name))); errors.Is(err, fs.ErrNotExist) {
			name = "" // only ca.crt: authenticate by token, if at all
		}
	}
	cfg, err := security.ClientConfig(*s.certsDir, name)
	if err != nil {
		return nil, fmt.Errorf("%w: --certs-dir %s: %v", errUsage, *s.certsDir, err)
	}
	c.tls = cfg
	return c, nil
}

// options are the client.New options for c.
func (c *creds) options() []client.Option {
	var o []client.Option
	if c.tls != nil {
		o = append(o, client.WithTLS(c.tls))
	}
	if c.token != "" {
		o = append(o, client.WithToken(c.token))
	}
	return o
}

// url is the URL of path at a node's address: addr as given when it has a
// scheme, else https with certificates and http without.
func (c *creds) url(addr, path string) string {
	if strings.Contains(addr, "://") {
		return strings.TrimRight(addr, "/") + path
	}
	if c.tls != nil {
		return "https://" + addr + path
	}
	return "http://" + addr + path
}

// do sends one request to the node at addr with c's TLS and token. A 401
// or 403 answer becomes an error saying which credentials to give.
func (c *creds) do(ctx context.Context, method, addr, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.url(addr, path), body)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	c.once.Do(func() {
		c.hc = http.DefaultClient
		if c.tls != nil {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.TLSClientConfig = c.tls
			c.hc = &http.Client{Transport: tr}
		}
	})
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		sentinel := client.ErrUnauthorized
		if resp.StatusCode == http.StatusForbidden {
			sentinel = client.ErrForbidden
		}
		return nil, fmt.Errorf("%s %s: %w: %s%s", method, path, sentinel, strings.TrimSpace(string(b)), authHint(resp.StatusCode))
	}
	return resp, nil
}

// authHint tells a CLI user what to do about a 401 or 403.
func authHint(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return " (give --token, --token-file or a client certificate with --certs-dir and --cert-name)"
	case http.StatusForbidden:
		return " (the token's or certificate's role is too weak: reads need read, writes write, admin and fault commands admin)"
	}
	return ""
}

// probeTLS is the TLS config of healthcheck, which asks a node on
// loopback in its own container or host: the node's certificate is
// verified against the CA, but not against the name 127.0.0.1, which node
// certificates made for their public names need not carry. Any other host
// is verified in full.
func (c *creds) probeTLS(addr string) *tls.Config {
	if c.tls == nil {
		return nil
	}
	host, _, _ := net.SplitHostPort(addr)
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return c.tls
	}
	cfg := c.tls.Clone()
	roots := cfg.RootCAs
	// InsecureSkipVerify only turns off the default check, which would
	// compare names; VerifyConnection below still checks the chain.
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("the node presented no certificate")
		}
		inter := x509.NewCertPool()
		for _, ic := range cs.PeerCertificates[1:] {
			inter.AddCert(ic)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
		return err
	}
	return cfg
}
