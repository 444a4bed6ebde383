package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dynago/dynago/devcluster"
	"github.com/dynago/dynago/internal/testutil"
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
		testutil.Eventually(t, 10*time.Second, n.ID+" ready", func() bool {
			a, ok := readyz(n)
			return ok && a.status == 200 && a.Ready && a.Reason == ""
		})
	}
	n1 := c.Nodes[0]
	stopped := make(chan error, 1)
	sent := time.Now()
	go func() { stopped <- c.StopNode(n1) }()

	var draining readyAnswer
	testutil.Eventually(t, drain, "/readyz says draining", func() bool {
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

// TestPlanRefusesANodeWhoseAdvertisedAddressDoesNotAnswer is the Docker
// wedge of issue #8 on real processes: a node that gossips fine but
// advertises an RPC address where nothing answers. The operator's plan and
// commit refuse it, naming the node and the address, and nothing changes.
func TestPlanRefusesANodeWhoseAdvertisedAddressDoesNotAnswer(t *testing.T) {
	c := startCluster(t, devcluster.Config{Nodes: 3})
	httpAddr, deadRPC := testutil.FreeAddr(t), testutil.FreeAddr(t)
	cmd := exec.Command(binary, "server", "--id", "n4", "--data-dir", t.TempDir(),
		"--http-addr", httpAddr, "--rpc-addr", testutil.FreeAddr(t), "--gossip-addr", testutil.FreeAddr(t),
		"--advertise-rpc", deadRPC, "--join", c.Nodes[0].GossipAddr, "--cluster-name", c.ClusterName(), "--preset", "lab", "--drain-timeout", "0s")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("--- n4 log ---\n%s", tail([]byte(logs.String()), 3000))
		}
	})
	n4 := &devcluster.Node{ID: "n4", HTTPAddr: httpAddr}
	testutil.Eventually(t, 15*time.Second, "n1 sees n4 alive", func() bool { return statusOf(t, c.Nodes[0], "n4") == "alive" })
	if a, ok := readyz(n4); !ok || a.status != 503 || a.Reason != "not a member of the ring" {
		t.Fatalf("/readyz of a node not committed: %+v (answered %v)", a, ok)
	}
	before := clusterOf(t, c.Nodes[0]).RingVersion
	for _, sub := range []string{"plan", "commit"} {
		out, err := exec.Command(binary, "admin", sub, "--addr", c.Nodes[0].HTTPAddr).CombinedOutput()
		if err == nil {
			t.Fatalf("admin %s accepted n4:\n%s", sub, out)
		}
		for _, want := range []string{"member_unreachable", "n4", deadRPC, "does not answer"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("admin %s: the refusal does not name %q:\n%s", sub, want, out)
			}
		}
	}
	cb := clusterOf(t, c.Nodes[0])
	if cb.RingVersion != before || (cb.Handoff != nil && cb.Handoff.InProgress) {
		t.Fatalf("a refused commit changed the cluster: ring version %d -> %d, handoff %+v", before, cb.RingVersion, cb.Handoff)
	}
}

