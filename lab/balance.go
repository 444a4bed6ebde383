package lab

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynago/dynago/client"
	"github.com/dynago/dynago/devcluster"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/sim"
)

// Balance (§6.2, Figure 8). A node is out of balance when its request load
// in a window is more than Threshold above the mean load of all nodes; the
// experiment plots the fraction of out-of-balance nodes against the
// request rate. The paper's windows were 30 minutes of production traffic;
// here a window is a fixed stretch of (virtual or real) time at a fixed
// rate, so the rate sets how many requests a window holds.
//
// A node's load is every request it worked on: as the coordinator, as the
// node that forwarded it, or as a replica the coordinator asked (read from
// each reply's trace in the simulator). Requests are routed client-side to
// the key's coordinator: a load balancer's random entry node would add the
// same forwarding load to every node and hide what partitioning does.

type balanceConfig struct {
	nodes      int
	partitions []int
	rates      []float64 // requests per second
	window     time.Duration
	windows    int // per point; the point is their mean
	keys       int
	dists      []string
	threshold  float64
}

func defaultBalance(t Target) balanceConfig {
	if t.Engine() != "sim" {
		// A real cluster on a shared laptop: fewer, slower points.
		return balanceConfig{nodes: 5, partitions: []int{64, 256, 1024}, rates: []float64{25, 50, 100, 200},
			window: 3 * time.Second, windows: 1, keys: 10000, dists: []string{"uniform", "zipfian"}, threshold: 0.15}
	}
	return balanceConfig{nodes: 16, partitions: []int{64, 256, 1024}, rates: []float64{100, 300, 1000, 3000},
		window: time.Second, windows: 3, keys: 100000, dists: []string{"uniform", "zipfian"}, threshold: 0.15}
}

// BalancePoint is one data point of the balance experiment.
type BalancePoint struct {
	Experiment string  `json:"experiment"`
	Engine     string  `json:"engine"`
	Partitions int     `json:"partitions"`
	Dist       string  `json:"dist"`
	Rate       float64 `json:"rate_per_s"`
	Nodes      int     `json:"nodes"`
	Windows    int     `json:"windows"`
	WindowS    float64 `json:"window_s"`
	Requests   int     `json:"requests"` // answered, over all windows
	// Imbalance is the mean over the windows of the fraction of nodes
	// whose load exceeded the mean by more than Threshold.
	Imbalance float64 `json:"imbalance"`
	Threshold float64 `json:"threshold"`
	// MaxOverMean is the busiest node's load over the mean, averaged over
	// the windows.
	MaxOverMean float64 `json:"max_over_mean"`
}

// keyDraw returns a function drawing key ranks: uniform, or zipfian with
// s = 1.1 as loadgen's (rank 0 hottest).
func keyDraw(dist string, keys int, rng *rand.Rand) (func() int, error) {
	switch dist {
	case "uniform":
		return func() int { return rng.IntN(keys) }, nil
	case "zipfian":
		z := rand.NewZipf(rng, 1.1, 1, uint64(keys-1))
		return func() int { return int(z.Uint64()) }, nil
	}
	return nil, fmt.Errorf("%w: key distribution %q (want uniform or zipfian)", ErrOptions, dist)
}

// outOfBalance returns the fraction of nodes whose load exceeds the mean by
// more than threshold, and the busiest node's load over the mean. Nodes
// with no load count (they are part of the mean).
func outOfBalance(load map[string]int, nodes []string, threshold float64) (frac, maxOverMean float64) {
	if len(nodes) == 0 {
		return 0, 0
	}
	total, most := 0, 0
	for _, n := range nodes {
		total += load[n]
		most = max(most, load[n])
	}
	if total == 0 {
		return 0, 0
	}
	mean := float64(total) / float64(len(nodes))
	out := 0
	for _, n := range nodes {
		if float64(load[n]) > mean*(1+threshold) {
			out++
		}
	}
	return float64(out) / float64(len(nodes)), float64(most) / mean
}

// traceLoad adds one request's load to load: each node the trace shows
// working on it, once.
func traceLoad(load map[string]int, tr *node.Trace) {
	if tr == nil {
		return
	}
	seen := map[ring.NodeID]bool{}
	add := func(id ring.NodeID) {
		if id != "" && !seen[id] {
			seen[id] = true
			load[string(id)]++
		}
	}
	add(tr.ForwardedBy)
	add(tr.Coordinator)
	for _, e := range tr.Events {
		if e.What == "sent" {
			add(e.Node)
		}
	}
}

