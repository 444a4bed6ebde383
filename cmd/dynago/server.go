package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/dynago/dynago/fault"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/server"
)

func init() {
	register(command{name: "server", summary: "run a dynago node", run: runServer})
}

// serverFlags binds the daemon's flags, each defaulting to its DYNAGO_*
// environment variable so that containers can be configured either way.
func runServer(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	id := fs.String("id", envDefault("DYNAGO_ID", ""), "node ID, unique in the cluster (env DYNAGO_ID)")
	dataDir := fs.String("data-dir", envDefault("DYNAGO_DATA_DIR", ""), "directory for this node's data (env DYNAGO_DATA_DIR)")
	httpAddr := fs.String("http-addr", envDefault("DYNAGO_HTTP_ADDR", "127.0.0.1:9101"), "HTTP API listen address (env DYNAGO_HTTP_ADDR)")
	rpcAddr := fs.String("rpc-addr", envDefault("DYNAGO_RPC_ADDR", "127.0.0.1:9201"), "node-to-node gRPC listen address (env DYNAGO_RPC_ADDR)")
	gossipAddr := fs.String("gossip-addr", envDefault("DYNAGO_GOSSIP_ADDR", "127.0.0.1:9301"), "gossip (memberlist, UDP and TCP) listen address; an IP literal, bound exactly (env DYNAGO_GOSSIP_ADDR)")
	advHTTP := fs.String("advertise-http", envDefault("DYNAGO_ADVERTISE_HTTP", ""), "host:port clients and other nodes reach the HTTP API at; default --http-addr, required when that binds every interface (env DYNAGO_ADVERTISE_HTTP)")
	advRPC := fs.String("advertise-rpc", envDefault("DYNAGO_ADVERTISE_RPC", ""), "host:port other nodes reach the gRPC address at; default --rpc-addr, required when that binds every interface (env DYNAGO_ADVERTISE_RPC)")
	advGossip := fs.String("advertise-gossip", envDefault("DYNAGO_ADVERTISE_GOSSIP", ""), "host:port other nodes reach gossip at (a host name is resolved once, at start); default --gossip-addr, required when that binds every interface (env DYNAGO_ADVERTISE_GOSSIP)")
	join := fs.String("join", envDefault("DYNAGO_JOIN", ""), "gossip addresses of existing members to join through, comma-separated; retried until one answers (env DYNAGO_JOIN)")
	clusterName := fs.String("cluster-name", envDefault("DYNAGO_CLUSTER_NAME", "dynago"), "cluster name, on every gossip packet: nodes with different names never merge (env DYNAGO_CLUSTER_NAME)")
	preset := fs.String("preset", envDefault("DYNAGO_PRESET", "default"), "timing preset: default, or lab for fast failure detection and repair (env DYNAGO_PRESET)")
	cluster := fs.String("cluster", envDefault("DYNAGO_CLUSTER", ""), "static membership: id=rpc_addr[/http_addr],... including this node; every node gets the same list (env DYNAGO_CLUSTER)")
	partitions := fs.Int("partitions", envInt("DYNAGO_PARTITIONS", 64), "partitions Q, a power of two, fixed at cluster creation (env DYNAGO_PARTITIONS)")
	n := fs.Int("n", envInt("DYNAGO_N", 3), "replicas per key (env DYNAGO_N)")
	r := fs.Int("r", envInt("DYNAGO_R", 0), "default read quorum, 1..N; 0 = majority (env DYNAGO_R)")
	w := fs.Int("w", envInt("DYNAGO_W", 0), "default write quorum, 1..N; 0 = majority (env DYNAGO_W)")
	drainTimeout := fs.Duration("drain-timeout", envDuration("DYNAGO_DRAIN_TIMEOUT", 5*time.Second), "on SIGTERM, how long to keep serving with /readyz answering 503 \"draining\" before shutting down, so that load balancers stop sending requests first; a second signal cuts it short (env DYNAGO_DRAIN_TIMEOUT)")
	timeout := fs.Duration("request-timeout", envDuration("DYNAGO_REQUEST_TIMEOUT", 5*time.Second), "default request timeout (env DYNAGO_REQUEST_TIMEOUT)")
	maxKey := fs.Int("max-key-size", envInt("DYNAGO_MAX_KEY_SIZE", 1<<10), "largest key in bytes (env DYNAGO_MAX_KEY_SIZE)")
	maxValue := fs.Int("max-value-size", envInt("DYNAGO_MAX_VALUE_SIZE", 1<<20), "largest value in bytes (env DYNAGO_MAX_VALUE_SIZE)")
	cache := fs.Int64("cache-size", int64(envInt("DYNAGO_CACHE_SIZE", 64<<20)), "storage block cache in bytes (env DYNAGO_CACHE_SIZE)")
	faultDelay := fs.String("fault-delay", envDefault("DYNAGO_FAULT_DELAY", ""), "lab: one-way delay injected into every message this node sends (RPC and gossip), e.g. 10ms, uniform:5ms-15ms, normal:10ms,2ms; changeable at run time with 'dynago fault' (env DYNAGO_FAULT_DELAY)")
	pprofOn := fs.Bool("pprof", envBool("DYNAGO_PPROF", false), "serve Go's profiler under /debug/pprof/ on the HTTP address (env DYNAGO_PPROF=true)")
	dash := fs.Bool("dashboard", envBool("DYNAGO_DASHBOARD", false), "serve the web dashboard under /dashboard/ on the HTTP address (env DYNAGO_DASHBOARD=true)")
	secFlags := securityFlags(fs)
	lww := fs.Bool("lww", envBool("DYNAGO_LWW", false), "last-write-wins: keep only the newest sibling, silently dropping concurrent writes; every node must agree (env DYNAGO_LWW=true)")
	logLevel := fs.String("log-level", envDefault("DYNAGO_LOG_LEVEL", "info"), "debug, info, warn or error (env DYNAGO_LOG_LEVEL)")
	logJSON := fs.Bool("log-json", envBool("DYNAGO_LOG_JSON", false), "log JSON lines instead of text (env DYNAGO_LOG_JSON=true)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("%w: --log-level: %v", errUsage, err)
	}
	hopts := &slog.HandlerOptions{Level: level}
	var logger *slog.Logger
	if *logJSON {
		logger = slog.New(slog.NewJSONHandler(os.Stderr, hopts))
	} else {
		logger = slog.New(slog.NewTextHandler(os.Stderr, hopts))
	}
	cfg := server.Config{
		ID: ring.NodeID(*id), DataDir: *dataDir, HTTPAddr: *httpAddr, RPCAddr: *rpcAddr, GossipAddr: *gossipAddr,
		Partitions: *partitions, N: *n, R: *r, W: *w, RequestTimeout: *timeout,
		MaxKeySize: *maxKey, MaxValueSize: *maxValue, CacheSize: *cache, Logger: logger, Preset: *preset, ClusterName: *clusterName, Pprof: *pprofOn, Dashboard: *dash,
		LWW: *lww,
	}
	cfg.Security = secFlags()
	if *faultDelay != "" {
		d, err := fault.ParseDelay(*faultDelay)
		if err != nil {
			return fmt.Errorf("%w: --fault-delay: %v", errUsage, err)
		}
		cfg.Faults.Delay = map[string]fault.Delay{fault.Any: d}
	}
	cfg.AdvertiseHTTP, cfg.AdvertiseRPC, cfg.AdvertiseGossip = *advHTTP, *advRPC, *advGossip
	for _, j := range strings.Split(*join, ",") {
		if j = strings.TrimSpace(j); j != "" {
			cfg.Join = append(cfg.Join, j)
		}
	}
	if strings.TrimSpace(*cluster) != "" {
		peers, err := server.ParseCluster(*cluster)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		cfg.Cluster = peers
	}
	srv, err := server.Start(cfg)
	if err != nil {
		return err
	}
	go reloadOnSIGHUP(ctx, srv, logger)
	select {
	case <-ctx.Done():
		drain(srv, *drainTimeout)
		logger.Info("shutting down")
	case <-srv.Done():
		logger.Error("node stopped itself")
		srv.Close()
		return fmt.Errorf("node stopped after a storage failure")
	}
	return srv.Close()
}

// drain keeps the node serving, marked not ready, for up to d after the
// first shutdown signal; a second SIGINT or SIGTERM ends it at once.
func drain(srv *server.Server, d time.Duration) {
	if d <= 0 {
		return
	}
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	srv.Drain()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-again:
	case <-srv.Done():
	}
}
