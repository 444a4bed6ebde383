package lab

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/dynago/dynago/client"
	"github.com/dynago/dynago/devcluster"
	"github.com/dynago/dynago/loadgen"
)

// The seed table: the experiment of the original Dynamo simulator. A local
// cluster of 8 nodes with 4-way replication runs in two configurations,
// R=1 W=3 and R=3 W=1, with a fixed one-way delay injected into every
// message between nodes; 1,000 puts and then 1,000 gets of random keys go
// out in batches of 10 concurrent requests, once entering at random nodes
// and once routed by the client to the key's preference list. Every
// latency is shown beside its physical floor: the network legs the
// request must cross, 2 × the delay for each round trip it waits on.
//
// Unlike the paper's experiments it always runs on local clusters of the
// dynago binary (the delay is the binary's --fault-delay) and draws no
// chart: its output is a table, so SeedTable returns rows and the caller
// prints them.

// SeedConfig is one replication configuration of the table.
type SeedConfig struct{ N, R, W int }

func (c SeedConfig) String() string { return fmt.Sprintf("N%dR%dW%d", c.N, c.R, c.W) }

// SeedConfigs are the table's two configurations, the original's.
var SeedConfigs = []SeedConfig{{4, 1, 3}, {4, 3, 1}}

// SeedRow is one row of the table: one configuration, route and operation.
type SeedRow struct {
	Config SeedConfig
	Route  string // "any" (a random entry node) or "client" (client routing)
	Op     string // "put" or "get"
	// Hist holds the latencies of the requests that succeeded.
	Hist *loadgen.Histogram
	// FloorMS is the mean floor over the successful requests, ms.
	FloorMS float64
	Errors  uint64
	Took    time.Duration // wall time of the row's requests
}

