package lab

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/dynago/dynago/client"
	"github.com/dynago/dynago/devcluster"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/sim"
)

// Divergence (§6.3). The shopping-cart workload: each client, again and
// again, reads a cart, then writes it back with the context it read
// (read-modify-write), then pauses. Two clients updating one cart at once,
// or a failure that makes a write land on a replica the next read does not
// consult, leave sibling versions; the experiment counts how many versions
// each successful read returned. Requests enter at random nodes
// (server-driven), as the shopping cart service's did through its load
// balancer.

type divergenceConfig struct {
	nodes, clients, keys int
	duration             time.Duration
	thinkMin, thinkMax   time.Duration
	failures             []bool
}

func defaultDivergence(t Target) divergenceConfig {
	if t.Engine() != "sim" {
		return divergenceConfig{nodes: 5, clients: 8, keys: 200, duration: 20 * time.Second,
			thinkMin: 5 * time.Millisecond, thinkMax: 50 * time.Millisecond, failures: []bool{false, true}}
	}
	return divergenceConfig{nodes: 8, clients: 16, keys: 500, duration: 30 * time.Second,
		thinkMin: 5 * time.Millisecond, thinkMax: 50 * time.Millisecond, failures: []bool{false, true}}
}

// DivergencePoint is one run of the divergence experiment.
type DivergencePoint struct {
	Experiment string  `json:"experiment"`
	Engine     string  `json:"engine"`
	Failures   bool    `json:"failures"`
	Clients    int     `json:"clients"`
	Keys       int     `json:"keys"`
	DurationS  float64 `json:"duration_s"`
	Reads      int     `json:"reads"` // reads that returned at least one version
	// Versions[i] counts reads that returned i+1 versions, the last 4 or
	// more.
	Versions  [4]int     `json:"versions"`
	Shares    [4]float64 `json:"shares"` // Versions / Reads: 1, 2, 3, 4+
	Empty     int        `json:"empty"`  // reads of carts not written yet (not found)
	Failed    int        `json:"failed"` // reads that failed (quorum, timeout, node down)
	Writes    int        `json:"writes"` // acknowledged writes
	FaultsRun int        `json:"faults"` // crashes and partitions injected
}

func (p *DivergencePoint) count(versions int) {
	p.Reads++
	p.Versions[min(versions, 4)-1]++
}

func (p *DivergencePoint) finish() {
	for i := range p.Shares {
		if p.Reads > 0 {
			p.Shares[i] = float64(p.Versions[i]) / float64(p.Reads)
		}
	}
}

func runDivergence(ctx context.Context, o Options) (string, error) {
	cfg := defaultDivergence(o.Target)
	var pts []DivergencePoint
	for _, f := range cfg.failures {
		var (
			pt  DivergencePoint
			err error
		)
		switch {
		case o.Target.Engine() == "sim":
			pt, err = divergenceSim(o, cfg, f)
		case f && !o.Target.Dev:
			o.logf("divergence: skipping the run with failures: it kills nodes, so it needs --cluster dev")
			continue
		default:
			pt, err = divergenceLive(ctx, o, cfg, f)
		}
		if err != nil {
			return "", err
		}
		o.logf("divergence: failures=%v: %d reads, shares 1/2/3/4+ = %.5f %.5f %.5f %.5f", f, pt.Reads,
			pt.Shares[0], pt.Shares[1], pt.Shares[2], pt.Shares[3])
		if err := o.emit(pt); err != nil {
			return "", err
		}
		pts = append(pts, pt)
	}
	return divergenceChart(o, pts)
}

