package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/dynago/dynago/fault"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/server"
	"github.com/dynago/dynago/storage/pebbledb"
)

func init() {
	register(command{name: "server", summary: "run a dynago node",
		long: `Runs one dynago node. Every flag defaults to its DYNAGO_* environment
variable, so that containers can be configured either way; an invalid
value refuses to start (exit 2), naming it. Without --certs-dir, a node
refuses to listen beyond loopback unless --insecure is given.`,
		flags: runServer})
}

// runServer declares the daemon's flags, each defaulting to its DYNAGO_*
// environment variable so that containers can be configured either way.
func runServer(fs *flag.FlagSet) runFunc {
	// Defaults come from the core's presets (node/config.go), the one
	// place they are decided; those that differ between presets default to
	// 0 here, which Start replaces with the chosen preset's value.
	def, lab := node.DefaultConfig(), node.LabConfig()
	id := fs.String("id", envDefault("DYNAGO_ID", ""), "node ID, unique in the cluster (env DYNAGO_ID)")
	dataDir := fs.String("data-dir", envDefault("DYNAGO_DATA_DIR", ""), "directory for this node's data (env DYNAGO_DATA_DIR)")
	httpAddr := fs.String("http-addr", envDefault("DYNAGO_HTTP_ADDR", "127.0.0.1:9101"), "HTTP API listen address (env DYNAGO_HTTP_ADDR)")
	rpcAddr := fs.String("rpc-addr", envDefault("DYNAGO_RPC_ADDR", "127.0.0.1:9201"), "node-to-node gRPC listen address (env DYNAGO_RPC_ADDR)")
	gossipAddr := fs.String("gossip-addr", envDefault("DYNAGO_GOSSIP_ADDR", "127.0.0.1:9301"), "gossip (memberlist, UDP and TCP) listen address; an IP literal, bound exactly (env DYNAGO_GOSSIP_ADDR)")
	respAddr := fs.String("resp-addr", envDefault("DYNAGO_RESP_ADDR", ""), "RESP (Redis protocol) listen address for Redis clients and redis-benchmark; empty = off; TLS and AUTH as HTTP (env DYNAGO_RESP_ADDR)")
	advHTTP := fs.String("advertise-http", envDefault("DYNAGO_ADVERTISE_HTTP", ""), "host:port clients and other nodes reach the HTTP API at; default --http-addr, required when that binds every interface (env DYNAGO_ADVERTISE_HTTP)")
	advRPC := fs.String("advertise-rpc", envDefault("DYNAGO_ADVERTISE_RPC", ""), "host:port other nodes reach the gRPC address at; default --rpc-addr, required when that binds every interface (env DYNAGO_ADVERTISE_RPC)")
	advGossip := fs.String("advertise-gossip", envDefault("DYNAGO_ADVERTISE_GOSSIP", ""), "host:port other nodes reach gossip at (a host name is resolved once, at start); default --gossip-addr, required when that binds every interface (env DYNAGO_ADVERTISE_GOSSIP)")
	join := fs.String("join", envDefault("DYNAGO_JOIN", ""), "gossip addresses of existing members to join through, comma-separated; retried until one answers (env DYNAGO_JOIN)")
	clusterName := fs.String("cluster-name", envDefault("DYNAGO_CLUSTER_NAME", "dynago"), "cluster name, on every gossip packet: nodes with different names never merge (env DYNAGO_CLUSTER_NAME)")
	preset := fs.String("preset", envDefault("DYNAGO_PRESET", "default"), "timing preset: default, or lab for fast failure detection and repair (env DYNAGO_PRESET)")
	cluster := fs.String("cluster", envDefault("DYNAGO_CLUSTER", ""), "static membership: id=rpc_addr[/http_addr],... including this node; every node gets the same list (env DYNAGO_CLUSTER)")
	partitions := fs.Int("partitions", envInt("DYNAGO_PARTITIONS", 0), fmt.Sprintf("partitions Q, a power of two, fixed at cluster creation; 0 = the preset's (%d, lab %d) (env DYNAGO_PARTITIONS)", def.Partitions, lab.Partitions))
	n := fs.Int("n", envInt("DYNAGO_N", def.N), "replicas per key (env DYNAGO_N)")
	r := fs.Int("r", envInt("DYNAGO_R", 0), "default read quorum, 1..N; 0 = majority (env DYNAGO_R)")
	w := fs.Int("w", envInt("DYNAGO_W", 0), "default write quorum, 1..N; 0 = majority (env DYNAGO_W)")
	drainTimeout := fs.Duration("drain-timeout", envDuration("DYNAGO_DRAIN_TIMEOUT", 5*time.Second), "on SIGTERM, how long to keep serving with /readyz answering 503 \"draining\" before shutting down, so that load balancers stop sending requests first; a second signal cuts it short (env DYNAGO_DRAIN_TIMEOUT)")
	timeout := fs.Duration("request-timeout", envDuration("DYNAGO_REQUEST_TIMEOUT", def.RequestTimeout), "default request timeout (env DYNAGO_REQUEST_TIMEOUT)")
	maxKey := fs.Int("max-key-size", envInt("DYNAGO_MAX_KEY_SIZE", def.MaxKeySize), "largest key in bytes (env DYNAGO_MAX_KEY_SIZE)")
	maxValue := fs.Int("max-value-size", envInt("DYNAGO_MAX_VALUE_SIZE", def.MaxValueSize), "largest value in bytes (env DYNAGO_MAX_VALUE_SIZE)")
	cache := fs.Int64("cache-size", int64(envInt("DYNAGO_CACHE_SIZE", pebbledb.DefaultCacheSize)), "storage block cache in bytes (env DYNAGO_CACHE_SIZE)")
	memtable := fs.Int64("memtable-size", int64(envInt("DYNAGO_MEMTABLE_SIZE", pebbledb.DefaultMemTableSize)), "storage memtable in bytes, 1 MiB..1 GiB: larger flushes less often, smaller inserts faster and replays a crash's WAL sooner (env DYNAGO_MEMTABLE_SIZE)")
	maxHints := fs.Int64("max-hint-bytes", int64(envInt("DYNAGO_MAX_HINT_BYTES", int(def.MaxHintBytes))), "most bytes of hints this node holds for unreachable nodes; past it, writes that need a hint here fail (the primaries get them by anti-entropy) instead of filling the disk; 0 = no limit (env DYNAGO_MAX_HINT_BYTES)")
	maxInflight := fs.Int("max-inflight", envInt("DYNAGO_MAX_INFLIGHT", server.DefaultMaxInflight), "most client requests (HTTP and RESP) this node answers at once (a request whose client gave up stops counting); past it a request is answered at once with 503 overloaded (RESP: OVERLOADED) and Retry-After, doing nothing, instead of queueing; 0 = no limit (env DYNAGO_MAX_INFLIGHT)")
	lazySync := fs.Duration("lazy-sync-delay", envDuration("DYNAGO_LAZY_SYNC_DELAY", server.DefaultLazySyncDelay), fmt.Sprintf("longest a replica's copy of a W=1 write (which no quorum waits for) waits to join an fsync another write starts before this node starts one for it; its acknowledgement still waits for that fsync; 0 = sync it at once; at most %v (env DYNAGO_LAZY_SYNC_DELAY)", server.MaxLazySyncDelay))
	faultDelay := fs.String("fault-delay", envDefault("DYNAGO_FAULT_DELAY", ""), "lab: one-way delay injected into every message this node sends (RPC and gossip), e.g. 10ms, uniform:5ms-15ms, normal:10ms,2ms; changeable at run time with 'dynago fault' (env DYNAGO_FAULT_DELAY)")
	pprofOn := fs.Bool("pprof", envBool("DYNAGO_PPROF", false), "serve Go's profiler under /debug/pprof/ on the HTTP address (env DYNAGO_PPROF=true)")
	dash := fs.Bool("dashboard", envBool("DYNAGO_DASHBOARD", false), "serve the web dashboard under /dashboard/ on the HTTP address (env DYNAGO_DASHBOARD=true)")
	secFlags := securityFlags(fs)
	lww := fs.Bool("lww", envBool("DYNAGO_LWW", false), "last-write-wins: keep only the newest sibling, silently dropping concurrent writes; every node must agree (env DYNAGO_LWW=true)")
	logLevel := fs.String("log-level", envDefault("DYNAGO_LOG_LEVEL", "info"), "debug, info, warn or error (env DYNAGO_LOG_LEVEL)")
	logJSON := fs.Bool("log-json", envBool("DYNAGO_LOG_JSON", false), "log JSON lines instead of text (env DYNAGO_LOG_JSON=true)")
	return func(ctx context.Context, _ []string) error {
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
		if *memtable < 1<<20 || *memtable > 1<<30 {
			return fmt.Errorf("%w: --memtable-size %d: must be 1 MiB..1 GiB (%d..%d)", errUsage, *memtable, 1<<20, 1<<30)
		}
		if *n < 1 {
			return fmt.Errorf("%w: --n %d: a key needs at least one replica", errUsage, *n)
		}
		if *maxInflight < 0 {
			return fmt.Errorf("%w: --max-inflight %d: must not be negative (0 = no limit)", errUsage, *maxInflight)
		}
		if *maxHints < 0 {
			return fmt.Errorf("%w: --max-hint-bytes %d: must not be negative (0 = no limit)", errUsage, *maxHints)
		}
		if *lazySync < 0 {
			return fmt.Errorf("%w: --lazy-sync-delay %v: must not be negative", errUsage, *lazySync)
		}
		cfg := server.Config{
			ID: ring.NodeID(*id), DataDir: *dataDir, HTTPAddr: *httpAddr, RPCAddr: *rpcAddr, GossipAddr: *gossipAddr,
			Node: node.Config{
				Partitions: *partitions, N: *n, R: *r, W: *w, RequestTimeout: *timeout,
				MaxKeySize: *maxKey, MaxValueSize: *maxValue, LWW: *lww, MaxHintBytes: *maxHints,
			},
			CacheSize: *cache, MemTableSize: *memtable, Logger: logger, Preset: *preset, ClusterName: *clusterName, Pprof: *pprofOn, Dashboard: *dash,
		}
		cfg.Security = secFlags()
		cfg.LazySyncDelay = *lazySync
		if *lazySync == 0 {
			cfg.LazySyncDelay = -1 // Config's zero is the default; the flag's is "at once"
		}
		if *maxHints == 0 {
			cfg.Node.MaxHintBytes = -1 // likewise: the flag's zero is "no limit"
		}
		cfg.MaxInflight = *maxInflight
		if *maxInflight == 0 {
			cfg.MaxInflight = -1
		}
		if *faultDelay != "" {
			d, err := fault.ParseDelay(*faultDelay)
			if err != nil {
				return fmt.Errorf("%w: --fault-delay: %v", errUsage, err)
			}
			cfg.Faults.Delay = map[string]fault.Delay{fault.Any: d}
		}
		cfg.AdvertiseHTTP, cfg.AdvertiseRPC, cfg.AdvertiseGossip = *advHTTP, *advRPC, *advGossip
		cfg.RESPAddr = *respAddr
		for _, j := range strings.Split(*join, ",") {
			if j = strings.TrimSpace(j); j != "" {
				cfg.Join = append(cfg.Join, j)
			}
		}
		if strings.TrimSpace(*cluster) != "" {
			peers, err := server.ParseCluster(*cluster)
			if err != nil {
				return fmt.Errorf("%w: %w", errUsage, err)
			}
			cfg.Cluster = peers
		}
		tuneGC(logger)
		hup := watchSIGHUP()
		srv, err := server.Start(cfg)
		if err != nil {
			signal.Stop(hup)
		}
		if errors.Is(err, server.ErrConfig) {
			// A refused configuration exits 2, as a bad flag does. The
			// command path already names the command: "dynago server:
			// invalid config: ...", not "dynago server: server: ...".
			return usageError{msg: strings.TrimPrefix(err.Error(), "server: ")}
		}
		if err != nil {
			return trimmedError{err: err, prefix: "server: "}
		}
		go reloadOnSIGHUP(ctx, hup, srv, logger)
		notify(logger, daemon.SdNotifyReady+"\nSTATUS=serving "+*id)
		select {
		case <-ctx.Done():
			notify(logger, daemon.SdNotifyStopping+"\nSTATUS=draining for --drain-timeout, then stopping")
			drain(srv, *drainTimeout)
			logger.Info("shutting down", "node", *id)
		case <-srv.Done():
			logger.Error("node stopped itself", "node", *id)
			srv.Close()
			return fmt.Errorf("node stopped after a storage failure")
		}
		return srv.Close()
	}
}

// nodeGCPercent is the garbage collector's target heap growth for a node
// when GOGC is not set. A node's Go heap is small (about 10 MB live under
// load: Pebble's block cache and memtables are allocated outside it), so
// Go's default of 100 % collected about nine times a second on a busy
// node and spent 4 % of its CPU there (measured with GODEBUG=gctrace=1
// under redis-benchmark); at 400 % the heap peaks near 50 MB and the
// collector runs a quarter as often. GOMEMLIMIT, when set, still bounds
// the heap: the runtime then collects sooner as the limit nears.
const nodeGCPercent = 400

// tuneGC applies nodeGCPercent unless the operator chose with GOGC.
func tuneGC(log *slog.Logger) {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	debug.SetGCPercent(nodeGCPercent)
	log.Debug("garbage collector tuned", "gogc", nodeGCPercent)
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
