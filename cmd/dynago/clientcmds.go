package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dynago/dynago/api"
	"github.com/dynago/dynago/client"
	"github.com/dynago/dynago/ring"
)

// The client commands: put, get, del, status and where. They talk to a
// cluster through package client, like any application would.

func init() {
	register(command{name: "put", summary: "store a value: put KEY VALUE (or - for stdin)", use: "KEY VALUE", nargs: 2, args: "KEY and VALUE",
		long: `Stores VALUE (or, when VALUE is -, everything read from stdin) under KEY and
prints the context of the new version. Without --context the write is
blind: values already stored stay, as siblings of this one.`,
		exit: exitStatus, flags: runPut})
	register(command{name: "get", summary: "read a key's value or siblings and its context", use: "KEY", nargs: 1, args: "KEY",
		long: `Prints KEY's value, or each of its siblings as "sibling N: VALUE" when
concurrent writes left several, then "context: TOKEN". Pass the token to
put --context to supersede what was read. A missing or deleted key exits 1
(with the tombstone's context printed when there is one).`,
		exit: exitStatus, flags: runGet})
	register(command{name: "del", summary: "delete a key", use: "KEY", nargs: 1, args: "KEY",
		long: `Deletes KEY. Without --context, del first reads KEY and deletes every
sibling it read; a delete carrying no context at all would leave them
standing. A key that is already missing or deleted exits 1.`,
		exit: exitStatus, flags: runDel})
	register(command{name: "status", summary: "show the cluster's nodes, ring version and N/R/W",
		long: `Prints the cluster as the node asked sees it: ring version, N/R/W,
partitions, and every node with its HTTP address, liveness and the number
of partitions it owns.`,
		exit: exitStatus, flags: runStatus})
	register(command{name: "where", summary: "show a key's partition, preference list and fallbacks", use: "KEY", nargs: 1, args: "KEY",
		long: `Prints KEY's partition, its preference list (the N nodes that hold it,
coordinator candidates first) and its fallbacks (where writes go while
primaries are unreachable).`,
		exit: exitStatus, flags: runWhere})
}

// Where the client commands read and write; tests replace them.
var (
	stdin  io.Reader = os.Stdin
	stdout io.Writer = os.Stdout
	stderr io.Writer = os.Stderr
)

// errNotFound is returned by get and del for a missing or deleted key, so
// that the process exits 1.
var errNotFound = errors.New("not found")

const defaultAddr = "127.0.0.1:9101"

const exitStatus = `
Exit status: 0 on success; 1 on failure, and when the key is not found
(get, del); 2 on bad usage.
`

// clientFlagSet adds the flags every client command takes to fs, and
// returns the function that builds the client from them once parsed.
func clientFlagSet(fs *flag.FlagSet) func() (*client.Client, error) {
	addr := fs.String("addr", envDefault("DYNAGO_ADDR", defaultAddr),
		"comma-separated HTTP addresses of nodes to ask (host:port or URL); env DYNAGO_ADDR")
	sec := clientSecFlags(fs)
	return func() (*client.Client, error) {
		var addrs []string
		for a := range strings.SplitSeq(*addr, ",") {
			if a = strings.TrimSpace(a); a != "" {
				addrs = append(addrs, a)
			}
		}
		cr, err := sec.resolve()
		if err != nil {
			return nil, err
		}
		c, err := client.New(addrs, cr.options()...)
		if err != nil {
			return nil, fmt.Errorf("%w: --addr: %w", errUsage, err)
		}
		return c, nil
	}
}

// writeFlags are the flags of put and del.
type writeFlags struct {
	context string
	w       int
	timeout time.Duration
}

func (f *writeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.context, "context", "", "context token printed by get: the write supersedes the version(s) it names")
	fs.IntVar(&f.w, "w", 0, "replicas that must acknowledge, 1..N (default: the cluster's W)")
	fs.DurationVar(&f.timeout, "timeout", 0, "how long the coordinator waits for W acknowledgements, e.g. 500ms (default: the node's)")
}

