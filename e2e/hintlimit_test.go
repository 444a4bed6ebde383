package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynago/dynago/devcluster"
	"github.com/dynago/dynago/internal/testutil"
)

// metricValue reads an unlabelled metric from a node's /metrics.
func metricValue(t *testing.T, n *devcluster.Node, name string) float64 {
	t.Helper()
	line := metricLine(string(call(t, "GET", base(n)+"/metrics", nil, nil).Body), name)
	f := strings.Fields(line)
	if len(f) != 2 {
		t.Fatalf("%s: no %s in /metrics (line %q)", n.ID, name, line)
	}
	v, err := strconv.ParseFloat(f[1], 64)
	if err != nil {
		t.Fatalf("%s: %s: %v", n.ID, line, err)
	}
	return v
}

// TestHintStoreLimitDuringAnOutage: with one node SIGKILLed, the
// fallbacks hold hints for it up to --max-hint-bytes and then refuse more,
// so that a long outage cannot fill their disks. A W=3 write that needs a
// refused hint fails with a 503 that says why; W=2 writes go on. When the
// node comes back, the hints are delivered and the room is free again, and
// every write reaches it, the refused ones by anti-entropy.
func TestHintStoreLimitDuringAnOutage(t *testing.T) {
	const limit = 4096
	c := startCluster(t, devcluster.Config{Nodes: 5, N: 3, ExtraArgs: []string{"--max-hint-bytes", strconv.Itoa(limit)}})
	victim := c.Nodes[4]
	live := c.Nodes[:4]
	if err := c.Kill(victim); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 15*time.Second, "the killed node is reported dead", func() bool {
		return statusOf(t, c.Nodes[0], victim.ID) == "dead"
	})

	value := bytes.Repeat([]byte("h"), 200)
	// entry returns a live primary of key, and whether victim is one.
	entry := func(key string) (*devcluster.Node, bool) {
		var pl placement
		call(t, "GET", base(c.Nodes[0])+"/kv/"+key+"/placement", nil, nil).json(t, &pl)
		var first *devcluster.Node
		hit := false
		for _, id := range pl.PreferenceList {
			if id == victim.ID {
				hit = true
			} else if first == nil {
				first = nodeByID(t, c, id)
			}
		}
		return first, hit
	}
	var acked, refused []string
	for i := 0; i < 200 && len(refused) < 5; i++ {
		key := fmt.Sprintf("hl-%d", i)
		via, hinted := entry(key)
		if !hinted {
			continue
		}
		r := call(t, "PUT", base(via)+"/kv/"+key+"?w=3", value, nil)
		switch {
		case r.Status == 204:
			acked = append(acked, key)
		case r.Status == 503 && bytes.Contains(r.Body, []byte("hint store full")) && bytes.Contains(r.Body, []byte("--max-hint-bytes")):
			refused = append(refused, key)
		default:
			t.Fatalf("PUT %s w=3 with %s dead: %d %s", key, victim.ID, r.Status, r.Body)
		}
	}
	if len(acked) == 0 || len(refused) < 5 {
		t.Fatalf("%d W=3 writes acknowledged and %d refused for a full hint store; want some of each", len(acked), len(refused))
	}
	t.Logf("%d W=3 writes acknowledged before the fallbacks' hints filled up, %d refused after", len(acked), len(refused))
	// The gauges read a snapshot of the core's counters, refreshed every
	// 200 ms: wait for it to include the last refusals.
	testutil.Eventually(t, 5*time.Second, "the live nodes count every refused hint", func() bool {
		var refusals float64
		for _, n := range live {
			refusals += metricValue(t, n, "dynago_hints_refused_total")
		}
		return refusals >= float64(len(refused))
	})
	for _, n := range live {
		if b := metricValue(t, n, "dynago_hint_bytes"); b > limit {
			t.Errorf("%s holds %v bytes of hints, over its limit of %d", n.ID, b, limit)
		}
	}
	// Writes that two live primaries can acknowledge do not need hints.
	var w2 []string
	for i := 0; len(w2) < 10 && i < 200; i++ {
		key := fmt.Sprintf("w2-%d", i)
		via, hinted := entry(key)
		if !hinted {
			continue
		}
		if r := call(t, "PUT", base(via)+"/kv/"+key+"?w=2", value, nil); r.Status != 204 {
			t.Fatalf("PUT %s w=2 with the hint stores full: %d %s", key, r.Status, r.Body)
		}
		w2 = append(w2, key)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Restart(ctx, victim); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "every hint is delivered and its room freed", func() bool {
		for _, n := range live {
			if metricValue(t, n, "dynago_hint_bytes") != 0 {
				return false
			}
		}
		return true
	})
	// Every write is on the node that was down: the acknowledged ones by
	// hints or anti-entropy, the refused ones (stored on the live
	// replicas) by anti-entropy.
	all := append(append(append([]string{}, acked...), w2...), refused...)
	testutil.Eventually(t, 90*time.Second, fmt.Sprintf("%s holds all %d keys", victim.ID, len(all)), func() bool {
		for _, k := range all {
			r := call(t, "GET", base(victim)+"/admin/local/"+k, nil, nil)
			if r.Status != 200 {
				return false
			}
			var lb struct {
				Siblings []struct {
					Value string `json:"value"`
				} `json:"siblings"`
			}
			r.json(t, &lb)
			if len(lb.Siblings) != 1 || lb.Siblings[0].Value != base64.StdEncoding.EncodeToString(value) {
				return false
			}
		}
		return true
	})
}
