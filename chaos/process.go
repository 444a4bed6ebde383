package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/dynago/dynago/devcluster"
)

// Processes is the Cluster of a local devcluster: SIGKILL, SIGSTOP and
// SIGCONT on the node processes, wipes of their data directories, and
// partitions through each node's fault-injection API (/admin/faults), which
// drops what a node sends to the other side over RPC and gossip alike.
type Processes struct {
	dc *devcluster.Cluster
	hc *http.Client

	mu     sync.Mutex
	cuts   map[string][]string // node -> the nodes it cannot reach
	killed map[string]bool     // stopped on purpose: any other stopped node crashed
}

// NewProcesses wraps a running devcluster.
func NewProcesses(dc *devcluster.Cluster) *Processes {
	return &Processes{dc: dc, hc: newHTTPClient(), cuts: map[string][]string{}, killed: map[string]bool{}}
}

var _ Cluster = (*Processes)(nil)

// Nodes implements Cluster.
func (p *Processes) Nodes() []string {
	var ids []string
	for _, n := range p.dc.List() {
		ids = append(ids, n.ID)
	}
	return ids
}

// HTTPAddr implements Cluster.
func (p *Processes) HTTPAddr(id string) string {
	if n, err := p.dc.Node(id); err == nil {
		return n.HTTPAddr
	}
	return ""
}

func (p *Processes) node(id string) (*devcluster.Node, error) { return p.dc.Node(id) }

// Kill implements Cluster.
func (p *Processes) Kill(_ context.Context, id string) error {
	n, err := p.node(id)
	if err != nil {
		return err
	}
	p.setKilled(id, true)
	return p.dc.Kill(n)
}

func (p *Processes) setKilled(id string, v bool) {
	p.mu.Lock()
	p.killed[id] = v
	p.mu.Unlock()
}

// Start implements Cluster; a node already running is left alone.
func (p *Processes) Start(ctx context.Context, id string) error {
	n, err := p.node(id)
	if err != nil {
		return err
	}
	if n.Running() {
		return nil
	}
	if err := p.dc.Restart(ctx, n); err != nil {
		return err
	}
	p.setKilled(id, false)
	return p.recut(ctx, id)
}

// Pause implements Cluster.
func (p *Processes) Pause(_ context.Context, id string) error {
	n, err := p.node(id)
	if err != nil {
		return err
	}
	return p.dc.Pause(n)
}

// Resume implements Cluster.
func (p *Processes) Resume(_ context.Context, id string) error {
	n, err := p.node(id)
	if err != nil {
		return err
	}
	return p.dc.Resume(n)
}

// Wipe implements Cluster.
func (p *Processes) Wipe(ctx context.Context, id string) error {
	n, err := p.node(id)
	if err != nil {
		return err
	}
	p.setKilled(id, true)
	if err := p.dc.Wipe(ctx, n); err != nil {
		return err
	}
	p.setKilled(id, false)
	return p.recut(ctx, id)
}

// recut gives a restarted node back its side of the partitions in force:
// fault rules live in the process and die with it.
func (p *Processes) recut(ctx context.Context, id string) error {
	p.mu.Lock()
	cut := slices.Clone(p.cuts[id])
	p.mu.Unlock()
	if len(cut) == 0 {
		return nil
	}
	return setCuts(ctx, p.hc, p.HTTPAddr(id), cut)
}

// Partition implements Cluster. Cuts add up: partitions made earlier stay
// until Heal.
func (p *Processes) Partition(ctx context.Context, a, b []string) error {
	p.mu.Lock()
	for _, x := range a {
		for _, y := range b {
			if x == y {
				p.mu.Unlock()
				return fmt.Errorf("chaos: node %s on both sides of a partition", x)
			}
			p.cuts[x] = appendNew(p.cuts[x], y)
			p.cuts[y] = appendNew(p.cuts[y], x)
		}
	}
	want := map[string][]string{}
	for _, id := range append(slices.Clone(a), b...) {
		want[id] = slices.Clone(p.cuts[id])
	}
	p.mu.Unlock()
	var errs []error
	for id, cut := range want {
		if err := setCuts(ctx, p.hc, p.HTTPAddr(id), cut); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

func appendNew(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// Heal implements Cluster: every paused node is continued, every stopped
// one started, every cut removed; it goes on past failures. A node found
// stopped that was not killed has crashed by itself: it is started too, and
// reported as an error, so that the run does not pass over it.
func (p *Processes) Heal(ctx context.Context) error {
	p.mu.Lock()
	p.cuts = map[string][]string{}
	killed := p.killed
	p.killed = map[string]bool{}
	p.mu.Unlock()
	var errs []error
	for _, n := range p.dc.List() {
		if err := p.dc.Resume(n); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range p.dc.List() {
		if !n.Running() {
			if !killed[n.ID] {
				errs = append(errs, fmt.Errorf("%s exited without being killed (log: %s.log)", n.ID, n.DataDir))
			}
			if err := p.dc.Restart(ctx, n); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", n.ID, err))
				continue
			}
		}
		if err := setCuts(ctx, p.hc, n.HTTPAddr, nil); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.ID, err))
		}
	}
	return errors.Join(errs...)
}