func (f *writeFlags) options() (*client.PutOptions, error) {
	if f.w < 0 {
		return nil, fmt.Errorf("%w: --w must be 1..N, got %d", errUsage, f.w)
	}
	if f.timeout < 0 {
		return nil, fmt.Errorf("%w: --timeout must be positive, got %v", errUsage, f.timeout)
	}
	pctx, err := client.ParseContext(f.context)
	if err != nil {
		return nil, fmt.Errorf("%w: --context: %w", errUsage, err)
	}
	return &client.PutOptions{Context: pctx, W: f.w, Timeout: f.timeout}, nil
}

// writeCommand registers the flags of a write (put, del) and checks them,
// and builds the client, before run sees either.
func writeCommand(fs *flag.FlagSet, run func(ctx context.Context, c *client.Client, opts *client.PutOptions, pos []string) error) runFunc {
	newClient := clientFlagSet(fs)
	var wf writeFlags
	wf.register(fs)
	return func(ctx context.Context, pos []string) error {
		opts, err := wf.options()
		if err != nil {
			return err
		}
		c, err := newClient()
		if err != nil {
			return err
		}
		return run(ctx, c, opts, pos)
	}
}

func runPut(fs *flag.FlagSet) runFunc {
	return writeCommand(fs, func(ctx context.Context, c *client.Client, opts *client.PutOptions, pos []string) error {
		value := []byte(pos[1])
		if pos[1] == "-" {
			var err error
			if value, err = io.ReadAll(stdin); err != nil {
				return fmt.Errorf("reading the value from stdin: %w", err)
			}
		}
		newCtx, err := c.Put(ctx, pos[0], value, opts)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "context: %s\n", newCtx)
		return nil
	})
}

func runGet(fs *flag.FlagSet) runFunc {
	newClient := clientFlagSet(fs)
	r := fs.Int("r", 0, "replicas that must answer, 1..N (default: the cluster's R)")
	timeout := fs.Duration("timeout", 0, "how long the coordinator waits for R answers, e.g. 500ms (default: the node's)")
	asJSON := fs.Bool("json", false, `print {"key","context","siblings":[standard base64]} instead`)
	return func(ctx context.Context, pos []string) error {
		if *r < 0 || *timeout < 0 {
			return fmt.Errorf("%w: --r and --timeout must be positive", errUsage)
		}
		c, err := newClient()
		if err != nil {
			return err
		}
		key := pos[0]
		v, err := c.Get(ctx, key, &client.GetOptions{R: *r, Timeout: *timeout})
		notFound := errors.Is(err, client.ErrNotFound)
		if err != nil && !notFound {
			return err
		}
		switch {
		case *asJSON:
			out, err := json.Marshal(api.Values{Key: key, Context: v.Context.String(), Siblings: append([][]byte{}, v.Siblings...)})
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s\n", out)
		case len(v.Siblings) == 1:
			fmt.Fprintf(stdout, "%s\n", v.Siblings[0])
		default:
			for i, s := range v.Siblings {
				fmt.Fprintf(stdout, "sibling %d: %s\n", i+1, s)
			}
			if len(v.Siblings) > 1 {
				// What to do about them, on stderr so that stdout stays
				// the data: the write that replaces every sibling read.
				// The --addr given, if any, so that the command reaches
				// the same cluster; "--" so that a key starting with "-"
				// is not read as a flag.
				addr := ""
				fs.Visit(func(f *flag.Flag) {
					if f.Name == "addr" {
						addr = " --addr " + shellQuote(f.Value.String())
					}
				})
				fmt.Fprintf(stderr, "%d siblings (concurrent writes): to replace them with one value, run\n  dynago put%s --context %s -- %s VALUE\n",
					len(v.Siblings), addr, v.Context, shellQuote(key))
			}
		}
		if !*asJSON && len(v.Context) > 0 {
			fmt.Fprintf(stdout, "context: %s\n", v.Context)
		}
		if notFound {
			return fmt.Errorf("%w: key %q", errNotFound, key)
		}
		return nil
	}
}

