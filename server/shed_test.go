package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dynago/dynago/fault"
	"github.com/dynago/dynago/internal/testutil"
	"github.com/dynago/dynago/node"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
)

// TestRequestsPastMaxInflightAreShed: with MaxInflight client requests in
// flight, the next one (or a batch) is answered CodeOverloaded at once,
// doing nothing, and counted; once they finish, requests are admitted
// again.
func TestRequestsPastMaxInflightAreShed(t *testing.T) {
	delay, err := fault.ParseDelay("150ms")
	if err != nil {
		t.Fatal(err)
	}
	srvs := startCluster(t, 3, func(c *Config) {
		c.MaxInflight = 2
		// Every message between nodes is slow, so that W=3 puts stay in
		// flight for two round trips.
		c.Faults.Delay = map[string]fault.Delay{fault.Any: delay}
	})
	s := srvs[0]
	ctx := context.Background()
	put := func(key string) node.Reply {
		return s.Do(ctx, node.Request{Op: node.OpPut, Key: []byte(key), Value: []byte("v"), W: 3, Timeout: 5 * time.Second})
	}
	done := make(chan node.Reply, 2)
	for _, k := range []string{"slow-1", "slow-2"} {
		go func() { done <- put(k) }()
	}
	testutil.Eventually(t, 2*time.Second, "two requests in flight", func() bool { return s.clientInflight.Load() == 2 })

	began := time.Now()
	r := put("shed")
	if r.Code != node.CodeOverloaded || !strings.Contains(r.Err, "--max-inflight") {
		t.Fatalf("third put: %s %q; want overloaded, naming --max-inflight", r.Code, r.Err)
	}
	// An admitted W=3 put waits two delayed legs (300 ms); a shed one
	// crosses none.
	if took := time.Since(began); took >= 300*time.Millisecond {
		t.Errorf("the shed put took %v; it must be answered at once, not after a round trip", took)
	}
	reqs := []node.Request{{Op: node.OpGet, Key: []byte("slow-1")}, {Op: node.OpGet, Key: []byte("slow-2")}}
	reps := make([]node.Reply, len(reqs))
	s.DoBatch(ctx, reqs, reps)
	for i, rep := range reps {
		if rep.Code != node.CodeOverloaded {
			t.Errorf("batched get %d while full: %s %q; want overloaded", i, rep.Code, rep.Err)
		}
	}
	if got := promtest.ToFloat64(s.metrics.shed); got != 3 {
		t.Errorf("dynago_requests_shed_total = %v, want 3", got)
	}
	for range 2 {
		if r := <-done; r.Code != node.CodeOK {
			t.Fatalf("an admitted put: %s %s", r.Code, r.Err)
		}
	}
	// Nothing of the shed put was stored anywhere.
	for _, srv := range srvs {
		if _, ok, err := srv.Local([]byte("shed")); err != nil || ok {
			t.Fatalf("%s holds the shed put (%v, %v)", srv.NodeID(), ok, err)
		}
	}
	if r := put("after"); r.Code != node.CodeOK {
		t.Fatalf("a put after the others finished: %s %s", r.Code, r.Err)
	}
	if n := s.clientInflight.Load(); n != 0 {
		t.Fatalf("%d requests still counted in flight", n)
	}
}
