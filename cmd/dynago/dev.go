package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/dynago/dynago/dashboard"
	"github.com/dynago/dynago/devcluster"
	"github.com/dynago/dynago/fault"
	"github.com/dynago/dynago/node"
)

func init() {
	register(command{name: "dev", summary: "run a local cluster of separate server processes",
		long: `Starts a local cluster of separate 'dynago server' processes (this binary)
on 127.0.0.1, serves the dashboard, and stops them on Ctrl-C.`,
		flags: runDev})
}

func runDev(fs *flag.FlagSet) runFunc {
	var cfg devcluster.Config
	fs.IntVar(&cfg.Nodes, "nodes", 5, "number of nodes")
	fs.IntVar(&cfg.HTTPBasePort, "http-base-port", 9101, "node i (1-based) serves HTTP on this port + i - 1")
	fs.IntVar(&cfg.RPCBasePort, "rpc-base-port", 0, "node i listens for gRPC on this port + i - 1 (default http-base-port + 100)")
	fs.IntVar(&cfg.GossipBasePort, "gossip-base-port", 0, "node i gossips on this port + i - 1 (default http-base-port + 200)")
	fs.IntVar(&cfg.RESPBasePort, "resp-base-port", 0, "node i serves RESP (Redis clients, redis-benchmark) on this port + i - 1; 0 = no RESP")
	lab := node.LabConfig() // the nodes run the lab preset
	fs.IntVar(&cfg.Partitions, "partitions", lab.Partitions, "partitions Q, a power of two")
	fs.IntVar(&cfg.N, "n", lab.N, "replicas per key")
	fs.IntVar(&cfg.R, "r", 0, "default read quorum (default: majority of N)")
	fs.IntVar(&cfg.W, "w", 0, "default write quorum (default: majority of N)")
	fs.StringVar(&cfg.ClusterName, "cluster-name", "", "every node's --cluster-name (default dev-<http-base-port>, so two local clusters never merge)")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "parent directory of the nodes' data (default: a fresh temp directory, deleted on exit unless --keep)")
	keep := fs.Bool("keep", false, "keep the data directory on exit")
	latency := fs.String("latency", "", "inject this one-way delay into every message between nodes, e.g. 10ms, uniform:5ms-15ms, normal:10ms,2ms")
	dashAddr := fs.String("dashboard-addr", "127.0.0.1:9100", "serve the dashboard and its control API on this address (port 0: any free port; empty: no dashboard)")
	quiet := fs.Bool("quiet", false, "do not echo node logs (they are always written to <data-dir>/<node>.log)")
	secure := fs.Bool("secure", false, "TLS everywhere: a CA, node and client (root, admin) certificates and a gossip key in <data-dir>/certs; no dashboard")
	return func(ctx context.Context, _ []string) error {
		if !*quiet {
			cfg.Logs = os.Stderr
		}
		if *latency != "" {
			if _, err := fault.ParseDelay(*latency); err != nil {
				return fmt.Errorf("%w: --latency: %v", errUsage, err)
			}
			cfg.ExtraArgs = append(cfg.ExtraArgs, "--fault-delay", *latency)
		}
		if err := cfg.Check(); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		userDir := cfg.DataDir != ""
		if *secure {
			cleanup, err := secureDev(&cfg)
			if err != nil {
				return err
			}
			defer cleanup(*keep)
			*dashAddr = "" // the dashboard speaks plain HTTP to the nodes
		}
		// Listen before starting nodes so a busy dashboard port fails at once,
		// not after the cluster came up.
		var ln net.Listener
		if *dashAddr != "" {
			var err error
			if ln, err = net.Listen("tcp", *dashAddr); err != nil {
				return fmt.Errorf("dev: dashboard address: %w", err)
			}
		}
		fmt.Fprintf(stdout, "starting %d dynago nodes...\n", cfg.Nodes)
		c, err := devcluster.Start(ctx, cfg)
		if err != nil {
			if ln != nil {
				ln.Close()
			}
			return err
		}
		var stopDashboard func()
		dashURL := ""
		if ln != nil {
			stopDashboard = serveDashboard(ln, c)
			dashURL = "http://" + ln.Addr().String() + "/"
		}
		printCluster(os.Stdout, c, *keep || userDir, dashURL)
		<-ctx.Done()
		if stopDashboard != nil {
			stopDashboard()
		}
		fmt.Println("\nstopping nodes...")
		c.Cleanup(*keep)
		if *keep || userDir {
			fmt.Printf("data kept in %s\n", c.DataDir)
		}
		return nil
	}
}