func runBalance(ctx context.Context, o Options) (string, error) {
	cfg := defaultBalance(o.Target)
	pts, err := onEngine(ctx, o, cfg, balanceSim, balanceLive)
	if err != nil {
		return "", err
	}
	return balanceChart(o, pts)
}

func balanceSim(ctx context.Context, o Options, cfg balanceConfig) ([]BalancePoint, error) {
	var pts []BalancePoint
	for _, q := range cfg.partitions {
		c, err := sim.New(sim.Config{Seed: o.Seed, Nodes: cfg.nodes, Partitions: q, N: 3, R: 2, W: 2,
			// Anti-entropy and reaping are background load the paper's
			// request counts do not include; an hour keeps them out.
			AEInterval: time.Hour, TombstoneGrace: -1})
		if err != nil {
			return nil, err
		}
		d := newDriver(c, o.Seed+uint64(q))
		var nodes []string
		for _, id := range c.Nodes() {
			nodes = append(nodes, string(id))
		}
		ctxs := map[int][]byte{} // last context per key rank, so puts do not pile up siblings
		for _, dist := range cfg.dists {
			draw, err := keyDraw(dist, cfg.keys, d.rng)
			if err != nil {
				return nil, err
			}
			for _, rate := range cfg.rates {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				pt := BalancePoint{Experiment: "balance", Engine: "sim", Partitions: q, Dist: dist, Rate: rate,
					Nodes: cfg.nodes, Windows: cfg.windows, WindowS: cfg.window.Seconds(), Threshold: cfg.threshold}
				for range cfg.windows {
					load := map[string]int{}
					start := c.Now()
					count := int(rate * cfg.window.Seconds())
					for i := range count {
						at := start + time.Duration(float64(i)/rate*float64(time.Second))
						d.c.At(at, func() {
							k := draw()
							key := fmt.Appendf(nil, "cart-%d", k)
							req := node.Request{Op: node.OpGet, Key: key}
							if d.rng.IntN(2) == 0 {
								req = node.Request{Op: node.OpPut, Key: key, Value: []byte("item"), Context: ctxs[k]}
							}
							d.submit(d.preferenceList(key)[0], req, func(r node.Reply, _ time.Duration) {
								traceLoad(load, r.Trace)
								if r.Code == node.CodeOK || r.Code == node.CodeNotFound {
									ctxs[k] = r.Context
									pt.Requests++
								}
							})
						})
					}
					d.runTo(start + cfg.window)
					if err := d.drain(10 * time.Second); err != nil {
						return nil, err
					}
					frac, mom := outOfBalance(load, nodes, cfg.threshold)
					pt.Imbalance += frac / float64(cfg.windows)
					pt.MaxOverMean += mom / float64(cfg.windows)
				}
				o.logf("balance: Q=%d %s %g req/s: %.3f out of balance", q, dist, rate, pt.Imbalance)
				if err := o.emit(pt); err != nil {
					return nil, err
				}
				pts = append(pts, pt)
			}
		}
	}
	return pts, nil
}

func balanceChart(o Options, pts []BalancePoint) (string, error) {
	var ss []series
	for _, p := range pts {
		name := fmt.Sprintf("Q=%d %s", p.Partitions, p.Dist)
		i := slices.IndexFunc(ss, func(s series) bool { return s.name == name })
		if i < 0 {
			ss = append(ss, series{name: name})
			i = len(ss) - 1
		}
		ss[i].xs = append(ss[i].xs, p.Rate)
		ss[i].ys = append(ss[i].ys, p.Imbalance)
	}
	engine := "simulator"
	if len(pts) > 0 && pts[0].Engine != "sim" {
		engine = pts[0].Engine + " cluster"
	}
	path := o.chartPath("balance")
	title := fmt.Sprintf("Load imbalance (nodes > 15%% above mean), %s", engine)
	return path, lineChart(path, title, "request rate (requests/s, log)", "fraction of nodes out of balance", true, ss)
}

