package lab

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The floors of the seed table: the network legs each request must wait on.
func TestSeedLegs(t *testing.T) {
	pl := []string{"n1", "n2", "n3", "n4"}
	r1w3, r3w1 := SeedConfig{4, 1, 3}, SeedConfig{4, 3, 1}
	for _, tc := range []struct {
		name string
		op   string
		cfg  SeedConfig
		via  string
		want int
	}{
		{"client put W=3: wait for remote acks", "put", r1w3, "", 2},
		{"client put W=1: the coordinator alone", "put", r3w1, "", 0},
		{"client get R=1: the replica's own copy", "get", r1w3, "", 0},
		{"client get R=3: two remote answers", "get", r3w1, "", 2},
		{"put entering outside the list is forwarded", "put", r1w3, "n7", 4},
		{"W=1 put entering outside the list: the forward only", "put", r3w1, "n7", 2},
		{"put entering at a replica coordinates there", "put", r1w3, "n3", 2},
		{"R=1 get entering outside the list asks a replica", "get", r1w3, "n7", 2},
		{"R=1 get entering at a replica answers locally", "get", r1w3, "n2", 0},
	} {
		if got := seedLegs(tc.op, tc.cfg, pl, tc.via); got != tc.want {
			t.Errorf("%s: %d legs, want %d", tc.name, got, tc.want)
		}
	}
}

// A seed table smaller than a preference list, or with no requests, is
// refused before any cluster starts.
func TestSeedTableRejectsBadOptions(t *testing.T) {
	for _, mod := range []func(*SeedTableOptions){
		func(o *SeedTableOptions) { o.Nodes = 3 },
		func(o *SeedTableOptions) { o.Requests = 0 },
		func(o *SeedTableOptions) { o.Batch = 0 },
		func(o *SeedTableOptions) { o.Delay = -time.Millisecond },
	} {
		o := DefaultSeedTable()
		mod(&o)
		if _, err := SeedTable(context.Background(), o); !errors.Is(err, ErrOptions) {
			t.Errorf("SeedTable(%+v): %v, want ErrOptions", o, err)
		}
	}
}

// The experiment's client must not measure connection set-up: a batch of
// concurrent requests to one node (the worst case of a batch) reuses the
// previous batch's connections instead of dialling new ones.
func TestSeedHTTPClientReusesABatchOfConnections(t *testing.T) {
	const batch, batches = 10, 8
	var opened atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Long enough that the batch's requests overlap, so it needs
		// batch connections at once.
		time.Sleep(20 * time.Millisecond)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	hc := seedHTTPClient(batch)
	defer hc.CloseIdleConnections()
	for range batches {
		var wg sync.WaitGroup
		for range batch {
			wg.Go(func() {
				resp, err := hc.Get(srv.URL)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			})
		}
		wg.Wait()
	}
	// batch connections serve every batch; twice that leaves room for a
	// connection still on its way back to the pool when the next batch
	// starts. Go's default pool (two idle per host) opens about
	// 2 + (batch-2) × batches = 66 here.
	if n := opened.Load(); n > 2*batch {
		t.Errorf("%d batches of %d requests opened %d connections, want at most %d", batches, batch, n, 2*batch)
	}
}
