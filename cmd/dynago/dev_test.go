package main

import (
	"regexp"
	"strings"
	"testing"

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
