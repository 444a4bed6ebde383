package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynago/dynago/devcluster"
	"github.com/dynago/dynago/internal/testutil"
)

// A node backed up, then crashed and wiped after more writes, comes back
// from its backup with a new epoch, and anti-entropy brings it what was
// written after the backup: every key reads back with its latest value,
// through the cluster and from the restored node's own copy.
func TestBackupRestoreWipedNode(t *testing.T) {
	c := startCluster(t, devcluster.Config{Nodes: 4})
	const before, after, overwritten = 300, 150, 100
	latest := map[string]string{}
	put := func(i int, k, v string) {
		h := map[string]string{}
		if g := call(t, "GET", base(c.Nodes[i%4])+"/kv/"+k, nil, nil); g.Status == 200 {
			h["X-Dynago-Context"] = g.context() // an overwrite, not a sibling
		}
		if r := call(t, "PUT", base(c.Nodes[i%4])+"/kv/"+k, []byte(v), h); r.Status != 204 {
			t.Fatalf("PUT %s: %d %q", k, r.Status, r.Body)
		}
		latest[k] = v
	}
	for i := range before {
		k := fmt.Sprintf("b-%03d", i)
		put(i, k, k+"-v1")
	}

	victim := c.Nodes[1]
	dir := filepath.Join(t.TempDir(), "backup-"+victim.ID)
	out, err := exec.Command(binary, "admin", "backup", "--addr", victim.HTTPAddr, "--dir", dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "backed up to "+dir) {
		t.Fatalf("dynago admin backup: %v\n%s", err, out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
	// A second backup into the same directory is refused, not merged.
	if out, err := exec.Command(binary, "admin", "backup", "--addr", victim.HTTPAddr, "--dir", dir).CombinedOutput(); err == nil {
		t.Fatalf("backup into a used directory succeeded:\n%s", out)
	}

	for i := range overwritten {
		k := fmt.Sprintf("b-%03d", i)
		put(i, k, k+"-v2")
	}
	for i := range after {
		k := fmt.Sprintf("a-%03d", i)
		put(i, k, k+"-v1")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Kill(victim); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(victim.DataDir); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(binary, "restore", "--from", dir, "--data-dir", victim.DataDir).CombinedOutput(); err != nil {
		t.Fatalf("dynago restore: %v\n%s", err, out)
	}
	// Restoring over the restored data without --force is refused.
	if out, err := exec.Command(binary, "restore", "--from", dir, "--data-dir", victim.DataDir).CombinedOutput(); err == nil {
		t.Fatalf("restore over a non-empty data dir succeeded:\n%s", out)
	}
	restarted := time.Now()
	if err := c.Restart(ctx, victim); err != nil {
		t.Fatal(err)
	}
	logs, _ := os.ReadFile(victim.DataDir + ".log")
	if i := strings.LastIndex(string(logs), "storage open"); i < 0 || !strings.Contains(string(logs[i:]), `epoch="new data"`) {
		t.Errorf("restored node did not start with a new epoch; log:\n%s", tail(logs, 2000))
	}

	var mine []string
	for k := range latest {
		var pl placement
		call(t, "GET", base(c.Nodes[0])+"/kv/"+k+"/placement", nil, nil).json(t, &pl)
		if slices.Contains(pl.PreferenceList, victim.ID) {
			mine = append(mine, k)
		}
	}
	slices.Sort(mine)
	if len(mine) == 0 {
		t.Fatal("the victim is a replica of no key")
	}
	type local struct {
		Siblings []struct {
			Value   []byte `json:"value"`
			Deleted bool   `json:"deleted"`
		} `json:"siblings"`
	}
	holdsLatest := func(k string) bool {
		r := call(t, "GET", base(victim)+"/admin/local/"+k, nil, nil)
		if r.Status != 200 {
			return false
		}
		var l local
		r.json(t, &l)
		return len(l.Siblings) == 1 && !l.Siblings[0].Deleted && string(l.Siblings[0].Value) == latest[k]
	}
	// Only anti-entropy may fill the node in: no reads through the cluster
	// (which would read-repair) until then.
	testutil.Eventually(t, 90*time.Second, "anti-entropy brings the restored node every later write", func() bool {
		for _, k := range mine {
			if !holdsLatest(k) {
				return false
			}
		}
		return true
	})
	t.Logf("restored node holds the latest of its %d keys %v after restart", len(mine), time.Since(restarted).Round(time.Millisecond))
	for k, v := range latest {
		for _, n := range c.Nodes {
			if g := call(t, "GET", base(n)+"/kv/"+k, nil, nil); g.Status != 200 || string(g.Body) != v {
				t.Errorf("GET %s via %s: %d %q, want %q", k, n.ID, g.Status, g.Body, v)
			}
		}
	}
}
