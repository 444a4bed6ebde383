package server

import (
	"crypto/subtle"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"

	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/membership"
	"github.com/dynago/dynago/resp"
	"github.com/dynago/dynago/security"
	"github.com/dynago/dynago/transport"
)

// Security configures TLS, gossip encryption and client authentication.
// The zero value runs plaintext and open, which Start allows only on
// loopback unless Insecure is set (CockroachDB's --insecure).
type Security struct {
	// CertsDir holds ca.crt, node.crt and node.key (dynago cert): the peer
	// port then runs mutual TLS, and HTTP and RESP run TLS.
	CertsDir string
	// Insecure allows plaintext listeners beyond loopback.
	Insecure bool
	// GossipKeyFile holds base64 gossip keys, one a line, primary first.
	GossipKeyFile string
	// TokensFile holds "token role" lines; with it (or with certificates)
	// every HTTP request must carry a bearer token or a client
	// certificate whose role allows it, and a RESP connection must AUTH
	// with a token (or present such a certificate).
	TokensFile string
}

type secState struct {
	cfg    Security
	certs  *security.Certs
	tokens atomic.Pointer[map[string]string]
	// tokensGen counts the loads of the tokens file: RESP connections
	// check their AUTH token again when it moves (resp.Config.AuthGeneration).
	tokensGen atomic.Uint64
}

// isLoopbackListen reports whether addr binds only loopback.
func isLoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkListeners refuses a plaintext listener beyond loopback without
// Insecure: an operator must choose plaintext, never fall into it.
func (c *Config) checkListeners() error {
	if c.Security.CertsDir != "" || c.Security.Insecure {
		return nil
	}
	for _, l := range []struct{ flag, addr string }{{"--http-addr", c.HTTPAddr}, {"--rpc-addr", c.RPCAddr}, {"--gossip-addr", c.GossipAddr}, {"--resp-addr", c.RESPAddr}} {
		if l.addr != "" && !isLoopbackListen(l.addr) {
			return fmt.Errorf("%w: %s %s is beyond loopback and no --certs-dir is given: give certificates (dynago cert) or --insecure to run plaintext", ErrConfig, l.flag, l.addr)
		}
	}
	return nil
}

func loadSecurity(c Config) (*secState, error) {
	if err := c.checkListeners(); err != nil {
		return nil, err
	}
	st := &secState{cfg: c.Security}
	if c.Security.CertsDir == "" && c.Logger != nil {
		if c.Security.Insecure {
			c.Logger.Warn("running insecure (--insecure): plaintext traffic and no authentication", "node", string(c.ID))
		} else {
			c.Logger.Info("running insecure on loopback only: plaintext traffic and no authentication; give --certs-dir to listen beyond loopback", "node", string(c.ID))
		}
	}
	if c.Security.CertsDir != "" {
		certs, err := security.LoadNodeCerts(c.Security.CertsDir)
		if err != nil {
			return nil, fmt.Errorf("%w: --certs-dir: %v", ErrConfig, err)
		}
		st.certs = certs
	}
	if c.Security.TokensFile != "" {
		if err := st.loadTokens(); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func (st *secState) gossipKeys() ([][]byte, error) {
	if st.cfg.GossipKeyFile == "" {
		return nil, nil
	}
	raw, err := os.ReadFile(st.cfg.GossipKeyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: --gossip-key-file: %v", ErrConfig, err)
	}
	keys, err := membership.ParseGossipKeys(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: --gossip-key-file: %v", ErrConfig, err)
	}
	return keys, nil
}

// ParseTokens reads a tokens file: "token role" per line, # comments.
func ParseTokens(data []byte) (map[string]string, error) {
	out := map[string]string{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 || !security.ValidRole(f[1]) {
			return nil, fmt.Errorf("tokens file line %d: want \"TOKEN read|write|admin\"", i+1)
		}
		if len(f[0]) < 16 {
			return nil, fmt.Errorf("tokens file line %d: token shorter than 16 characters", i+1)
		}
		out[f[0]] = f[1]
	}
	return out, nil
}

func (st *secState) loadTokens() error {
	raw, err := os.ReadFile(st.cfg.TokensFile)
	if err != nil {
		return fmt.Errorf("%w: --tokens-file: %v", ErrConfig, err)
	}
	toks, err := ParseTokens(raw)
	if err != nil {
		return fmt.Errorf("%w: --tokens-file: %v", ErrConfig, err)
	}
	st.tokens.Store(&toks)
	// After the store: a connection that sees the new generation checks
	// its token against the new map.
	st.tokensGen.Add(1)
	return nil
}

func (st *secState) applyTransport(tc *transport.Config) {
	if st.certs != nil {
		tc.ServerTLS = st.certs.PeerServerConfig()
		tc.ClientTLS = st.certs.PeerClientConfig
	}
}

// peerTLS is how this node dials other nodes' HTTPS APIs: nil without
// certificates (plain HTTP).
func (st *secState) peerTLS() func() *tls.Config {
	if st.certs == nil {
		return nil
	}
	return st.certs.PeerClientConfig
}

func (st *secState) wrapListener(ln net.Listener) net.Listener {
	if st.certs == nil {
		return ln
	}
	return tls.NewListener(ln, st.certs.HTTPServerConfig())
}

// authEnabled: with tokens or certificates, HTTP requires credentials.
func (st *secState) authEnabled() bool { return st.certs != nil || st.cfg.TokensFile != "" }

func (st *secState) wrapHandler(h http.Handler) http.Handler {
	if !st.authEnabled() {
		return h
	}
	return httpapi.WithAuth(h, st.identify)
}

// identify finds the caller's role: a bearer token, else a verified
// client certificate.
func (st *secState) identify(r *http.Request) (string, bool) {
	if a := r.Header.Get("Authorization"); a != "" {
		tok, ok := strings.CutPrefix(a, "Bearer ")
		if !ok {
			return "", false
		}
		return st.tokenRole(tok)
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		if role := security.RoleOf(r.TLS.VerifiedChains[0][0]); role != "" {
			return role, true
		}
	}
	return "", false
}

// tokenRole returns the role of a token of the tokens file (HTTP's bearer
// token, RESP's AUTH).
func (st *secState) tokenRole(tok string) (string, bool) {
	m := st.tokens.Load()
	if m == nil {
		return "", false
	}
	// Compare every token in constant time, so timing does not reveal a
	// prefix.
	role := ""
	for t, rl := range *m {
		if subtle.ConstantTimeCompare([]byte(t), []byte(tok)) == 1 {
			role = rl
		}
	}
	return role, role != ""
}

// respConfig sets what RESP needs of security: the same roles from the
// same tokens and client certificates as HTTP, required exactly when HTTP
// requires them. TLS is the listener's (wrapListener).
func (st *secState) respConfig(rc *resp.Config) {
	rc.RequireAuth = st.authEnabled()
	rc.Authenticate = st.tokenRole
	rc.AuthGeneration = st.tokensGen.Load
	rc.CertRole = security.RoleOf
}

// Reload re-reads certificates, the tokens file and the gossip keys (on
// SIGHUP). What fails to load keeps its previous value; the first error is
// returned.
func (s *Server) Reload() error {
	st := s.sec
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	if st.certs != nil {
		keep(st.certs.Reload())
	}
	if st.cfg.TokensFile != "" {
		keep(st.loadTokens())
	}
	if st.cfg.GossipKeyFile != "" {
		keys, err := st.gossipKeys()
		keep(err)
		if err == nil {
			keep(s.members.SetGossipKeys(keys))
		}
	}
	return first
}