// balanceLive measures a real cluster: each node's load in a window is the
// growth of its dynago_requests_total (requests it coordinated or
// forwarded; its work as a replica has no counter). With a dev target it
// starts one cluster per Q; with addresses it measures the cluster's own Q.
func balanceLive(ctx context.Context, o Options, cfg balanceConfig) ([]BalancePoint, error) {
	qs := cfg.partitions
	if !o.Target.Dev {
		qs = []int{0}
	}
	var pts []BalancePoint
	for _, q := range qs {
		addrs := o.Target.Addrs
		var dc *devCluster
		if o.Target.Dev {
			o.logf("balance: starting %d local nodes with Q=%d...", cfg.nodes, q)
			var err error
			if dc, err = startDev(ctx, o, devcluster.Config{Nodes: cfg.nodes, Partitions: q, N: 3, R: 2, W: 2}, ""); err != nil {
				return nil, err
			}
			addrs = dc.addrs
		}
		got, err := balanceLiveOne(ctx, o, cfg, addrs)
		if dc != nil {
			dc.stop()
		}
		if err != nil {
			return nil, err
		}
		pts = append(pts, got...)
	}
	return pts, nil
}

func balanceLiveOne(ctx context.Context, o Options, cfg balanceConfig, addrs []string) ([]BalancePoint, error) {
	info, err := members(ctx, addrs)
	if err != nil {
		return nil, err
	}
	var nodes []string
	httpOf := map[string]string{}
	for _, n := range info.Nodes {
		nodes = append(nodes, string(n.ID))
		httpOf[string(n.ID)] = n.HTTPAddr
	}
	routed, err := client.New(addrs, client.WithRouting())
	if err != nil {
		return nil, fmt.Errorf("%w: --cluster: %w", ErrOptions, err)
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	scrape := func() (map[string]float64, error) {
		out := map[string]float64{}
		for _, id := range nodes {
			v, err := requestsServed(ctx, hc, httpOf[id])
			if err != nil {
				return nil, err
			}
			out[id] = v
		}
		return out, nil
	}
	var (
		mu   sync.Mutex
		rng  = rand.New(rand.NewPCG(o.Seed, o.Seed^0xba1a))
		ctxs = map[int]client.Context{}
	)
	var pts []BalancePoint
	for _, dist := range cfg.dists {
		draw, err := keyDraw(dist, cfg.keys, rng)
		if err != nil {
			return nil, err
		}
		for _, rate := range cfg.rates {
			pt := BalancePoint{Experiment: "balance", Engine: o.Target.Engine(), Partitions: info.Partitions, Dist: dist, Rate: rate,
				Nodes: len(nodes), Windows: cfg.windows, WindowS: cfg.window.Seconds(), Threshold: cfg.threshold}
			for range cfg.windows {
				before, err := scrape()
				if err != nil {
					return nil, err
				}
				var ok atomic.Int64
				openLoop(ctx, rate, cfg.window, 64, func(ctx context.Context, _ int) {
					mu.Lock()
					k, put := draw(), rng.IntN(2) == 0
					prev := ctxs[k]
					mu.Unlock()
					key := fmt.Sprintf("cart-%d", k)
					var c client.Context
					var err error
					if put {
						c, err = routed.Put(ctx, key, []byte("item"), &client.PutOptions{Context: prev})
					} else {
						var v client.Value
						v, err = routed.Get(ctx, key, nil)
						c = v.Context
						if errors.Is(err, client.ErrNotFound) {
							err = nil // a cart not written yet: served all the same
						}
					}
					if err == nil {
						ok.Add(1)
						mu.Lock()
						ctxs[k] = c
						mu.Unlock()
					}
				})
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				after, err := scrape()
				if err != nil {
					return nil, err
				}
				load := map[string]int{}
				for _, id := range nodes {
					load[id] = int(after[id] - before[id])
				}
				frac, mom := outOfBalance(load, nodes, cfg.threshold)
				pt.Imbalance += frac / float64(cfg.windows)
				pt.MaxOverMean += mom / float64(cfg.windows)
				pt.Requests += int(ok.Load())
			}
			o.logf("balance: Q=%d %s %g req/s: %.3f out of balance", pt.Partitions, dist, rate, pt.Imbalance)
			if err := o.emit(pt); err != nil {
				return nil, err
			}
			pts = append(pts, pt)
		}
	}
	return pts, nil
}