// TestAbortStalledJoin: a handoff to a node that stops answering stalls
// (status shows the time without progress), and `dynago admin abort`,
// through a node that is not the claimant, rolls it back with every write
// acknowledged before, during and after the partial handoff intact. The
// newcomer, once it runs again, hands back and drops what it received.
func TestAbortStalledJoin(t *testing.T) {
	c := startCluster(t, devcluster.Config{Nodes: 3, HTTPBasePort: freeBase(t, 4)})
	founders := slices.Clone(c.Nodes)
	var (
		mu    sync.Mutex
		acked []string
		stop  = make(chan struct{})
		done  = make(chan struct{})
	)
	go func() { // writes through the founding nodes only: n4 will be stopped
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := fmt.Sprintf("abort-%05d", i)
			resp, err := httpClient.Post(base(founders[i%3])+"/kv/"+k, "application/octet-stream", strings.NewReader(k))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 204 {
					mu.Lock()
					acked = append(acked, k)
					mu.Unlock()
				}
			}
		}
	}()
	stopWriter := sync.OnceFunc(func() { close(stop); <-done })
	t.Cleanup(stopWriter)
	time.Sleep(500 * time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n4, err := c.AddNode(ctx)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 15*time.Second, "n1 sees n4 alive", func() bool { return statusOf(t, c.Nodes[0], n4.ID) == "alive" })
	before := clusterOf(t, c.Nodes[0])
	if out, err := exec.Command(binary, "admin", "commit", "--addr", c.Nodes[0].HTTPAddr).CombinedOutput(); err != nil || !strings.Contains(string(out), "committed") {
		t.Fatalf("admin commit: %v\n%s", err, out)
	}
	// The newcomer freezes mid-handoff, once it received something.
	deadline := time.Now().Add(10 * time.Second)
	for h := clusterOf(t, c.Nodes[0]).Handoff; h != nil && h.Done == 0 && time.Now().Before(deadline); h = clusterOf(t, c.Nodes[0]).Handoff {
		time.Sleep(10 * time.Millisecond)
	}
	if err := syscall.Kill(n4.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(n4.PID(), syscall.SIGCONT) })
	time.Sleep(3 * time.Second)
	stuck := clusterOf(t, c.Nodes[0])
	if stuck.Handoff == nil || !stuck.Handoff.InProgress || stuck.Handoff.Done == stuck.Handoff.Total {
		t.Fatalf("the handoff should be stuck: %+v", stuck.Handoff)
	}
	time.Sleep(2 * time.Second)
	still := clusterOf(t, c.Nodes[0])
	if still.Handoff == nil || still.Handoff.Done != stuck.Handoff.Done || still.Handoff.NoProgressMS < 2000 {
		t.Fatalf("handoff %+v then %+v: want no progress for 2s or more, and said so", stuck.Handoff, still.Handoff)
	}

	// Abort through n2; the change belongs to n1, which takes it.
	out, err := exec.Command(binary, "admin", "abort", "--addr", c.Nodes[1].HTTPAddr).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "aborted the change committed by n1") {
		t.Fatalf("admin abort: %v\n%s", err, out)
	}
	for _, n := range founders {
		testutil.Eventually(t, 10*time.Second, n.ID+" sees the change aborted", func() bool {
			cb := clusterOf(t, n)
			for _, m := range cb.Nodes {
				if m.ID == n4.ID && m.Partitions != 0 {
					return false
				}
			}
			return cb.RingVersion > before.RingVersion && (cb.Handoff == nil || !cb.Handoff.InProgress)
		})
	}
	time.Sleep(500 * time.Millisecond) // writes in flight across the abort
	stopWriter()
	if err := syscall.Kill(n4.PID(), syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	keys := slices.Clone(acked)
	mu.Unlock()
	if len(keys) == 0 {
		t.Fatal("no write was acknowledged")
	}
	held := 0
	for _, k := range keys {
		if call(t, "GET", base(n4)+"/admin/local/"+k, nil, nil).Status == 200 {
			held++
		}
	}
	t.Logf("n4 holds %d of the %d acknowledged keys as it resumes (it may already be handing them back)", held, len(keys))
	for _, k := range keys {
		if g := call(t, "GET", base(c.Nodes[0])+"/kv/"+k, nil, nil); g.Status != 200 || string(g.Body) != k {
			t.Fatalf("acknowledged %s after the abort: %d %q", k, g.Status, g.Body)
		}
	}
	testutil.Eventually(t, 60*time.Second, "n4 handed back and dropped what it received", func() bool {
		for _, k := range keys {
			if call(t, "GET", base(n4)+"/admin/local/"+k, nil, nil).Status != 404 {
				return false
			}
		}
		return true
	})
	t.Logf("%d writes acknowledged; stuck at %d/%d transfers", len(keys), stuck.Handoff.Done, stuck.Handoff.Total)
}
