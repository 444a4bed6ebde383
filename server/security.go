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
	"github.com/dynago/dynago/security"
	"github.com/dynago/dynago/transport"
)

// Security configures TLS, gossip encryption and client authentication.
// The zero value runs plaintext and open, which Start allows only on
// loopback unless Insecure is set (CockroachDB's --insecure).
type Security struct {
	// CertsDir holds ca.crt, node.crt and node.key (dynago cert): the peer
	// port then runs mutual TLS and HTTP runs TLS.
	CertsDir string
	// Insecure allows plaintext listeners beyond loopback.
	Insecure bool
	// GossipKeyFile holds base64 gossip keys, one a line, primary first.
	GossipKeyFile string
	// TokensFile holds "token role" lines; with it (or with certificates)
	// every HTTP request must carry a bearer token or a client
	// certificate whose role allows it.
	TokensFile string
}

type secState struct {
	cfg    Security
	certs  *security.Certs
	tokens atomic.Pointer[map[string]string]
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
	for _, l := range []struct{ flag, addr string }{{"--http-addr", c.HTTPAddr}, {"--rpc-addr", c.RPCAddr}, {"--gossip-addr", c.GossipAddr}} {
		if !isLoopbackListen(l.addr) {
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
			c.Logger.Warn("running insecure (--insecure): plaintext traffic and no authentication")
		} else {
			c.Logger.Info("running insecure on loopback only: plaintext traffic and no authentication; give --certs-dir to listen beyond loopback")
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
	return nil
}

func (st *secState) applyTransport(tc *transport.Config) {
	if st.certs != nil {
		tc.ServerTLS = st.certs.PeerServerConfig()
		tc.ClientTLS = st.certs.PeerClientConfig
	}
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
		if m := st.tokens.Load(); m != nil {
			// Compare every token in constant time, so timing does not
			// reveal a prefix.
			role := ""
			for t, rl := range *m {
				if subtle.ConstantTimeCompare([]byte(t), []byte(tok)) == 1 {
					role = rl
				}
			}
			return role, role != ""
		}
		return "", false
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		if role := security.RoleOf(r.TLS.VerifiedChains[0][0]); role != "" {
			return role, true
		}
	}
	return "", false
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
