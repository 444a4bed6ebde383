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

	"github.com/dynago/dynago/fault"
)

func init() {
	register(command{name: "fault", summary: "inject latency, loss and partitions (the lab)", run: runFault})
}

const faultUsage = `fault show|set|clear|partition|heal [flags]

  show                       print the fault rules and counters of the node(s)
  set [--delay DST=SPEC]... [--loss DST=P]... [--cut IDS]
                             replace the node's rules; DST is a node ID or *;
                             SPEC is 10ms, uniform:5ms-15ms or normal:10ms,2ms
  clear                      remove every rule
  partition IDS --from IDS   cut every link between two groups of nodes, both ways
  heal                       clear the rules of every node

Rules apply to what a node sends, over node-to-node RPC and gossip alike.
set, show and clear act on --addr, or on every node with --all.`

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runFault(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", errUsage, faultUsage)
	}
	sub, rest := args[0], args[1:]
	if isHelp(sub) {
		fmt.Fprintln(stdout, faultUsage)
		return nil
	}
	fs := flag.NewFlagSet("fault "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", envDefault("DYNAGO_ADDR", "127.0.0.1:9101"), "a node's HTTP address (env DYNAGO_ADDR)")
	all := fs.Bool("all", false, "act on every node of the cluster")
	var delays, losses multiFlag
	fs.Var(&delays, "delay", "DST=SPEC one-way delay to DST (repeatable)")
	fs.Var(&losses, "loss", "DST=P message loss probability to DST (repeatable)")
	cut := fs.String("cut", "", "comma-separated node IDs this node cannot reach")
	from := fs.String("from", "", "partition: the other group of node IDs")
	fs.Usage = func() { fmt.Fprintln(stderr, faultUsage); fs.PrintDefaults() }
	// partition takes its group before the flags: "partition n1,n2 --from n3".
	var group string
	if sub == "partition" && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		group, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if group == "" {
		group = fs.Arg(0)
	}
	first := strings.Split(*addr, ",")[0]
	switch sub {
	case "show", "clear", "set":
		var rules *fault.Rules
		if sub == "set" {
			r, err := buildRules(delays, losses, *cut)
			if err != nil {
				return fmt.Errorf("%w: %v", errUsage, err)
			}
			rules = &r
		}
		targets := []string{first}
		if *all {
			ids, err := clusterIDsFrom(ctx, *addr)
			if err != nil {
				return err
			}
			targets = targets[:0]
			for _, a := range ids {
				targets = append(targets, a)
			}
			sort.Strings(targets)
		}
		method := http.MethodGet
		switch sub {
		case "clear":
			method = http.MethodDelete
		case "set":
			method = http.MethodPut
		}
		return onEach(sub, targets, func(t string) (string, error) {
			return faultCall(ctx, method, t, rules)
		})
	case "partition", "heal":
		a, b := splitIDs(group), splitIDs(*from)
		if sub == "partition" && (len(a) == 0 || len(b) == 0) {
			return fmt.Errorf("%w: partition IDS --from IDS", errUsage)
		}
		ids, err := clusterIDsFrom(ctx, *addr)
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
			if _, err := faultCall(ctx, http.MethodPut, ids[id], rules[id]); err != nil {
				return "", err
			}
			return fmt.Sprintf("cut %v", rules[id].Cut), nil
		})
	}
	return fmt.Errorf("%w: unknown fault command %q\n%s", errUsage, sub, faultUsage)
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
func faultCall(ctx context.Context, method, addr string, rules *fault.Rules) (string, error) {
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
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+"/admin/faults", body)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
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
func clusterIDs(ctx context.Context, addr string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/cluster", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var cl struct {
		Nodes []struct {
			ID       string `json:"id"`
			HTTPAddr string `json:"http_addr"`
		} `json:"nodes"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&cl); err != nil {
		return nil, fmt.Errorf("reading /cluster: %w", err)
	}
	out := map[string]string{}
	for _, n := range cl.Nodes {
		if n.HTTPAddr != "" {
			out[n.ID] = n.HTTPAddr
		}
	}
	return out, nil
}

// clusterIDsFrom asks each address of the comma-separated list for the
// cluster's nodes until one answers: the node named first may be the one
// that is down or cut off, which is when faults are cleared.
func clusterIDsFrom(ctx context.Context, addrs string) (map[string]string, error) {
	var errs []error
	for _, a := range strings.Split(addrs, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		ids, err := clusterIDs(ctx, a)
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
