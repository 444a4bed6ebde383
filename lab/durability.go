package lab

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/dynago/dynago/client"
	"github.com/dynago/dynago/devcluster"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/sim"
)

// Durability against latency (§6.1). A put is acknowledged once W replicas
// have written it durably: each replica fsyncs its write-ahead log before
// it acknowledges. The experiment measures put latency for W = 1..N with
// fsync on and off. The simulator turns fsync off by making its simulated
// fsync take no time. A node has no flag to skip fsync (acknowledging
// writes it could lose is not an option dynago offers), so a dev target
// runs a second cluster whose data directories are on tmpfs (/dev/shm),
// where fsync returns at once: the same binary and code path, with the
// disk taken out.

type durabilityConfig struct {
	nodes, n int
	requests int // per W and fsync setting
	rate     float64
	shm      string // tmpfs directory for the fsync-off dev cluster
}

func defaultDurability(t Target) durabilityConfig {
	if t.Engine() != "sim" {
		return durabilityConfig{nodes: 5, n: 3, requests: 1000, rate: 200, shm: "/dev/shm"}
	}
	return durabilityConfig{nodes: 8, n: 3, requests: 3000, rate: 1000}
}

// DurabilityPoint is one W and fsync setting.
type DurabilityPoint struct {
	Experiment string `json:"experiment"`
	Engine     string `json:"engine"`
	Fsync      string `json:"fsync"` // on, off, or deployed (a cluster as it runs)
	W          int    `json:"w"`
	N          int    `json:"n"`
	Latency
}

func durPoint(engine, fsync string, w, n int, t *tally) DurabilityPoint {
	return DurabilityPoint{Experiment: "durability-latency", Engine: engine, Fsync: fsync, W: w, N: n, Latency: t.latency()}
}

func runDurability(ctx context.Context, o Options) (string, error) {
	cfg := defaultDurability(o.Target)
	pts, err := onEngine(ctx, o, cfg, durabilitySim, durabilityLive)
	if err != nil {
		return "", err
	}
	return durabilityChart(o, pts)
}

// durabilitySim: the simulator's network (1–5 ms one way) and, with fsync
// on, its disk (each fsync 0.5–2 ms, one at a time per node).
func durabilitySim(ctx context.Context, o Options, cfg durabilityConfig) ([]DurabilityPoint, error) {
	var pts []DurabilityPoint
	for _, fsync := range []string{"on", "off"} {
		sc := sim.Config{Seed: o.Seed, Nodes: cfg.nodes, N: cfg.n, R: 1, W: 1}
		if fsync == "off" {
			sc.Fsync = sim.Fixed(0)
		}
		c, err := sim.New(sc)
		if err != nil {
			return nil, err
		}
		d := newDriver(c, o.Seed)
		for w := 1; w <= cfg.n; w++ {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			t := newTally()
			err := d.paced(t, cfg.requests, cfg.rate, func(i int) (ring.NodeID, node.Request) {
				// Client-driven, so that forwarding does not blur what W
				// and the disk cost.
				key := fmt.Appendf(nil, "dur-%d-%d", w, i)
				return d.preferenceList(key)[0], node.Request{Op: node.OpPut, Key: key, Value: []byte("v"), W: w}
			})
			if err != nil {
				return nil, err
			}
			p := durPoint("sim", fsync, w, cfg.n, t)
			if err := emitDur(o, p); err != nil {
				return nil, err
			}
			pts = append(pts, p)
		}
	}
	return pts, nil
}

func emitDur(o Options, p DurabilityPoint) error {
	o.logf("durability-latency: fsync %s W=%d: p50 %.2f ms, p99.9 %.2f ms, %d errors", p.Fsync, p.W, p.P50MS, p.P999MS, p.Errors)
	return o.emit(p)
}

func durabilityLive(ctx context.Context, o Options, cfg durabilityConfig) ([]DurabilityPoint, error) {
	if !o.Target.Dev {
		info, err := members(ctx, o.Target.Addrs)
		if err != nil {
			return nil, err
		}
		return durabilityLiveOne(ctx, o, cfg, o.Target.Addrs, "deployed", info.N)
	}
	var pts []DurabilityPoint
	for _, fsync := range []string{"on", "off"} {
		root := "" // the system's temp directory: a disk, where fsync waits for it
		if fsync == "off" {
			if st, err := os.Stat(cfg.shm); err != nil || !st.IsDir() {
				return nil, fmt.Errorf("%w: fsync off needs tmpfs at %s", ErrOptions, cfg.shm)
			}
			root = cfg.shm
		}
		o.logf("durability-latency: starting %d local nodes (fsync %s)...", cfg.nodes, fsync)
		dc, err := startDev(ctx, o, devcluster.Config{Nodes: cfg.nodes, N: cfg.n, R: 1, W: 1}, root)
		if err != nil {
			return nil, err
		}
		got, err := durabilityLiveOne(ctx, o, cfg, dc.addrs, fsync, cfg.n)
		dc.stop()
		if err != nil {
			return nil, err
		}
		pts = append(pts, got...)
	}
	return pts, nil
}

func durabilityLiveOne(ctx context.Context, o Options, cfg durabilityConfig, addrs []string, fsync string, n int) ([]DurabilityPoint, error) {
	cl, err := client.New(addrs, client.WithRouting(), client.WithTimeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("%w: --cluster: %w", ErrOptions, err)
	}
	warmUp(ctx, cl, cfg.rate, 2*time.Second)
	var pts []DurabilityPoint
	for w := 1; w <= n; w++ {
		t := newTally()
		openLoop(ctx, cfg.rate, time.Duration(float64(cfg.requests)/cfg.rate*float64(time.Second)), 64, func(ctx context.Context, i int) {
			key := fmt.Sprintf("dur-%d-%s-%d-%d", o.Seed, fsync, w, i)
			t.timed(func() error {
				_, err := cl.Put(ctx, key, []byte("v"), &client.PutOptions{W: w})
				return err
			})
		})
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p := durPoint(o.Target.Engine(), fsync, w, n, t)
		if err := emitDur(o, p); err != nil {
			return nil, err
		}
		pts = append(pts, p)
	}
	return pts, nil
}

func durabilityChart(o Options, pts []DurabilityPoint) (string, error) {
	var ss []series
	for _, fsync := range []string{"on", "off", "deployed"} {
		for _, q := range []struct {
			name string
			f    func(DurabilityPoint) float64
		}{{"p50", func(p DurabilityPoint) float64 { return p.P50MS }}, {"p99.9", func(p DurabilityPoint) float64 { return p.P999MS }}} {
			s := series{name: fmt.Sprintf("fsync %s, %s", fsync, q.name)}
			for _, p := range pts {
				if p.Fsync == fsync {
					s.xs = append(s.xs, float64(p.W))
					s.ys = append(s.ys, q.f(p))
				}
			}
			if len(s.xs) > 0 {
				ss = append(ss, s)
			}
		}
	}
	engine := "simulator"
	if len(pts) > 0 && pts[0].Engine != "sim" {
		engine = pts[0].Engine + " cluster"
	}
	path := o.chartPath("durability-latency")
	return path, lineChart(path, "Put latency against W, fsync on and off, "+engine, "W (replicas that must acknowledge)", "put latency (ms)", false, ss)
}