// divergenceSim runs the workload in the simulator. With failures, a
// fault every 0.5–2 s of virtual time either power-fails a node (back
// after 0.2–2 s) or splits the cluster in two (healed after 0.1–0.5 s).
func divergenceSim(o Options, cfg divergenceConfig, failures bool) (DivergencePoint, error) {
	c, err := sim.New(sim.Config{Seed: o.Seed, Nodes: cfg.nodes, N: 3, R: 2, W: 2})
	if err != nil {
		return DivergencePoint{}, err
	}
	d := newDriver(c, o.Seed)
	pt := DivergencePoint{Experiment: "divergence", Engine: "sim", Failures: failures, Clients: cfg.clients,
		Keys: cfg.keys, DurationS: cfg.duration.Seconds()}
	nodes := c.Nodes()
	think := func() time.Duration {
		return cfg.thinkMin + time.Duration(d.rng.Int64N(int64(cfg.thinkMax-cfg.thinkMin)+1))
	}
	// A request sent to a node that then crashes is never answered (its
	// reply waited for an fsync that never came): a client gives up on
	// it after giveUp, as a real client's timeout would, and moves on.
	const giveUp = 3 * time.Second
	for i := range cfg.clients {
		gen, seq := 0, 0
		var cycle func()
		next := func() {
			gen++
			if now := c.Now(); now < cfg.duration {
				d.c.At(now+think(), cycle)
			}
		}
		guard := func() {
			g := gen
			d.c.At(c.Now()+giveUp, func() {
				if gen == g {
					next()
				}
			})
		}
		cycle = func() {
			g := gen
			k := d.rng.IntN(cfg.keys)
			key := fmt.Appendf(nil, "cart-%d", k)
			d.submit(nodes[d.rng.IntN(len(nodes))], node.Request{Op: node.OpGet, Key: key}, func(r node.Reply, _ time.Duration) {
				if gen != g {
					return // given up on
				}
				switch {
				case r.Code == node.CodeOK && len(r.Siblings) > 0:
					pt.count(len(r.Siblings))
				case r.Code == node.CodeOK || r.Code == node.CodeNotFound:
					pt.Empty++
				default:
					pt.Failed++
					next()
					return
				}
				seq++
				put := node.Request{Op: node.OpPut, Key: key, Value: fmt.Appendf(nil, "c%d-%d", i, seq), Context: r.Context}
				d.submit(nodes[d.rng.IntN(len(nodes))], put, func(w node.Reply, _ time.Duration) {
					if gen != g {
						return
					}
					if w.Code == node.CodeOK {
						pt.Writes++
					}
					next()
				})
				guard()
			})
			guard()
		}
		d.c.At(time.Duration(d.rng.IntN(10))*time.Millisecond, cycle)
	}
	if failures {
		scheduleFaults(d, nodes, cfg.duration, &pt.FaultsRun)
	}
	d.runTo(cfg.duration)
	pt.finish()
	return pt, nil
}

// scheduleFaults injects a fault every 0.5–2 s until end, at most one at a
// time so that a quorum of every preference list stays reachable most of
// the time, as in a data centre where failures are rare and short.
func scheduleFaults(d *driver, nodes []ring.NodeID, end time.Duration, count *int) {
	var fault func()
	fault = func() {
		*count++
		rest := time.Duration(100+d.rng.IntN(400)) * time.Millisecond
		if d.rng.IntN(2) == 0 {
			victim := nodes[d.rng.IntN(len(nodes))]
			d.c.Crash(victim)
			rest = time.Duration(200+d.rng.IntN(1800)) * time.Millisecond
			d.c.At(d.c.Now()+rest, func() { _ = d.c.Restart(victim) })
		} else {
			perm := d.rng.Perm(len(nodes))
			cut := 1 + d.rng.IntN(len(nodes)-1)
			var a, b []ring.NodeID
			for i, p := range perm {
				if i < cut {
					a = append(a, nodes[p])
				} else {
					b = append(b, nodes[p])
				}
			}
			d.c.Partition(a, b)
			d.c.At(d.c.Now()+rest, d.c.Heal)
		}
		if at := d.c.Now() + rest + time.Duration(500+d.rng.IntN(1500))*time.Millisecond; at < end {
			d.c.At(at, fault)
		}
	}
	d.c.At(time.Duration(500+d.rng.IntN(1500))*time.Millisecond, fault)
}

