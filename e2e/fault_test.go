package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dynago/dynago/devcluster"
	"github.com/dynago/dynago/internal/testutil"
)

func TestFaultLab(t *testing.T) {
	const delay = 25 * time.Millisecond
	c := startCluster(t, devcluster.Config{Nodes: 5, ExtraArgs: []string{"--fault-delay", "25ms"}})
	var pl placement
	call(t, "GET", base(c.Nodes[0])+"/kv/lab/placement", nil, nil).json(t, &pl)
	coordinator := nodeByID(t, c, pl.PreferenceList[0])

	// A write needs the replica put and its ack: two delayed legs.
	start := time.Now()
	if r := call(t, "PUT", base(coordinator)+"/kv/lab?w=2", []byte("v"), nil); r.Status != 204 {
		t.Fatalf("PUT: %d %s", r.Status, r.Body)
	}
	if took := time.Since(start); took < 2*delay {
		t.Fatalf("PUT with W=2 took %v, less than two injected %v legs", took, delay)
	}
	start = time.Now()
	if r := call(t, "GET", base(coordinator)+"/kv/lab?r=2", nil, nil); r.Status != 200 {
		t.Fatalf("GET: %d", r.Status)
	}
	if took := time.Since(start); took < 2*delay {
		t.Fatalf("GET with R=2 took %v, less than two injected %v legs", took, delay)
	}

	// Partition n1 from everyone through the CLI: gossip reports it dead
	// on the other side; healing brings it back.
	out, err := exec.Command(binary, "fault", "partition", "n1", "--from", "n2,n3,n4,n5", "--addr", c.Nodes[1].HTTPAddr).CombinedOutput()
	if err != nil {
		t.Fatalf("fault partition: %v\n%s", err, out)
	}
	testutil.Eventually(t, 20*time.Second, "n2 sees the cut-off n1 dead", func() bool { return statusOf(t, c.Nodes[1], "n1") == "dead" })
	out, err = exec.Command(binary, "fault", "heal", "--addr", c.Nodes[1].HTTPAddr).CombinedOutput()
	if err != nil {
		t.Fatalf("fault heal: %v\n%s", err, out)
	}
	testutil.Eventually(t, 20*time.Second, "n2 sees n1 alive after the heal", func() bool { return statusOf(t, c.Nodes[1], "n1") == "alive" })
	show, err := exec.Command(binary, "fault", "show", "--all", "--addr", c.Nodes[0].HTTPAddr).CombinedOutput()
	if err != nil || strings.Contains(string(show), `"cut"`) {
		t.Fatalf("rules after heal: %v\n%s", err, show)
	}
	if r := call(t, "PUT", base(c.Nodes[0])+"/admin/faults", []byte(`{"loss":{"n2":1.5}}`), nil); r.Status != 400 {
		t.Fatalf("invalid rules accepted: %d %s", r.Status, r.Body)
	}
}
