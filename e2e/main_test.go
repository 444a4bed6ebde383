// Package e2e tests dynago as users run it: real `dynago server` processes
// started by devcluster on 127.0.0.1, spoken to over HTTP, killed with
// SIGKILL and restarted on their data.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/dynago/dynago/devcluster"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dynago-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "dynago")
	build := exec.Command("go", "build", "-o", binary, "../cmd/dynago")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building dynago:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freeBase finds a base port for n nodes (see devcluster.FreePortBase).
func freeBase(t *testing.T, n int) int {
	t.Helper()
	base, err := devcluster.FreePortBase(n)
	if err != nil {
		t.Fatal(err)
	}
	return base
}

// startCluster runs a local cluster for the test and stops it afterwards.
func startCluster(t *testing.T, cfg devcluster.Config) *devcluster.Cluster {
	t.Helper()
	cfg.Binary = binary
	if cfg.HTTPBasePort == 0 {
		cfg.HTTPBasePort = freeBase(t, max(cfg.Nodes, 5))
	}
	cfg.DataDir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := devcluster.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			for _, n := range c.Nodes {
				if b, err := os.ReadFile(n.DataDir + ".log"); err == nil {
					t.Logf("--- %s log (tail) ---\n%s", n.ID, tail(b, 3000))
				}
			}
		}
	})
	return c
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
