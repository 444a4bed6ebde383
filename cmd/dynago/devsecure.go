package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/dynago/dynago/devcluster"
	"github.com/dynago/dynago/security"
)

// secureDev prepares `dynago dev --secure`: a CA, a node certificate for
// 127.0.0.1 and localhost, an admin client certificate "root" (the CLI's
// default) and a gossip key, in <data-dir>/certs. Certificates already
// there (a kept data directory) are used again, so that a restarted dev
// cluster keeps trusting its clients. Without --data-dir it makes the
// temporary directory itself, for the certificates to live and die with
// the data; cleanup removes that directory unless keep.
func secureDev(cfg *devcluster.Config) (cleanup func(keep bool), err error) {
	cleanup = func(bool) {}
	if cfg.DataDir == "" {
		dir, err := os.MkdirTemp("", "dynago-dev-")
		if err != nil {
			return nil, err
		}
		cfg.DataDir = dir
		cleanup = func(keep bool) {
			if !keep {
				os.RemoveAll(dir)
			}
		}
	}
	certs := filepath.Join(cfg.DataDir, "certs")
	if _, err := os.Stat(filepath.Join(certs, security.CACertFile)); errors.Is(err, fs.ErrNotExist) {
		// A dev cluster lives for hours, not years.
		const life = 30 * 24 * time.Hour
		err = security.CreateCA(certs, life, false)
		if err == nil {
			err = security.CreateNode(certs, []string{"127.0.0.1", "localhost"}, life)
		}
		if err == nil {
			err = security.CreateClient(certs, defaultCertName, security.RoleAdmin, life)
		}
		if err != nil {
			cleanup(false)
			return nil, fmt.Errorf("dev --secure: creating certificates: %w", err)
		}
	}
	keyFile := filepath.Join(certs, "gossip.key")
	if _, err := os.Stat(keyFile); errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			cleanup(false)
			return nil, err
		}
		if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
			cleanup(false)
			return nil, err
		}
	}
	cfg.CertsDir = certs
	cfg.ExtraArgs = append(cfg.ExtraArgs, "--gossip-key-file", keyFile)
	return cleanup, nil
}

// printSecureTry tells how to reach a --secure dev cluster.
func printSecureTry(w io.Writer, c *devcluster.Cluster) {
	certs := filepath.Join(c.DataDir, "certs")
	first := c.Nodes[0].HTTPAddr
	fmt.Fprintf(w, `
Secure: mutual TLS between nodes, HTTPS, encrypted gossip; requests need a
client certificate or token (docs/SECURITY.md). Certificates: %s

Try:
  export DYNAGO_CERTS_DIR=%s DYNAGO_ADDR=%s
  go run ./cmd/dynago put greeting hello
  go run ./cmd/dynago get greeting
  curl --cacert %s/ca.crt --cert %s/client.root.crt --key %s/client.root.key https://%s/kv/greeting

(no dashboard with --secure: it speaks plain HTTP to the nodes)
`, certs, certs, first, certs, certs, certs, first)
}
