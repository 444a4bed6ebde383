package resp_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dynago/dynago/fault"
	"github.com/dynago/dynago/server"
)

// TestOverloadedNodeAnswersOVERLOADED: a request past the node's
// --max-inflight gets -OVERLOADED at once through a real Redis client, and
// the request in flight completes.
func TestOverloadedNodeAnswersOVERLOADED(t *testing.T) {
	delay, err := fault.ParseDelay("200ms")
	if err != nil {
		t.Fatal(err)
	}
	srvs := startCluster(t, 3, func(c *server.Config) {
		c.MaxInflight = 1
		c.Faults.Delay = map[string]fault.Delay{fault.Any: delay}
	})
	ctx := context.Background()
	slow := client(t, &redis.Options{Addr: srvs[0].RESPAddr()})
	other := client(t, &redis.Options{Addr: srvs[0].RESPAddr()})
	done := make(chan error, 1)
	go func() { done <- slow.Do(ctx, "DSET", "k", "v", "W", "3").Err() }()
	var shed error
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if shed = other.Get(ctx, "k").Err(); errCode(shed) == "OVERLOADED" {
			break
		}
	}
	if errCode(shed) != "OVERLOADED" || !strings.Contains(shed.Error(), "--max-inflight") {
		t.Fatalf("GET while a W=3 DSET is in flight with --max-inflight 1: %v, want -OVERLOADED naming the flag", shed)
	}
	if err := <-done; err != nil {
		t.Fatalf("the DSET in flight: %v", err)
	}
}
