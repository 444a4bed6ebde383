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
	for _, c := range []*redis.Client{slow, other} {
		if err := c.Ping(ctx).Err(); err != nil { // connected before the race below
			t.Fatal(err)
		}
	}
	// The W=3 write holds the only slot for two delayed legs (400 ms); a
	// probe of the other client may take the slot first, so the write is
	// retried while it is the one shed. The probes read at R=1, answered
	// by the coordinator's own copy without a network leg, so they hold
	// the slot only briefly.
	done := make(chan error, 1)
	go func() {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			err := slow.Do(ctx, "DSET", "k", "v", "W", "3").Err()
			if errCode(err) != "OVERLOADED" || time.Now().After(deadline) {
				done <- err
				return
			}
		}
	}()
	var shed error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if shed = other.Do(ctx, "DGET", "k", "R", "1").Err(); errCode(shed) == "OVERLOADED" {
			break
		}
	}
	if errCode(shed) != "OVERLOADED" || !strings.Contains(shed.Error(), "--max-inflight") {
		t.Fatalf("DGET while a W=3 DSET is in flight with --max-inflight 1: %v, want -OVERLOADED naming the flag", shed)
	}
	if err := <-done; err != nil {
		t.Fatalf("the DSET: %v", err)
	}
}
