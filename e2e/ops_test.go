package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/dynago/dynago/devcluster"
)

type readyAnswer struct {
	status int
	Ready  bool   `json:"ready"`
	Reason string `json:"reason"`
}

// readyz asks a node's readiness probe; ok is false when the node did not
// answer (it may be exiting).
func readyz(n *devcluster.Node) (readyAnswer, bool) {
	var a readyAnswer
	cl := &http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get(base(n) + "/readyz")
	if err != nil {
		return a, false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || json.Unmarshal(b, &a) != nil {
		return a, false
	}
	a.status = resp.StatusCode
	return a, true
}

// TestDrainOnSIGTERM: a node stopped by SIGTERM first says it is draining
// on /readyz (so that a load balancer stops sending it requests), keeps
// serving for the drain timeout, and only then exits. /healthz, the
// liveness probe, stays 200 throughout.
func TestDrainOnSIGTERM(t *testing.T) {
	const drain = 3 * time.Second
	c := startCluster(t, devcluster.Config{Nodes: 3, DrainTimeout: drain})
	for _, n := range c.Nodes {
		eventually(t, 10*time.Second, n.ID+" ready", func() bool {
			a, ok := readyz(n)
			return ok && a.status == 200 && a.Ready && a.Reason == ""
		})
	}
	n1 := c.Nodes[0]
	stopped := make(chan error, 1)
	sent := time.Now()
	go func() { stopped <- c.StopNode(n1) }()

	var draining readyAnswer
	eventually(t, drain, "/readyz says draining", func() bool {
		a, ok := readyz(n1)
		draining = a
		return ok && a.status == 503
	})
	if draining.Ready || draining.Reason != "draining" {
		t.Fatalf("while draining /readyz answered %+v, want ready false, reason draining", draining)
	}
	if h := call(t, "GET", base(n1)+"/healthz", nil, nil); h.Status != 200 {
		t.Fatalf("/healthz while draining: %d", h.Status)
	}
	// Still serving: a write through the draining node is acknowledged.
	if r := call(t, "PUT", base(n1)+"/kv/during-drain", []byte("v"), nil); r.Status != 204 {
		t.Fatalf("put through the draining node: %d %s", r.Status, r.Body)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the node did not exit after draining")
	}
	if took := time.Since(sent); took < drain-500*time.Millisecond {
		t.Fatalf("exited %v after SIGTERM, before the %v drain timeout", took, drain)
	}
	if g := call(t, "GET", base(c.Nodes[1])+"/kv/during-drain", nil, nil); g.Status != 200 || string(g.Body) != "v" {
		t.Fatalf("the write taken while draining: %d %q", g.Status, g.Body)
	}
}
