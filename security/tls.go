package security

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
)

// Certs is a certs directory loaded for a node: the CA pool and the node's
// key pair, swapped atomically by Reload so that a SIGHUP after rotating
// the files takes effect for new connections without a restart.
type Certs struct {
	dir   string
	state atomic.Pointer[certState]
}

type certState struct {
	pool *x509.CertPool
	cert *tls.Certificate
}

// LoadNodeCerts loads ca.crt, node.crt and node.key from dir.
func LoadNodeCerts(dir string) (*Certs, error) {
	c := &Certs{dir: dir}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload re-reads the files. On error the previous certificates stay in use.
func (c *Certs) Reload() error {
	pool, err := loadPool(filepath.Join(c.dir, CACertFile))
	if err != nil {
		return err
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(c.dir, NodeCert), filepath.Join(c.dir, NodeKey))
	if err != nil {
		return fmt.Errorf("node certificate: %w", err)
	}
	c.state.Store(&certState{pool: pool, cert: &pair})
	return nil
}

// Dir is the certs directory.
func (c *Certs) Dir() string { return c.dir }

// PeerServerConfig is the TLS config of the gRPC peer port: it requires a
// node certificate signed by the CA (mutual TLS between nodes). A client
// certificate of the same CA is refused: whoever holds one, even with role
// read, must not be able to send replica messages.
func (c *Certs) PeerServerConfig() *tls.Config {
	return c.serverConfig(tls.RequireAndVerifyClientCert)
}

// errNotNode refuses a verified certificate that is not a node's.
var errNotNode = errors.New("security: the peer port accepts node certificates only")

// HTTPServerConfig is the TLS config of the HTTP port: client certificates
// are optional (a client may authenticate by token instead) but, when
// presented, must be signed by the CA.
func (c *Certs) HTTPServerConfig() *tls.Config {
	return c.serverConfig(tls.VerifyClientCertIfGiven)
}

func (c *Certs) serverConfig(auth tls.ClientAuthType) *tls.Config {
	// GetConfigForClient reads the current state on every handshake, so a
	// Reload swaps both the served certificate and the trusted CA.
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			s := c.state.Load()
			cfg := &tls.Config{
				MinVersion:   tls.VersionTLS12,
				Certificates: []tls.Certificate{*s.cert},
				ClientCAs:    s.pool,
				ClientAuth:   auth,
				// gRPC's clients require ALPN h2; net/http serves both.
				NextProtos: []string{"h2", "http/1.1"},
			}
			if auth == tls.RequireAndVerifyClientCert {
				// Runs after the chain is verified against the CA.
				cfg.VerifyPeerCertificate = func(_ [][]byte, chains [][]*x509.Certificate) error {
					if len(chains) == 0 || !IsNodeCert(chains[0][0]) {
						return errNotNode
					}
					return nil
				}
			}
			return cfg, nil
		},
	}
}

// PeerClientConfig is the TLS config a node dials peers with: it presents
// the node certificate and trusts only the CA. Call it for each new
// connection, so that connections made after a Reload use the new files.
func (c *Certs) PeerClientConfig() *tls.Config {
	st := c.state.Load()
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		RootCAs:      st.pool,
		Certificates: []tls.Certificate{*st.cert},
	}
}

// ClientConfig is the TLS config of a client (CLI or Go client) using the
// certs directory dir: it trusts ca.crt and, if client.<name>.crt exists,
// presents it. name may be empty for a client that authenticates by token.
func ClientConfig(dir, name string) (*tls.Config, error) {
	pool, err := loadPool(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	if name != "" {
		pair, err := tls.LoadX509KeyPair(filepath.Join(dir, ClientCertFile(name)), filepath.Join(dir, ClientKeyFile(name)))
		if err != nil {
			return nil, fmt.Errorf("client certificate %q: %w", name, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

func loadPool(path string) (*x509.CertPool, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw) {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return pool, nil
}
