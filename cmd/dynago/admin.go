package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dynago/dynago/client"
)

func init() {
	register(command{name: "admin", summary: "membership changes: plan, commit, leave ID, abort; backup --dir DIR", run: runAdmin})
}

const adminUsage = `admin plan|commit|leave ID|abort|backup [flags]

  plan      show the staged change: alive nodes outside the ring join, staged
            leaves leave; which partitions move where and how much data
  commit    start the staged change; partitions are handed off while writes
            continue, and the ring switches once every handoff is done
  leave ID  stage node ID to leave at the next commit
  abort     roll the running change back: the ring stays as it was, nodes
            that were joining hand back what they received; nothing
            written is lost (use it when 'dynago status' shows no progress)
  backup --dir DIR
            the node at --addr (give one) writes a consistent checkpoint of
            its store to DIR, an absolute path on that node's filesystem
            that must not exist or be empty; 'dynago restore' brings a node
            back from it

plan and commit refuse a joining node whose advertised RPC or HTTP address
does not answer as that node.

Follow progress with 'dynago status'.`

func runAdmin(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", errUsage, adminUsage)
	}
	sub, rest := args[0], args[1:]
	if isHelp(sub) {
		fmt.Fprintln(stdout, adminUsage)
		return nil
	}
	want := 0
	if sub == "leave" {
		want = 1
	}
	fs, newClient := clientFlagSet("admin "+sub, adminUsage)
	var dir *string
	if sub == "backup" {
		dir = fs.String("dir", "", "backup: absolute directory on the node's filesystem (must not exist or be empty)")
	}
	pos, err := parseArgs(fs, rest, want, "ID")
	if err != nil {
		return err
	}
	c, err := newClient()
	if err != nil {
		return err
	}
	var p client.Plan
	switch sub {
	case "abort":
		a, err := c.Abort(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "aborted the change committed by %s (%d of %d transfers had completed); the ring is unchanged\n", a.Claimant, a.Done, a.Total)
		return nil
	case "backup":
		return runBackup(ctx, c, *dir)
	case "plan":
		p, err = c.Plan(ctx)
	case "commit":
		p, err = c.Commit(ctx)
	case "leave":
		p, err = c.Leave(ctx, pos[0])
	default:
		return fmt.Errorf("%w: unknown admin command %q\n%s", errUsage, sub, adminUsage)
	}
	if err != nil {
		return err
	}
	printPlan(stdout, p)
	return nil
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
	ids := make([]string, 0, len(p.After))
	for id := range p.After {
		ids = append(ids, id)
	}
	for id := range p.Before {
		if _, ok := p.After[id]; !ok {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
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

func listOrNone(ids []string) string {
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ", ")
}

// progressBar renders done/total as a fixed-width bar.
func progressBar(done, total, width int) string {
	if total <= 0 {
		return ""
	}
	filled := done * width / total
	return "[" + strings.Repeat("#", filled) + strings.Repeat(".", width-filled) + "]"
}

func runBackup(ctx context.Context, c *client.Client, dir string) error {
	if dir == "" || !filepath.IsAbs(dir) {
		return fmt.Errorf("%w: admin backup: --dir must be an absolute path on the node's filesystem", errUsage)
	}
	fmt.Fprintf(stderr, "backing up to %s ...\n", dir)
	b, err := c.Backup(ctx, dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "node %s backed up to %s: %d bytes in %d ms (on-disk format %d)\n", b.Node, b.Dir, b.Bytes, b.DurationMS, b.Format)
	return nil
}
