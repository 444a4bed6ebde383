package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dynago/dynago/api"
	"github.com/dynago/dynago/fault"
)

func init() {
	register(command{name: "fault", summary: "inject latency, loss and partitions (the lab)",
		long: `Injects latency, message loss and partitions into a running cluster.

Rules apply to what a node sends, over node-to-node RPC and gossip alike.
set, show and clear act on --addr, or on every node with --all.`,
		subs: []command{
			{name: "show", summary: "print the fault rules and counters of the node(s)", flags: faultRules("show")},
			{name: "set", summary: "replace the node's rules: --delay DST=SPEC, --loss DST=P, --cut IDS",
				long: `Replaces the node's rules. DST is a node ID or *; SPEC is 10ms,
uniform:5ms-15ms or normal:10ms,2ms; --delay and --loss repeat.`,
				flags: faultRules("set")},
			{name: "clear", summary: "remove every rule", flags: faultRules("clear")},
			{name: "partition", summary: "cut every link between two groups of nodes, both ways: partition IDS --from IDS",
				use: "IDS", nargs: 1, args: "IDS, the comma-separated node IDs on one side",
				flags: faultPartition("partition")},
			{name: "heal", summary: "clear the rules of every node", flags: faultPartition("heal")},
		}})
}

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// faultAddr adds --addr, the node(s) fault asks.
func faultAddr(fs *flag.FlagSet) (*string, *clientSec) {
	return fs.String("addr", envDefault("DYNAGO_ADDR", "127.0.0.1:9101"), "a node's HTTP address; a comma-separated list is tried in turn where the cluster's nodes are looked up (env DYNAGO_ADDR)"),
		clientSecFlags(fs)
}

// faultRules is show, set or clear: one node's rules, or every node's.
func faultRules(sub string) func(fs *flag.FlagSet) runFunc {
	return func(fs *flag.FlagSet) runFunc {
		addr, sec := faultAddr(fs)
		all := fs.Bool("all", false, "act on every node of the cluster")
		var delays, losses multiFlag
		var cut *string
		if sub == "set" {
			fs.Var(&delays, "delay", "`DST=SPEC`: one-way delay SPEC on what the node sends to DST (repeatable)")
			fs.Var(&losses, "loss", "`DST=P`: probability P of losing a message the node sends to DST (repeatable)")
			cut = fs.String("cut", "", "comma-separated node IDs this node cannot reach")
		}
		return func(ctx context.Context, _ []string) error {
			cr, err := sec.resolve()
			if err != nil {
				return err
			}
			var rules *fault.Rules
			method := http.MethodGet
			switch sub {
			case "clear":
				method = http.MethodDelete
			case "set":
				method = http.MethodPut
				r, err := buildRules(delays, losses, *cut)
				if err != nil {
					return fmt.Errorf("%w: %w", errUsage, err)
				}
				rules = &r
			}
			targets := []string{strings.Split(*addr, ",")[0]}
			if *all {
				ids, err := clusterIDsFrom(ctx, cr, *addr)
				if err != nil {
					return err
				}
				targets = targets[:0]
				for _, a := range ids {
					targets = append(targets, a)
				}
				sort.Strings(targets)
			}
			return onEach(sub, targets, func(t string) (string, error) {
				return faultCall(ctx, cr, method, t, rules)
			})
		}
	}
}

// faultPartition is partition or heal: rules on every node of the cluster.
func faultPartition(sub string) func(fs *flag.FlagSet) runFunc {
	return func(fs *flag.FlagSet) runFunc {
		addr, sec := faultAddr(fs)
		var from *string
		if sub == "partition" {
			from = fs.String("from", "", "the other group of node IDs, comma-separated")
		}
		return func(ctx context.Context, pos []string) error {
			cr, err := sec.resolve()
			if err != nil {
				return err
			}
			var a, b []string
			if sub == "partition" {
				if a, b = splitIDs(pos[0]), splitIDs(*from); len(a) == 0 || len(b) == 0 {
					return fmt.Errorf("%w: partition IDS --from IDS", errUsage)
				}
			}
			ids, err := clusterIDsFrom(ctx, cr, *addr)
			if err != nil {
				return err
			}
			rules := map[string]*fault.Rules{}
			var targets []string
			for id := range ids {
				var r fault.Rules
				switch {
				case sub == "heal":
				case contains(a, id):
					r.Cut = b
				case contains(b, id):
					r.Cut = a
				default:
					continue
				}
				rules[id] = &r
				targets = append(targets, id)
			}
			sort.Strings(targets)
			return onEach(sub, targets, func(id string) (string, error) {
				if _, err := faultCall(ctx, cr, http.MethodPut, ids[id], rules[id]); err != nil {
					return "", err
				}
				return fmt.Sprintf("cut %v", rules[id].Cut), nil
			})
		}
	}
}

