package lab

import (
	"context"
	"fmt"
	"time"

	"github.com/dynago/dynago/client"
	"github.com/dynago/dynago/devcluster"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/sim"
)

// Coordination (§6.4, Table 2). Server-driven: each request enters at a
// random node, which forwards a write to the key's coordinator when it is
// not in the preference list. Client-driven: the client knows the ring
// and sends each request to the first node of the key's preference list,
// as client.WithRouting does. The same puts, then gets of the keys put,
// run both ways at a fixed rate.

type coordinationConfig struct {
	nodes    int
	requests int     // per route and operation
	rate     float64 // requests per second
}

func defaultCoordination(t Target) coordinationConfig {
	if t.Engine() != "sim" {
		return coordinationConfig{nodes: 5, requests: 1000, rate: 200}
	}
	return coordinationConfig{nodes: 8, requests: 5000, rate: 1000}
}

// CoordinationPoint is one route and operation.
type CoordinationPoint struct {
	Experiment string `json:"experiment"`
	Engine     string `json:"engine"`
	Route      string `json:"route"` // server (random entry node) or client (preference list)
	Op         string `json:"op"`    // put or get
	Latency
	FirstError string `json:"first_error,omitempty"`
}

func coordPoint(engine, route, op string, t *tally) CoordinationPoint {
	return CoordinationPoint{Experiment: "coordination", Engine: engine, Route: route, Op: op, Latency: t.latency(), FirstError: t.first}
}

func runCoordination(ctx context.Context, o Options) (string, error) {
	cfg := defaultCoordination(o.Target)
	pts, err := onEngine(ctx, o, cfg, coordinationSim, coordinationLive)
	if err != nil {
		return "", err
	}
	for _, p := range pts {
		o.logf("coordination: %s-driven %s: mean %.2f ms, p99.9 %.2f ms, %d errors", p.Route, p.Op, p.MeanMS, p.P999MS, p.Errors)
		if err := o.emit(p); err != nil {
			return "", err
		}
	}
	return coordinationChart(o, pts)
}

// coordinationSim runs on the simulator's default network (one-way delays
// uniform in 1–5 ms) and disk (fsync 0.5–2 ms). The client's own leg to
// the entry node is not simulated: it is the same both ways.
func coordinationSim(ctx context.Context, o Options, cfg coordinationConfig) ([]CoordinationPoint, error) {
	c, err := sim.New(sim.Config{Seed: o.Seed, Nodes: cfg.nodes, N: 3, R: 2, W: 2})
	if err != nil {
		return nil, err
	}
	d := newDriver(c, o.Seed)
	nodes := c.Nodes()
	var pts []CoordinationPoint
	for _, route := range []string{"server", "client"} {
		keys := make([][]byte, cfg.requests)
		for i := range keys {
			keys[i] = fmt.Appendf(nil, "coord-%s-%d", route, i)
		}
		for _, op := range []node.Op{node.OpPut, node.OpGet} {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			t := newTally()
			err := d.paced(t, len(keys), cfg.rate, func(i int) (ring.NodeID, node.Request) {
				var via ring.NodeID
				if route == "client" {
					via = d.preferenceList(keys[i])[0]
				} else {
					via = nodes[d.rng.IntN(len(nodes))]
				}
				req := node.Request{Op: op, Key: keys[i]}
				if op == node.OpPut {
					req.Value = []byte("v")
				}
				return via, req
			})
			if err != nil {
				return nil, err
			}
			pts = append(pts, coordPoint("sim", route, op.String(), t))
		}
	}
	return pts, nil
}

// coordinationLive runs against a real cluster: server-driven requests go
// round-robin over every member's address, client-driven ones through
// client.WithRouting.
func coordinationLive(ctx context.Context, o Options, cfg coordinationConfig) ([]CoordinationPoint, error) {
	addrs := o.Target.Addrs
	if o.Target.Dev {
		o.logf("coordination: starting %d local nodes...", cfg.nodes)
		dc, err := startDev(ctx, o, devcluster.Config{Nodes: cfg.nodes, N: 3, R: 2, W: 2}, "")
		if err != nil {
			return nil, err
		}
		defer dc.stop()
		addrs = dc.addrs
	} else if info, err := members(ctx, addrs); err == nil {
		// Server-driven requests should enter at every node, not only
		// the ones named on the command line.
		addrs = nil
		for _, n := range info.Nodes {
			addrs = append(addrs, n.HTTPAddr)
		}
	} else {
		return nil, err
	}
	// The two routes take turns request by request rather than running
	// one after the other, so that both see the same moments of a shared
	// machine's contention and the comparison stays fair.
	routes := []string{"server", "client"}
	clients := map[string]*client.Client{}
	for _, route := range routes {
		opts := []client.Option{client.WithTimeout(5 * time.Second)}
		if route == "client" {
			opts = append(opts, client.WithRouting())
		}
		cl, err := client.New(addrs, opts...)
		if err != nil {
			return nil, fmt.Errorf("%w: --cluster: %w", ErrOptions, err)
		}
		warmUp(ctx, cl, cfg.rate, 2*time.Second)
		clients[route] = cl
	}
	var pts []CoordinationPoint
	for _, op := range []string{"put", "get"} {
		tallies := map[string]*tally{"server": newTally(), "client": newTally()}
		openLoop(ctx, 2*cfg.rate, time.Duration(float64(cfg.requests)/cfg.rate*float64(time.Second)), 64, func(ctx context.Context, i int) {
			route := routes[i%2]
			key := fmt.Sprintf("coord-%d-%s-%d", o.Seed, route, i/2)
			cl := clients[route]
			tallies[route].timed(func() error {
				var err error
				if op == "put" {
					_, err = cl.Put(ctx, key, []byte("v"), nil)
				} else {
					_, err = cl.Get(ctx, key, nil)
				}
				return err
			})
		})
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for _, route := range routes {
			pts = append(pts, coordPoint(o.Target.Engine(), route, op, tallies[route]))
		}
	}
	return pts, nil
}

func coordinationChart(o Options, pts []CoordinationPoint) (string, error) {
	groups := []string{"read mean", "write mean", "read p99.9", "write p99.9"}
	var ss []barSeries
	for _, route := range []string{"server", "client"} {
		s := barSeries{name: route + "-driven", values: make([]float64, 4)}
		for _, p := range pts {
			if p.Route != route {
				continue
			}
			col := 0
			if p.Op == "put" {
				col = 1
			}
			s.values[col], s.values[col+2] = p.MeanMS, p.P999MS
		}
		ss = append(ss, s)
	}
	engine := "simulator"
	if len(pts) > 0 && pts[0].Engine != "sim" {
		engine = pts[0].Engine + " cluster"
	}
	path := o.chartPath("coordination")
	return path, barChart(path, "Server-driven against client-driven coordination, "+engine, "latency (ms)", groups, ss)
}
