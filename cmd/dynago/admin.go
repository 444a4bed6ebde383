package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dynago/dynago/client"
	"github.com/dynago/dynago/ring"
)

func init() {
	register(command{name: "admin", summary: "membership changes: plan, commit, leave ID, abort; backup --dir DIR",
		long: `Membership changes and backups, through one node of the cluster (--addr).

plan and commit refuse a joining node whose advertised RPC or HTTP address
does not answer as that node. Follow progress with 'dynago status'.`,
		subs: []command{
			{name: "plan", summary: "show the staged change: who joins and leaves, which partitions move where",
				long: `Shows the staged change: alive nodes outside the ring join, staged leaves
leave; which partitions move where and how much data.`,
				exit: exitStatus, flags: adminCmd(func(ctx context.Context, c *client.Client, _ []string) (client.Plan, error) { return c.Plan(ctx) })},
			{name: "commit", summary: "start the staged change",
				long: `Starts the staged change; partitions are handed off while writes continue,
and the ring switches once every handoff is done. Follow progress with
'dynago status'.`,
				exit: exitStatus, flags: adminCmd(func(ctx context.Context, c *client.Client, _ []string) (client.Plan, error) { return c.Commit(ctx) })},
			{name: "leave", summary: "stage node ID to leave at the next commit", use: "ID", nargs: 1, args: "a node ID",
				exit: exitStatus, flags: adminCmd(func(ctx context.Context, c *client.Client, pos []string) (client.Plan, error) {
					return c.Leave(ctx, pos[0])
				})},
			{name: "abort", summary: "roll the running change back; nothing written is lost",
				long: `Rolls the running change back: the ring stays as it was, nodes that were
joining hand back what they received; nothing written is lost (use it when
'dynago status' shows no progress).`,
				exit: exitStatus, flags: runAbort},
			{name: "backup", summary: "the node at --addr writes a consistent checkpoint to --dir",
				long: `The node at --addr (give one) writes a consistent checkpoint of its store
to --dir, an absolute path on that node's filesystem that must not exist or
be empty; 'dynago restore' brings a node back from it.`,
				exit: exitStatus, flags: runBackup},
		}})
}

// adminCmd is a subcommand that changes the plan and prints it.
func adminCmd(call func(context.Context, *client.Client, []string) (client.Plan, error)) func(*flag.FlagSet) runFunc {
	return func(fs *flag.FlagSet) runFunc {
		newClient := clientFlagSet(fs)
		return func(ctx context.Context, pos []string) error {
			c, err := newClient()
			if err != nil {
				return err
			}
			p, err := call(ctx, c, pos)
			if err != nil {
				return err
			}
			printPlan(stdout, p)
			return nil
		}
	}
}

func runAbort(fs *flag.FlagSet) runFunc {
	newClient := clientFlagSet(fs)
	return func(ctx context.Context, _ []string) error {
		c, err := newClient()
		if err != nil {
			return err
		}
		a, err := c.Abort(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "aborted the change committed by %s (%d of %d transfers had completed); the ring is unchanged\n", a.Claimant, a.Done, a.Total)
		return nil
	}
}

func printPlan(w io.Writer, p client.Plan) {
	if p.Committed {
		fmt.Fprintf(w, "committed (from ring version %d)\n", p.RingVersion)
	} else {
		fmt.Fprintf(w, "staged change (ring version %d)\n", p.RingVersion)
	}
	fmt.Fprintf(w, "  joining: %s\n  leaving: %s\n", listOrNone(p.Joining), listOrNone(p.Leaving))
	if len(p.Moves) == 0 {
		fmt.Fprintln(w, "  nothing to move")
		return
	}
	ids := make([]ring.NodeID, 0, len(p.After))
	for id := range p.After {
		ids = append(ids, id)
	}
	for id := range p.Before {
		if _, ok := p.After[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	fmt.Fprintln(w, "  partitions owned:")
	for _, id := range ids {
		fmt.Fprintf(w, "    %-8s %4d -> %d\n", id, p.Before[id], p.After[id])
	}
	fmt.Fprintf(w, "  %d partitions change owner:\n", len(p.Moves))
	for _, m := range p.Moves {
		fmt.Fprintf(w, "    partition %4d  %s -> %s\n", m.Partition, m.From, m.To)
	}
	known, keys := 0, 0
	for _, t := range p.Transfers {
		if t.Keys >= 0 {
			known++
			keys += t.Keys
		}
	}
	fmt.Fprintf(w, "  %d data transfers (partition copies to nodes entering a preference list)", len(p.Transfers))
	if known > 0 {
		fmt.Fprintf(w, "; %d of them hold %d objects on the node asked", known, keys)
	}
	fmt.Fprintln(w)
}

func listOrNone(ids []ring.NodeID) string {
	if len(ids) == 0 {
		return "none"
	}
	return joinIDs(ids, ", ")
}

// joinIDs is strings.Join for node IDs.
func joinIDs(ids []ring.NodeID, sep string) string { return strings.Join(idStrings(ids), sep) }

// idStrings converts node IDs, as the api package's answers carry them, to
// strings.
func idStrings(ids []ring.NodeID) []string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return s
}

// progressBar renders done/total as a fixed-width bar.
func progressBar(done, total, width int) string {
	if total <= 0 {
		return ""
	}
	filled := done * width / total
	return "[" + strings.Repeat("#", filled) + strings.Repeat(".", width-filled) + "]"
}

func runBackup(fs *flag.FlagSet) runFunc {
	newClient := clientFlagSet(fs)
	dir := fs.String("dir", "", "absolute directory on the node's filesystem (must not exist or be empty)")
	return func(ctx context.Context, _ []string) error {
		if *dir == "" || !filepath.IsAbs(*dir) {
			return fmt.Errorf("%w: admin backup: --dir must be an absolute path on the node's filesystem", errUsage)
		}
		c, err := newClient()
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "backing up to %s ...\n", *dir)
		b, err := c.Backup(ctx, *dir)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "node %s backed up to %s: %d bytes in %d ms (on-disk format %d)\n", b.Node, b.Dir, b.Bytes, b.DurationMS, b.Format)
		return nil
	}
}