func buildRules(delays, losses multiFlag, cut string) (fault.Rules, error) {
	var r fault.Rules
	for _, d := range delays {
		dst, spec, ok := strings.Cut(d, "=")
		if !ok {
			return r, fmt.Errorf("--delay %q: want DST=SPEC", d)
		}
		del, err := fault.ParseDelay(spec)
		if err != nil {
			return r, err
		}
		if r.Delay == nil {
			r.Delay = map[string]fault.Delay{}
		}
		r.Delay[dst] = del
	}
	for _, l := range losses {
		dst, p, ok := strings.Cut(l, "=")
		if !ok {
			return r, fmt.Errorf("--loss %q: want DST=P", l)
		}
		f, err := strconv.ParseFloat(p, 64)
		if err != nil {
			return r, fmt.Errorf("--loss %q: %v", l, err)
		}
		if r.Loss == nil {
			r.Loss = map[string]float64{}
		}
		r.Loss[dst] = f
	}
	r.Cut = splitIDs(cut)
	return r, r.Validate()
}

func splitIDs(s string) []string {
	var out []string
	for _, id := range strings.Split(s, ",") {
		if id = strings.TrimSpace(id); id != "" {
			out = append(out, id)
		}
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// faultCall sends one /admin/faults request and returns the compact answer.
func faultCall(ctx context.Context, cr *creds, method, addr string, rules *fault.Rules) (string, error) {
	var body io.Reader
	if rules != nil {
		b, err := json.Marshal(rules)
		if err != nil {
			return "", err
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := cr.do(ctx, method, addr, "/admin/faults", body)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return strings.TrimSpace(string(b)), nil
}

// clusterIDs maps every node of the cluster to its HTTP address.
func clusterIDs(ctx context.Context, cr *creds, addr string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := cr.do(ctx, http.MethodGet, addr, "/cluster", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /cluster answered %s", resp.Status)
	}
	var cl api.Cluster
	if err := json.NewDecoder(resp.Body).Decode(&cl); err != nil {
		return nil, fmt.Errorf("reading /cluster: %w", err)
	}
	out := map[string]string{}
	for _, n := range cl.Nodes {
		if n.HTTPAddr != "" {
			out[string(n.ID)] = n.HTTPAddr
		}
	}
	return out, nil
}

// clusterIDsFrom asks each address of the comma-separated list for the
// cluster's nodes until one answers: the node named first may be the one
// that is down or cut off, which is when faults are cleared.
func clusterIDsFrom(ctx context.Context, cr *creds, addrs string) (map[string]string, error) {
	var errs []error
	for _, a := range strings.Split(addrs, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		ids, err := clusterIDs(ctx, cr, a)
		if err == nil {
			return ids, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", a, err))
	}
	return nil, fmt.Errorf("no node answered: %w", errors.Join(errs...))
}

// onEach runs call for every target at once and prints each outcome, in
// the order of targets. It does not stop at a failure: a heal must reach
// every node it can, and say which it could not.
func onEach(what string, targets []string, call func(target string) (string, error)) error {
	type result struct {
		out string
		err error
	}
	results := make([]result, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := call(t)
			results[i] = result{out, err}
		}()
	}
	wg.Wait()
	var failed []string
	for i, t := range targets {
		if err := results[i].err; err != nil {
			fmt.Fprintf(stderr, "%s: FAILED: %v\n", t, err)
			failed = append(failed, t)
			continue
		}
		fmt.Fprintf(stdout, "%s: %s\n", t, results[i].out)
	}
	if len(failed) > 0 {
		return fmt.Errorf("fault %s failed on %d of %d nodes: %s", what, len(failed), len(targets), strings.Join(failed, ", "))
	}
	return nil
}
