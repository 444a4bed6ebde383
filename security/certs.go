// Package security holds dynago's certificate authority and TLS plumbing:
// the files that `dynago cert` writes and that `dynago server --certs-dir`
// reads. The layout follows CockroachDB's `cockroach cert`: one directory
// with ca.crt (and, on the machine that signs, ca.key), node.crt/node.key
// for a server, and client.<name>.crt/.key for a client.
//
// Only the standard library is used: ECDSA P-256 keys and crypto/x509.
package security

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File names inside a certs directory.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
	NodeCert   = "node.crt"
	NodeKey    = "node.key"
)

// Roles a client certificate (or a bearer token) can carry. Each role
// includes the ones before it.
const (
	RoleRead  = "read"
	RoleWrite = "write"
	RoleAdmin = "admin"
)

// ValidRole reports whether r is one of the three roles.
func ValidRole(r string) bool { return r == RoleRead || r == RoleWrite || r == RoleAdmin }

// roleOUPrefix marks the organizational unit that carries a client's role,
// so that an OU set for other reasons is never mistaken for one.
const roleOUPrefix = "dynago-role:"

// ClientCertFile and ClientKeyFile name a client's files.
func ClientCertFile(name string) string { return "client." + name + ".crt" }
func ClientKeyFile(name string) string  { return "client." + name + ".key" }

// CreateCA writes a new CA key and certificate into dir. It refuses to
// overwrite an existing CA unless overwrite is set: replacing a CA silently
// would orphan every certificate signed by the old one.
func CreateCA(dir string, lifetime time.Duration, overwrite bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if !overwrite {
		for _, f := range []string{CACertFile, CAKeyFile} {
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				return fmt.Errorf("%s already exists in %s (use --overwrite to replace the CA)", f, dir)
			}
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"dynago"}, CommonName: "dynago CA"},
		NotBefore:             now.Add(-time.Hour), // tolerate clock skew between machines
		NotAfter:              now.Add(lifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, CAKeyFile), key); err != nil {
		return err
	}
	return writeCert(filepath.Join(dir, CACertFile), der)
}

// CreateNode writes node.crt/node.key signed by the CA in dir. hosts are the
// names and IP addresses peers and clients dial; they become the SANs. The
// certificate serves both as a server and as a client, because nodes dial
// each other with it (mutual TLS on the peer port).
func CreateNode(dir string, hosts []string, lifetime time.Duration) error {
	if len(hosts) == 0 {
		return errors.New("a node certificate needs at least one host name or IP address")
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{Organization: []string{"dynago"}, CommonName: "node"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return sign(dir, tmpl, lifetime, NodeCert, NodeKey)
}

// CreateClient writes client.<name>.crt/.key signed by the CA in dir,
// carrying role in an organizational unit ("dynago-role:<role>").
func CreateClient(dir, name, role string, lifetime time.Duration) error {
	if name == "" || strings.ContainsAny(name, "/\\") || strings.HasPrefix(name, ".") {
		return fmt.Errorf("bad client name %q", name)
	}
	if !ValidRole(role) {
		return fmt.Errorf("bad role %q (want read, write or admin)", role)
	}
	tmpl := &x509.Certificate{
		Subject: pkix.Name{
			Organization:       []string{"dynago"},
			OrganizationalUnit: []string{roleOUPrefix + role},
			CommonName:         name,
		},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return sign(dir, tmpl, lifetime, ClientCertFile(name), ClientKeyFile(name))
}

// RoleOf returns the role a verified client certificate carries, or "".
// Node certificates carry admin: a peer can already do anything through the
// peer port.
func RoleOf(c *x509.Certificate) string {
	for _, ou := range c.Subject.OrganizationalUnit {
		if r, ok := strings.CutPrefix(ou, roleOUPrefix); ok && ValidRole(r) {
			return r
		}
	}
	if IsNodeCert(c) {
		return RoleAdmin
	}
	return ""
}

// IsNodeCert reports whether c is a node certificate as CreateNode makes
// it: common name "node" and usable to serve. A client certificate never
// is one (CreateClient gives it client use only, whatever its name).
func IsNodeCert(c *x509.Certificate) bool {
	if c.Subject.CommonName != "node" {
		return false
	}
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageServerAuth {
			return true
		}
	}
	return false
}

func sign(dir string, tmpl *x509.Certificate, lifetime time.Duration, certName, keyName string) error {
	caCert, caKey, err := LoadCA(dir)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = now.Add(-time.Hour)
	tmpl.NotAfter = now.Add(lifetime)
	if tmpl.NotAfter.After(caCert.NotAfter) {
		// A certificate outliving its CA would fail verification anyway.
		tmpl.NotAfter = caCert.NotAfter
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, keyName), key); err != nil {
		return err
	}
	return writeCert(filepath.Join(dir, certName), der)
}

// LoadCA reads the CA certificate and key from dir.
func LoadCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cert, err := LoadCertFile(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, nil, err
	}
	raw, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, nil, err
	}
	b, _ := pem.Decode(raw)
	if b == nil || b.Type != "EC PRIVATE KEY" {
		return nil, nil, fmt.Errorf("%s: not a PEM EC private key", CAKeyFile)
	}
	key, err := x509.ParseECPrivateKey(b.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", CAKeyFile, err)
	}
	return cert, key, nil
}

// LoadCertFile reads the first PEM certificate of a file.
func LoadCertFile(path string) (*x509.Certificate, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(raw)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: not a PEM certificate", path)
	}
	return x509.ParseCertificate(b.Bytes)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
}

func writeCert(path string, der []byte) error {
	return writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeFile replaces path atomically (temp file + rename), so that a server
// reloading on SIGHUP never reads half a file, and sets mode explicitly
// (the umask must not loosen a key's 0600).
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
