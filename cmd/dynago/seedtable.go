package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"text/tabwriter"
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

type seedConfig struct{ n, r, w int }

func (c seedConfig) String() string { return fmt.Sprintf("N%dR%dW%d", c.n, c.r, c.w) }

type seedRow struct {
	cfg   seedConfig
	route string
	op    string
	hist  *loadgen.Histogram
	floor float64 // mean floor over the requests, ms
	errs  uint64
	took  time.Duration
}

// seedTableOptions are the experiment's knobs; the defaults are the
// original's.
type seedTableOptions struct {
	Nodes, Requests, Batch int
	Delay                  time.Duration
	Binary                 string
	JSON                   bool
}

func runSeedTable(ctx context.Context, o seedTableOptions) error {
	var rows []seedRow
	for _, cfg := range []seedConfig{{4, 1, 3}, {4, 3, 1}} {
		fmt.Fprintf(stderr, "%s: starting %d nodes with %v one-way delay...\n", cfg, o.Nodes, o.Delay)
		base, err := devcluster.FreePortBase(o.Nodes)
		if err != nil {
			return err
		}
		dir, err := os.MkdirTemp("", "dynago-seedtable-")
		if err != nil {
			return err
		}
		c, err := devcluster.Start(ctx, devcluster.Config{
			Binary: o.Binary, Nodes: o.Nodes, N: cfg.n, R: cfg.r, W: cfg.w, HTTPBasePort: base, DataDir: dir,
			ExtraArgs: []string{"--fault-delay", o.Delay.String()},
		})
		if err != nil {
			os.RemoveAll(dir)
			return err
		}
		got, err := seedTableRun(ctx, c, cfg, o)
		c.Stop()
		os.RemoveAll(dir)
		if err != nil {
			return err
		}
		rows = append(rows, got...)
	}
	if o.JSON {
		return writeSeedJSON(stdout, rows)
	}
	return writeSeedTable(stdout, rows, o)
}

func seedTableRun(ctx context.Context, c *devcluster.Cluster, cfg seedConfig, o seedTableOptions) ([]seedRow, error) {
	var addrs []string
	for _, n := range c.Nodes {
		addrs = append(addrs, n.HTTPAddr)
	}
	// Gossip must see every node alive first, or the first requests would
	// wait for hinted fallbacks rather than measure the protocol.
	if err := waitAllAlive(ctx, addrs[0], len(addrs), 30*time.Second); err != nil {
		return nil, err
	}
	entry := make([]*client.Client, len(addrs))
	for i, a := range addrs {
		cl, err := client.New([]string{a})
		if err != nil {
			return nil, err
		}
		entry[i] = cl
	}
	routed, err := client.New(addrs, client.WithRouting())
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(uint64(cfg.r), uint64(cfg.w)))
	var rows []seedRow
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
			places[i] = pl.PreferenceList
		}
		for _, op := range []string{"put", "get"} {
			row := seedRow{cfg: cfg, route: route, op: op, hist: loadgen.NewHistogram()}
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
							cl, via = entry[entryIdx], c.Nodes[entryIdx].ID
						}
						t0 := time.Now()
						var err error
						if op == "put" {
							_, err = cl.Put(ctx, keys[i], []byte("v"), nil)
						} else {
							_, err = cl.Get(ctx, keys[i], nil)
						}
						d := time.Since(t0)
						legs := seedLegs(op, cfg, places[i], via)
						mu.Lock()
						defer mu.Unlock()
						if err != nil {
							row.errs++
							return
						}
						row.hist.Record(d)
						floorSum += float64(legs) * float64(o.Delay) / float64(time.Millisecond)
					}()
				}
				wg.Wait()
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
			}
			row.took = time.Since(began)
			if n := row.hist.Count(); n > 0 {
				row.floor = floorSum / float64(n)
			}
			rows = append(rows, row)
			fmt.Fprintf(stderr, "  %s %-6s %s: mean %.1f ms (floor %.1f ms), %d errors\n", cfg, route, op, ms(row.hist.Mean()), row.floor, row.errs)
		}
	}
	return rows, nil
}

// seedLegs counts the one-way network legs between nodes a request must
// wait for. via is the entry node (route any), or "" when the client sends
// to a preference-list node itself (route client: the first one for a
// put, which coordinates; any for a get, which answers from its own copy).
func seedLegs(op string, cfg seedConfig, pl []string, via string) int {
	inList := via == "" || slices.Contains(pl, via)
	legs := 0
	if op == "put" {
		if !inList {
			legs += 2 // forwarded to a coordinator and answered
		}
		if cfg.w > 1 {
			legs += 2 // the coordinator waits for W-1 remote acknowledgements
		}
		return legs
	}
	remote := cfg.r
	if inList {
		remote-- // the coordinator's own copy answers at once
	}
	if remote > 0 {
		legs += 2
	}
	return legs
}

func waitAllAlive(ctx context.Context, addr string, n int, within time.Duration) error {
	cl, err := client.New([]string{addr})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if info, err := cl.Cluster(ctx); err == nil {
			alive := 0
			for _, nd := range info.Nodes {
				if nd.Status == "alive" {
					alive++
				}
			}
			if alive == n {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("seed table: not every node became alive")
}

func writeSeedTable(w io.Writer, rows []seedRow, o seedTableOptions) error {
	fmt.Fprintf(w, "seed table: %d nodes, %v one-way delay, %d requests per row in batches of %d\n\n", o.Nodes, o.Delay, o.Requests, o.Batch)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "config\troute\top\tcount\terrors\tmean_ms\tstd_ms\tp99.9_ms\tfloor_ms\tmean/floor\tp99.9/floor\t")
	for _, r := range rows {
		ratio := func(d time.Duration) string {
			if r.floor == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f", ms(d)/r.floor)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t%s\t\n", r.cfg, r.route, r.op, r.hist.Count(), r.errs,
			ms(r.hist.Mean()), ms(r.hist.Std()), ms(r.hist.Quantile(0.999)), r.floor, ratio(r.hist.Mean()), ratio(r.hist.Quantile(0.999)))
	}
	return tw.Flush()
}

func writeSeedJSON(w io.Writer, rows []seedRow) error {
	enc := json.NewEncoder(w)
	for _, r := range rows {
		h := r.hist
		line := map[string]any{
			"op": r.op, "count": h.Count() + r.errs, "errors": r.errs,
			"mean_ms": ms(h.Mean()), "std_ms": ms(h.Std()), "p50_ms": ms(h.Quantile(0.5)), "p99_ms": ms(h.Quantile(0.99)),
			"p999_ms": ms(h.Quantile(0.999)), "max_ms": ms(h.Max()), "ops_per_sec": float64(h.Count()) / r.took.Seconds(),
			"config": r.cfg.String(), "route": r.route, "floor_ms": r.floor, "hist": histBins(h),
		}
		if err := enc.Encode(line); err != nil {
			return err
		}
	}
	return nil
}
