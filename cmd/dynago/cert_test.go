package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dynago/dynago/security"
)

func TestCertCommands(t *testing.T) {
	dir := t.TempDir()
	if _, err := run(t, "", "cert", "create-ca", "--certs-dir", dir); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "", "cert", "create-ca", "--certs-dir", dir); err == nil {
		t.Fatal("create-ca overwrote an existing CA")
	}
	if _, err := run(t, "", "cert", "create-node", "127.0.0.1", "--certs-dir", dir, "localhost"); err != nil {
		t.Fatal(err)
	}
	node, err := security.LoadCertFile(filepath.Join(dir, security.NodeCert))
	if err != nil {
		t.Fatal(err)
	}
	if len(node.IPAddresses) != 1 || len(node.DNSNames) != 1 || node.DNSNames[0] != "localhost" {
		t.Errorf("node SANs: %v %v", node.IPAddresses, node.DNSNames)
	}
	if _, err := run(t, "", "cert", "create-client", "ops", "--role", "admin", "--certs-dir", dir); err != nil {
		t.Fatal(err)
	}
	cl, err := security.LoadCertFile(filepath.Join(dir, "client.ops.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if security.RoleOf(cl) != security.RoleAdmin {
		t.Errorf("role %q", security.RoleOf(cl))
	}
	st, err := os.Stat(filepath.Join(dir, "client.ops.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("client key: %v %v", st, err)
	}
	for _, bad := range [][]string{
		{"create-client", "x", "--role", "root", "--certs-dir", dir},
		{"create-node", "--certs-dir", dir},
		{"create-ca"},
		{"bogus"},
	} {
		if _, err := run(t, "", append([]string{"cert"}, bad...)...); !errors.Is(err, errUsage) {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
}