func printCluster(w io.Writer, c *devcluster.Cluster, kept bool, dashURL string) {
	fmt.Fprintf(w, "\ndynago dev cluster: %d nodes, data in %s", len(c.Nodes), c.DataDir)
	if !kept {
		fmt.Fprint(w, " (deleted on exit; --keep to keep it)")
	}
	fmt.Fprintln(w)
	for _, n := range c.Nodes {
		fmt.Fprintf(w, "  %-4s %-28s rpc %-21s pid %d", n.ID, cmp.Or(n.URL, "http://"+n.HTTPAddr), n.RPCAddr, n.PID())
		if n.RESPAddr != "" {
			fmt.Fprintf(w, "  resp %s", n.RESPAddr)
		}
		fmt.Fprintln(w)
	}
	if dashURL != "" {
		// Tests parse this line to find the dashboard: keep its form.
		fmt.Fprintf(w, "\ndashboard: %s\n", dashURL)
	}
	if c.Scheme() == "https" {
		printSecureTry(w, c)
		fmt.Fprintf(w, "\nPress Ctrl-C to stop.\n")
		return
	}
	first := c.Nodes[0].HTTPAddr
	fmt.Fprintf(w, "\nTry:\n  curl -X PUT --data hello http://%s/kv/greeting\n  curl http://%s/kv/greeting\n  go run ./cmd/dynago status --addr %s\n\nPress Ctrl-C to stop.\n", first, first, first)
}

// serveDashboard serves the dashboard and the dev control API on ln and
// returns the function that stops it.
func serveDashboard(ln net.Listener, c *devcluster.Cluster) (stop func()) {
	dev := dashboard.DevHandler(devController(c))
	srv := &http.Server{
		Handler:           dev,
		ReadHeaderTimeout: 10 * time.Second,
		// No WriteTimeout: event streams stay open, and restart answers
		// only when the node is healthy again.
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "dashboard: %v\n", err)
		}
	}()
	return func() {
		dev.Close()
		// Event streams never go idle, so a graceful shutdown would wait
		// out its whole timeout; give ordinary requests a moment, then close.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
		<-done
	}
}

// devController adapts a devcluster.Cluster to dashboard.Controller. It
// lives here, where both are built, so that package dashboard (which the
// daemon links) does not import the process supervisor. Operations are
// serialised: two clicks restarting one node at once would otherwise launch
// two processes on the same ports and data directory.
func devController(c *devcluster.Cluster) dashboard.Controller { return &devControl{c: c} }

type devControl struct {
	mu sync.Mutex
	c  *devcluster.Cluster
}

// Binary implements dashboard.BenchBinary: bench presets run the nodes' binary.
func (d *devControl) Binary() string { return d.c.Binary() }

func (d *devControl) Nodes() []dashboard.NodeInfo {
	var out []dashboard.NodeInfo
	for _, n := range d.c.List() {
		out = append(out, nodeInfo(n))
	}
	return out
}

func nodeInfo(n *devcluster.Node) dashboard.NodeInfo {
	return dashboard.NodeInfo{ID: n.ID, Index: n.Index, HTTPAddr: n.HTTPAddr, RPCAddr: n.RPCAddr,
		GossipAddr: n.GossipAddr, PID: n.PID(), Running: n.Running()}
}

func (d *devControl) find(id string) (*devcluster.Node, error) {
	for _, n := range d.c.List() {
		if n.ID == id {
			return n, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", dashboard.ErrUnknownNode, id)
}

func (d *devControl) do(id string, f func(*devcluster.Node) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, err := d.find(id)
	if err != nil {
		return err
	}
	return f(n)
}

func (d *devControl) Kill(_ context.Context, id string) error {
	return d.do(id, d.c.Kill)
}

func (d *devControl) Restart(ctx context.Context, id string) error {
	return d.do(id, func(n *devcluster.Node) error { return d.c.Restart(ctx, n) })
}

func (d *devControl) Wipe(ctx context.Context, id string) error {
	return d.do(id, func(n *devcluster.Node) error { return d.c.Wipe(ctx, n) })
}

func (d *devControl) AddNode(ctx context.Context) (dashboard.NodeInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, err := d.c.AddNode(ctx)
	if n == nil {
		return dashboard.NodeInfo{}, err
	}
	return nodeInfo(n), err
}