// SeedTableOptions are the experiment's knobs; DefaultSeedTable gives the
// original's.
type SeedTableOptions struct {
	Nodes, Requests, Batch int
	Delay                  time.Duration
	// Binary is the dynago executable the clusters run; default: this
	// executable.
	Binary string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// DefaultSeedTable returns the original simulator's settings: 8 nodes,
// 1,000 requests per row in batches of 10, 10 ms one-way delay.
func DefaultSeedTable() SeedTableOptions {
	return SeedTableOptions{Nodes: 8, Requests: 1000, Batch: 10, Delay: 10 * time.Millisecond}
}

// SeedTable starts a local cluster per configuration, measures its rows
// and stops the cluster again.
func SeedTable(ctx context.Context, o SeedTableOptions) ([]SeedRow, error) {
	// The preference lists hold N nodes; a smaller cluster would measure
	// a different protocol (every node in every list).
	if o.Nodes < SeedConfigs[0].N || o.Requests <= 0 || o.Batch <= 0 || o.Delay < 0 {
		return nil, fmt.Errorf("%w: seed table: want at least %d nodes, positive requests and batch, got %+v", ErrOptions, SeedConfigs[0].N, o)
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	var rows []SeedRow
	for _, cfg := range SeedConfigs {
		fmt.Fprintf(o.Log, "%s: starting %d nodes with %v one-way delay...\n", cfg, o.Nodes, o.Delay)
		d, err := startDev(ctx, Options{Binary: o.Binary}, devcluster.Config{
			Nodes: o.Nodes, N: cfg.N, R: cfg.R, W: cfg.W,
			ExtraArgs: []string{"--fault-delay", o.Delay.String()},
		}, "")
		if err != nil {
			return nil, err
		}
		got, err := seedTableRun(ctx, d, cfg, o)
		d.stop()
		if err != nil {
			return nil, err
		}
		rows = append(rows, got...)
	}
	return rows, nil
}

// seedHTTPClient is the HTTP client of the experiment's requests: it keeps
// an idle connection to a node for every request of a batch, since a batch
// may send all of them to one node. With Go's default of two idle
// connections per host, every request past the second to a node in a batch
// dialled a fresh connection, closed again after it (about one request in
// eight with 10 requests over 8 nodes): a TCP handshake and two goroutine
// starts on a loaded machine, measured as the request's latency though no
// node is at fault.
func seedHTTPClient(batch int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = max(batch, 2)
	return &http.Client{Transport: tr}
}

func seedTableRun(ctx context.Context, d *devCluster, cfg SeedConfig, o SeedTableOptions) ([]SeedRow, error) {
	addrs := d.addrs
	hc := seedHTTPClient(o.Batch)
	defer hc.CloseIdleConnections()
	entry := make([]*client.Client, len(addrs))
	for i, a := range addrs {
		cl, err := client.New([]string{a}, client.WithHTTPClient(hc))
		if err != nil {
			return nil, err
		}
		entry[i] = cl
	}
	routed, err := client.New(addrs, client.WithRouting(), client.WithHTTPClient(hc))
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(uint64(cfg.R), uint64(cfg.W)))
	var rows []SeedRow
	for _, route := range []string{"any", "client"} {
		keys := make([]string, o.Requests)
		for i := range keys {
			keys[i] = fmt.Sprintf("seed-%s-%s-%d", cfg, route, rng.Uint64())
		}
		places := make([][]string, len(keys))
		for i, k := range keys {
			pl, err := entry[0].Placement(ctx, k)
			if err != nil {
				return nil, err
			}
			for _, id := range pl.PreferenceList {
				places[i] = append(places[i], string(id))
			}
		}
		for _, op := range []string{"put", "get"} {
			row := SeedRow{Config: cfg, Route: route, Op: op, Hist: loadgen.NewHistogram()}
			var floorSum float64
			var mu sync.Mutex
			began := time.Now()
			for start := 0; start < len(keys); start += o.Batch {
				var wg sync.WaitGroup
				for i := start; i < min(start+o.Batch, len(keys)); i++ {
					entryIdx := rng.IntN(len(addrs))
					wg.Add(1)
					go func() {
						defer wg.Done()
						cl := routed
						via := ""
						if route == "any" {
							cl, via = entry[entryIdx], d.c.Nodes[entryIdx].ID
						}
						t0 := time.Now()
						var err error
						if op == "put" {
							_, err = cl.Put(ctx, keys[i], []byte("v"), nil)
						} else {
							_, err = cl.Get(ctx, keys[i], nil)
						}
						took := time.Since(t0)
						legs := seedLegs(op, cfg, places[i], via)
						mu.Lock()
						defer mu.Unlock()
						if err != nil {
							row.Errors++
							return
						}
						row.Hist.Record(took)
						floorSum += float64(legs) * ms(o.Delay)
					}()
				}
				wg.Wait()
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
			}
			row.Took = time.Since(began)
			if n := row.Hist.Count(); n > 0 {
				row.FloorMS = floorSum / float64(n)
			}
			rows = append(rows, row)
			fmt.Fprintf(o.Log, "  %s %-6s %s: mean %.1f ms (floor %.1f ms), %d errors\n", cfg, route, op, ms(row.Hist.Mean()), row.FloorMS, row.Errors)
		}
	}
	return rows, nil
}

// seedLegs counts the one-way network legs between nodes a request must
// wait for. via is the entry node (route any), or "" when the client sends
// to a preference-list node itself (route client: the first one for a
// put, which coordinates; any for a get, which answers from its own copy).
func seedLegs(op string, cfg SeedConfig, pl []string, via string) int {
	inList := via == "" || slices.Contains(pl, via)
	legs := 0
	if op == "put" {
		if !inList {
			legs += 2 // forwarded to a coordinator and answered
		}
		if cfg.W > 1 {
			legs += 2 // the coordinator waits for W-1 remote acknowledgements
		}
		return legs
	}
	remote := cfg.R
	if inList {
		remote-- // the coordinator's own copy answers at once
	}
	if remote > 0 {
		legs += 2
	}
	return legs
}
