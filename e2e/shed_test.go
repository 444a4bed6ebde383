package e2e

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/dynago/dynago/devcluster"
)

// codeOf is the code of a JSON error body ("" if it is none); unlike
// response.errorCode it needs no t, for goroutines.
func codeOf(body []byte) string {
	var e struct{ Code string }
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	return e.Code
}

// TestOverloadIsShedNotQueued: a burst of writes far above a node's
// --max-inflight, on real processes with slow links between them, is
// answered at once with 503 overloaded and Retry-After for what the node
// cannot take, and served for the rest; every acknowledged write is
// readable, and the node counts what it shed.
func TestOverloadIsShedNotQueued(t *testing.T) {
	c := startCluster(t, devcluster.Config{Nodes: 3, N: 3, ExtraArgs: []string{"--max-inflight", "4", "--fault-delay", "50ms"}})
	entry := c.Nodes[0]
	const burst = 40
	var (
		mu    sync.Mutex
		acked []string
		shed  int
		wg    sync.WaitGroup
	)
	for i := range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("burst-%d", i)
			r, err := do("PUT", base(entry)+"/kv/"+key+"?w=3", []byte(key))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Errorf("PUT %s: %v", key, err)
			case r.Status == 204:
				acked = append(acked, key)
			case r.Status == 503 && r.Header.Get("Retry-After") == "1" && codeOf(r.Body) == "overloaded":
				shed++
			default:
				t.Errorf("PUT %s: %d %s (Retry-After %q)", key, r.Status, r.Body, r.Header.Get("Retry-After"))
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(acked) == 0 || shed == 0 {
		t.Fatalf("%d of %d writes acknowledged and %d shed; want some of each", len(acked), burst, shed)
	}
	t.Logf("%d writes acknowledged, %d shed", len(acked), shed)
	if got := metricValue(t, entry, "dynago_requests_shed_total"); got != float64(shed) {
		t.Errorf("dynago_requests_shed_total = %v, want %d", got, shed)
	}
	for _, key := range acked {
		r := call(t, "GET", base(c.Nodes[1])+"/kv/"+key+"?r=3", nil, nil)
		if r.Status != 200 || string(r.Body) != key {
			t.Errorf("GET %s r=3 after the burst: %d %s", key, r.Status, r.Body)
		}
	}
}
