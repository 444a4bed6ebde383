package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// NodeInfo is one supervised node as api/nodes lists it.
type NodeInfo struct {
	ID         string `json:"id"`
	Index      int    `json:"index"`
	HTTPAddr   string `json:"http_addr"`
	RPCAddr    string `json:"rpc_addr"`
	GossipAddr string `json:"gossip_addr"`
	PID        int    `json:"pid"`
	Running    bool   `json:"running"`
}

// Controller supervises the node processes behind the dev control API.
// The dashboard knows no supervisor: `dynago dev` (the composition root)
// adapts its devcluster to this interface, so the daemon, which serves the
// per-node dashboard, does not link the process supervisor.
// Restart, Wipe and AddNode return once the node is healthy or ctx ends.
type Controller interface {
	Nodes() []NodeInfo
	Kill(ctx context.Context, id string) error
	Restart(ctx context.Context, id string) error
	Wipe(ctx context.Context, id string) error
	AddNode(ctx context.Context) (NodeInfo, error)
}

// Time limits of the control operations. Restart and wipe wait for the
// node's /healthz (devcluster allows 30 s), so the request gets twice that.
const (
	killTimeout  = 15 * time.Second
	startTimeout = 60 * time.Second
)

// Dev is the dashboard as `dynago dev` serves it; Close ends a running
// benchmark.
type Dev struct {
	http.Handler
	bench *benchRunner
}

// Close stops a running bench preset and waits for it.
func (d *Dev) Close() {
	if d.bench != nil {
		d.bench.stop()
	}
}

// DevHandler is the dashboard as `dynago dev` serves it at the root of
// its own address: the page, api/config, the control API backed by ctl,
// api/bench when ctl implements BenchBinary, and api/node/{id}/...
// proxied to each node's HTTP address.
func DevHandler(ctl Controller) *Dev {
	dev := &Dev{}
	peers := func() []Peer {
		var out []Peer
		for _, n := range ctl.Nodes() {
			out = append(out, Peer{ID: n.ID, HTTPAddr: n.HTTPAddr})
		}
		return out
	}
	resolve := func(id string) (string, bool) { return lookup(peers, id) }
	transport := newTransport()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/config", func(w http.ResponseWriter, r *http.Request) {
		ids := []string{}
		for _, n := range ctl.Nodes() {
			ids = append(ids, n.ID)
		}
		writeJSON(w, http.StatusOK, Config{Mode: "dev", Control: true, Bench: dev.bench != nil, Nodes: ids})
	})
	if bb, ok := ctl.(BenchBinary); ok {
		dev.bench = &benchRunner{binary: bb.Binary(), addrs: func() []string {
			var out []string
			for _, n := range ctl.Nodes() {
				if n.Running {
					out = append(out, n.HTTPAddr)
				}
			}
			return out
		}}
		dev.bench.routes(mux)
	}
	mux.HandleFunc("GET /api/nodes", func(w http.ResponseWriter, r *http.Request) {
		nodes := ctl.Nodes()
		if nodes == nil {
			nodes = []NodeInfo{}
		}
		writeJSON(w, http.StatusOK, nodes)
	})
	mux.HandleFunc("POST /api/nodes", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), startTimeout)
		defer cancel()
		n, err := ctl.AddNode(ctx)
		if err != nil {
			writeControlError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, n)
	})
	action := func(timeout time.Duration, do func(context.Context, string) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			id := r.PathValue("id")
			if !slices.ContainsFunc(ctl.Nodes(), func(n NodeInfo) bool { return n.ID == id }) {
				writeControlError(w, fmt.Errorf("%w: %s", ErrUnknownNode, id))
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), timeout)
			defer cancel()
			if err := do(ctx, id); err != nil {
				writeControlError(w, err)
				return
			}
			for _, n := range ctl.Nodes() {
				if n.ID == id {
					writeJSON(w, http.StatusOK, n)
					return
				}
			}
			writeControlError(w, fmt.Errorf("%w: %s", ErrUnknownNode, id))
		}
	}
	mux.HandleFunc("POST /api/nodes/{id}/kill", action(killTimeout, ctl.Kill))
	mux.HandleFunc("POST /api/nodes/{id}/restart", action(startTimeout, ctl.Restart))
	mux.HandleFunc("POST /api/nodes/{id}/wipe", action(startTimeout, ctl.Wipe))
	mux.HandleFunc("GET /api/events", eventsHandler(peers, &http.Client{Transport: transport}))
	mux.Handle("/api/node/{id}/", newProxy(transport, resolve))
	mux.Handle("/api/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such dashboard endpoint")
	}))
	mux.Handle("/", staticHandler())
	dev.Handler = localOnly(sameOrigin(mux))
	return dev
}

func writeControlError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrUnknownNode):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, "timeout", err.Error())
	default:
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
	}
}
