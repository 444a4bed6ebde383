package main

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/dynago/dynago/dashboard"
	"github.com/dynago/dynago/devcluster"
)

// The browser tests and people find the dashboard by this line.
func TestPrintClusterShowsDashboardURL(t *testing.T) {
	c := &devcluster.Cluster{DataDir: "/tmp/x", Nodes: []*devcluster.Node{{ID: "n1", Index: 1, HTTPAddr: "127.0.0.1:9101", RPCAddr: "127.0.0.1:9201"}}}
	var out strings.Builder
	printCluster(&out, c, true, "http://127.0.0.1:9100/")
	if !regexp.MustCompile(`(?m)^dashboard: http://127\.0\.0\.1:9100/$`).MatchString(out.String()) {
		t.Errorf("output lacks the dashboard line:\n%s", out.String())
	}
	out.Reset()
	printCluster(&out, c, true, "")
	if strings.Contains(out.String(), "dashboard:") {
		t.Errorf("dashboard line printed without a dashboard:\n%s", out.String())
	}
}

// With --resp-base-port, each node's RESP address is printed beside it.
func TestPrintClusterShowsRESPAddr(t *testing.T) {
	c := &devcluster.Cluster{DataDir: "/tmp/x", Nodes: []*devcluster.Node{
		{ID: "n1", Index: 1, HTTPAddr: "127.0.0.1:9101", RPCAddr: "127.0.0.1:9201", RESPAddr: "127.0.0.1:6379"},
		{ID: "n2", Index: 2, HTTPAddr: "127.0.0.1:9102", RPCAddr: "127.0.0.1:9202"},
	}}
	var out strings.Builder
	printCluster(&out, c, true, "")
	if !regexp.MustCompile(`(?m)^  n1 .* resp 127\.0\.0\.1:6379$`).MatchString(out.String()) || strings.Count(out.String(), "resp ") != 1 {
		t.Errorf("want n1's RESP address and no other:\n%s", out.String())
	}
}

// The adapter over a real devcluster.Cluster: listing and unknown IDs
// (processes themselves are devcluster's and the e2e tests' business).
func TestDevClusterAdapter(t *testing.T) {
	c := &devcluster.Cluster{Nodes: []*devcluster.Node{{ID: "n1", Index: 1, HTTPAddr: "127.0.0.1:9101", RPCAddr: "127.0.0.1:9201", GossipAddr: "127.0.0.1:9301"}}}
	ctl := devController(c)
	got := ctl.Nodes()
	if len(got) != 1 || got[0] != (dashboard.NodeInfo{ID: "n1", Index: 1, HTTPAddr: "127.0.0.1:9101", RPCAddr: "127.0.0.1:9201", GossipAddr: "127.0.0.1:9301"}) {
		t.Errorf("Nodes() = %+v", got)
	}
	if err := ctl.Kill(context.Background(), "n4"); !errors.Is(err, dashboard.ErrUnknownNode) {
		t.Errorf("Kill(n4) = %v, want dashboard.ErrUnknownNode", err)
	}
	if err := ctl.Kill(context.Background(), "n1"); err != nil {
		t.Errorf("Kill of a node that is not running = %v, want nil", err)
	}
}

// TestDevRefusesBadFlagsBeforeStarting: flags Start would refuse (ports
// that overlap, too many nodes) are a usage error (exit 2), reported before
// anything is announced or started.
func TestDevRefusesBadFlagsBeforeStarting(t *testing.T) {
	for _, args := range [][]string{
		{"dev", "--nodes", "3", "--http-base-port", "27101", "--resp-base-port", "27301", "--dashboard-addr", ""},
		{"dev", "--nodes", "65", "--dashboard-addr", ""},
	} {
		out, err := run(t, "", args...)
		if exitCode(err) != 2 {
			t.Errorf("dynago %v: %v (exit %d), want a usage error", args, err, exitCode(err))
		}
		if strings.Contains(out, "starting") {
			t.Errorf("dynago %v announced a start before refusing: %q", args, out)
		}
	}
}