// divergenceLive runs the workload against a real cluster. With failures
// (dev clusters only), every 3–6 s a random node is killed (SIGKILL) and
// restarted 1–3 s later.
func divergenceLive(ctx context.Context, o Options, cfg divergenceConfig, failures bool) (DivergencePoint, error) {
	addrs := o.Target.Addrs
	var dc *devCluster
	if o.Target.Dev {
		o.logf("divergence: starting %d local nodes...", cfg.nodes)
		var err error
		if dc, err = startDev(ctx, o, devcluster.Config{Nodes: cfg.nodes, N: 3, R: 2, W: 2}, ""); err != nil {
			return DivergencePoint{}, err
		}
		defer dc.stop()
		addrs = dc.addrs
	}
	pt := DivergencePoint{Experiment: "divergence", Engine: o.Target.Engine(), Failures: failures, Clients: cfg.clients,
		Keys: cfg.keys, DurationS: cfg.duration.Seconds()}
	runCtx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	// The run's own seed per client keeps key choices independent of
	// scheduling; keys differ per run so the two runs do not share carts.
	prefix := fmt.Sprintf("cart-%d-%v-", o.Seed, failures)
	for i := range cfg.clients {
		cl, err := client.New(addrs, client.WithTimeout(2*time.Second))
		if err != nil {
			return DivergencePoint{}, fmt.Errorf("%w: --cluster: %w", ErrOptions, err)
		}
		rng := rand.New(rand.NewPCG(o.Seed, uint64(i)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; runCtx.Err() == nil; seq++ {
				key := fmt.Sprintf("%s%d", prefix, rng.IntN(cfg.keys))
				v, err := cl.Get(runCtx, key, nil)
				if runCtx.Err() != nil {
					return
				}
				mu.Lock()
				switch {
				case err == nil && len(v.Siblings) > 0:
					pt.count(len(v.Siblings))
				case err == nil || errors.Is(err, client.ErrNotFound):
					pt.Empty++
				default:
					pt.Failed++
				}
				mu.Unlock()
				if err == nil || errors.Is(err, client.ErrNotFound) {
					if _, err := cl.Put(runCtx, key, fmt.Appendf(nil, "c%d-%d", i, seq), &client.PutOptions{Context: v.Context}); err == nil {
						mu.Lock()
						pt.Writes++
						mu.Unlock()
					}
				}
				pause := cfg.thinkMin + time.Duration(rng.Int64N(int64(cfg.thinkMax-cfg.thinkMin)+1))
				select {
				case <-runCtx.Done():
				case <-time.After(pause):
				}
			}
		}()
	}
	var ferr error
	if failures && dc != nil {
		rng := rand.New(rand.NewPCG(o.Seed, 0xfa17))
		for runCtx.Err() == nil {
			if !sleepCtx(runCtx, time.Duration(3000+rng.IntN(3000))*time.Millisecond) {
				break
			}
			victim := dc.c.Nodes[rng.IntN(len(dc.c.Nodes))]
			if err := dc.c.Kill(victim); err != nil {
				ferr = err
				break
			}
			pt.FaultsRun++
			sleepCtx(runCtx, time.Duration(1000+rng.IntN(2000))*time.Millisecond)
			// Restart on the parent context: a node left down would skew
			// nothing more, but the cluster is stopped right after.
			if err := dc.c.Restart(ctx, victim); err != nil {
				ferr = err
				break
			}
		}
	}
	wg.Wait()
	if ferr != nil {
		return DivergencePoint{}, fmt.Errorf("lab: injecting failures: %w", ferr)
	}
	if err := ctx.Err(); err != nil {
		return DivergencePoint{}, err
	}
	pt.finish()
	return pt, nil
}

// sleepCtx sleeps for d or until ctx ends; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func divergenceChart(o Options, pts []DivergencePoint) (string, error) {
	groups := []string{"2 versions", "3 versions", "4+ versions"}
	var ss []barSeries
	for _, p := range pts {
		name := "no failures"
		if p.Failures {
			name = "with failures"
		}
		ss = append(ss, barSeries{
			name:   fmt.Sprintf("%s (1 version: %.3f%% of %d reads)", name, 100*p.Shares[0], p.Reads),
			values: []float64{100 * p.Shares[1], 100 * p.Shares[2], 100 * p.Shares[3]},
		})
	}
	engine := "simulator"
	if len(pts) > 0 && pts[0].Engine != "sim" {
		engine = pts[0].Engine + " cluster"
	}
	path := o.chartPath("divergence")
	return path, barChart(path, "Reads returning divergent versions (shopping cart), "+engine, "% of reads", groups, ss)
}