func runDel(fs *flag.FlagSet) runFunc {
	return writeCommand(fs, func(ctx context.Context, c *client.Client, opts *client.PutOptions, pos []string) error {
		key := pos[0]
		if opts.Context == nil {
			v, err := c.Get(ctx, key, nil)
			if errors.Is(err, client.ErrNotFound) {
				return fmt.Errorf("%w: key %q", errNotFound, key)
			}
			if err != nil {
				return err
			}
			opts.Context = v.Context
		}
		if err := c.Delete(ctx, key, opts); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "deleted")
		return nil
	})
}

func runStatus(fs *flag.FlagSet) runFunc {
	newClient := clientFlagSet(fs)
	return func(ctx context.Context, _ []string) error {
		c, err := newClient()
		if err != nil {
			return err
		}
		cl, err := c.Cluster(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ring version %d, %d partitions, N=%d R=%d W=%d (as seen by %s)\n\n",
			cl.RingVersion, cl.Partitions, cl.N, cl.R, cl.W, cl.Node)
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tHTTP ADDR\tSTATUS\tPARTITIONS\tVERSION")
		for _, n := range cl.Nodes {
			parts := fmt.Sprint(n.Partitions)
			if n.NextPartitions != nil && *n.NextPartitions != n.Partitions {
				parts += fmt.Sprintf(" -> %d", *n.NextPartitions)
			}
			version := cmp.Or(n.Version, "-")
			if n.Commit != "" && n.Commit != "unknown" {
				version += " (" + n.Commit[:min(len(n.Commit), 12)] + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.ID, n.HTTPAddr, n.Status, parts, version)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if h := cl.Handoff; h != nil && h.InProgress {
			fmt.Fprintf(stdout, "\nhandoff in progress (claimant %s): %d of %d transfers done %s\n",
				h.Claimant, h.Done, h.Total, progressBar(h.Done, h.Total, 30))
			printStall(stdout, h, cl.Nodes)
		}
		return nil
	}
}

// stallAfter is how long without a completed transfer status calls a
// handoff stuck. One transfer copies one partition's differences; on a
// healthy cluster they complete every few seconds at most.
const stallAfter = 30 * time.Second

// printStall says so when a handoff makes no progress: which transfers
// wait, whether their nodes look down, and the way out.
func printStall(w io.Writer, h *client.Handoff, nodes []client.Node) {
	idle := time.Duration(h.NoProgressMS) * time.Millisecond
	if idle < stallAfter {
		return
	}
	status := map[ring.NodeID]string{}
	for _, n := range nodes {
		status[n.ID] = n.Status
	}
	fmt.Fprintf(w, "NO PROGRESS: %d/%d transfers, none completed for %s\n", h.Done, h.Total, idle.Round(time.Second))
	const show = 5
	for i, t := range h.Pending {
		if i == show {
			fmt.Fprintf(w, "  ... and %d more\n", len(h.Pending)-show)
			break
		}
		note := ""
		for _, id := range []ring.NodeID{t.From, t.To} {
			if st := status[id]; st != "" && st != "alive" {
				note += fmt.Sprintf(" (%s is %s)", id, st)
			}
		}
		fmt.Fprintf(w, "  handoff %s→%s partition %d: waiting%s\n", t.From, t.To, t.Partition, note)
	}
	fmt.Fprintln(w, "Check that the nodes above reach each other on their advertised RPC addresses;")
	fmt.Fprintln(w, "'dynago admin abort' rolls the change back without losing anything written.")
}

func runWhere(fs *flag.FlagSet) runFunc {
	newClient := clientFlagSet(fs)
	return func(ctx context.Context, pos []string) error {
		c, err := newClient()
		if err != nil {
			return err
		}
		p, err := c.Placement(ctx, pos[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "partition:       %d\npreference list: %s\nfallbacks:       %s\n",
			p.Partition, joinIDs(p.PreferenceList, " "), joinIDs(p.Fallbacks, " "))
		return nil
	}
}

// shellQuote quotes s for a POSIX shell: in single quotes, where each
// single quote inside ends the quoting, is escaped with a backslash and
// reopens it. A string of safe characters only is left bare.
func shellQuote(s string) string {
	safe := s != ""
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_.:/@%+=,", c)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
