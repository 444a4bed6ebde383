package resp

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/node"
)

// crowdedBackend answers every write as a coordinator does when the write
// left its key above the soft sibling limit.
type crowdedBackend struct{}

func (crowdedBackend) Defaults() (n, r, w int) { return 3, 2, 2 }

func (crowdedBackend) Do(_ context.Context, req node.Request) node.Reply {
	if req.Op == node.OpGet {
		return node.Reply{Code: node.CodeNotFound}
	}
	return node.Reply{Code: node.CodeOK, Trace: &node.Trace{Events: []node.TraceEvent{{What: node.SiblingsEvent, Note: "30"}}}}
}

// TestSiblingWarningsCountInTheSharedMetric: RESP writes above the soft
// sibling limit count in dynago_sibling_warnings_total, the series HTTP
// counts its warnings in.
func TestSiblingWarningsCountInTheSharedMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	addr := serve(t, crowdedBackend{}, Config{Registry: reg})
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	ctx := context.Background()
	for _, args := range [][]any{{"SET", "k", "v"}, {"DSET", "k", "v"}, {"DDEL", "k"}, {"GET", "k"}} {
		if err := c.Do(ctx, args...).Err(); err != nil && err != redis.Nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	if got := metricValue(t, reg, "dynago_sibling_warnings_total"); got != 3 {
		t.Fatalf("dynago_sibling_warnings_total = %v after three warned writes and a read, want 3", got)
	}
	// HTTP's counter of the same registry is the same series.
	httpapi.SiblingWarnings(reg).Inc()
	if got := metricValue(t, reg, "dynago_sibling_warnings_total"); got != 4 {
		t.Fatalf("dynago_sibling_warnings_total = %v after HTTP's warning, want 4 (one series)", got)
	}
}
