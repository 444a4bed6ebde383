package chaos

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// nemesis injects one fault at a time: a quiet gap of 1–3 s, a fault held
// for its duration, then undone. One at a time keeps every fault within
// what N=3, W=2 promises to survive, so a loss is the database's fault.
type nemesis struct {
	cfg  *Config
	c    Cluster
	hc   *http.Client
	hist *history
	rng  *rand.Rand

	mu      sync.Mutex
	current string // the fault in force, for progress lines
	done    map[string]int
	skipped map[string]int
	errs    int

	prefs  map[string][]string // key -> preference list, cached (the ring does not change)
	noTime bool                // a long partition no longer fits: said once
}

func newNemesis(cfg *Config, c Cluster, hc *http.Client, hist *history) *nemesis {
	return &nemesis{
		cfg: cfg, c: c, hc: hc, hist: hist,
		// A stream of its own, apart from the clients' streams.
		rng:     rand.New(rand.NewPCG(cfg.Seed, 0)),
		done:    map[string]int{},
		skipped: map[string]int{},
		prefs:   map[string][]string{},
	}
}

func (n *nemesis) set(current string) {
	n.mu.Lock()
	n.current = current
	n.mu.Unlock()
}

func (n *nemesis) status() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.current == "" {
		return "none"
	}
	return n.current
}

func (n *nemesis) count(m map[string]int, kind string) {
	n.mu.Lock()
	m[kind]++
	n.mu.Unlock()
}

func (n *nemesis) failed(kind string, err error) {
	n.mu.Lock()
	n.errs++
	n.mu.Unlock()
	n.cfg.Log("nemesis: %s failed: %v", kind, err)
}

// between returns a random duration in [lo, hi).
func (n *nemesis) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(n.rng.Int64N(int64(hi-lo)))
}

// sleep waits d, or less when end or ctx comes first; it reports whether
// the whole d passed.
func sleep(ctx context.Context, d time.Duration, end time.Time) bool {
	full := true
	if rest := time.Until(end); rest < d {
		d, full = max(rest, 0), false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return full
	case <-ctx.Done():
		return false
	}
}

// run injects faults until end. Every kind comes once in the first round,
// long partitions first so that even a short run sees one; later rounds
// are shuffled. A fault started is always undone before run returns.
func (n *nemesis) run(ctx context.Context, end time.Time) {
	if len(n.cfg.Nemesis) == 0 {
		return
	}
	deck := slices.Clone(n.cfg.Nemesis)
	n.rng.Shuffle(len(deck), func(i, j int) { deck[i], deck[j] = deck[j], deck[i] })
	if i := slices.Index(deck, LongPartition); i > 0 {
		deck[0], deck[i] = deck[i], deck[0]
	}
	for {
		if !sleep(ctx, n.between(time.Second, 3*time.Second), end) {
			return
		}
		if len(deck) == 0 {
			deck = slices.Clone(n.cfg.Nemesis)
			n.rng.Shuffle(len(deck), func(i, j int) { deck[i], deck[j] = deck[j], deck[i] })
		}
		kind := deck[0]
		deck = deck[1:]
		n.inject(ctx, kind, end)
	}
}

func (n *nemesis) pick() string {
	nodes := n.c.Nodes()
	return nodes[n.rng.IntN(len(nodes))]
}

// split cuts the nodes in two: one node alone, or a minority against a
// majority.
func (n *nemesis) split() (a, b []string) {
	nodes := slices.Clone(n.c.Nodes())
	n.rng.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
	k := 1
	if n.rng.IntN(2) == 1 {
		k = max(len(nodes)/2, 1)
	}
	a, b = nodes[:k], nodes[k:]
	slices.Sort(a)
	slices.Sort(b)
	return a, b
}

// actionCtx bounds one nemesis action: a node start waits for /healthz.
func actionCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 45*time.Second)
}

func (n *nemesis) inject(ctx context.Context, kind string, end time.Time) {
	// Draw every random choice up front, so that the sequence of choices
	// depends on the seed only, not on which actions failed.
	target := n.pick()
	a, b := n.split()
	hold := n.between(time.Second, 4*time.Second)
	switch kind {
	case Partition:
		hold = n.between(2*time.Second, 5*time.Second)
	case LongPartition:
		hold = n.cfg.DeadTimeout + n.between(2*time.Second, 5*time.Second)
		if time.Until(end) < hold {
			// A long partition cut short would be a short one. Not
			// counted as skipped: no time is not a refusal.
			if !n.noTime {
				n.cfg.Log("nemesis: no time left for a long partition (%v left, it needs %v)", time.Until(end).Round(time.Second), hold.Round(time.Second))
			}
			n.noTime = true
			return
		}
	}
	actx, cancel := actionCtx(ctx)
	defer cancel()
	undo := func(what string, f func(context.Context) error) {
		// Undo on a fresh context: the run may be ending, the fault
		// must still be undone.
		uctx, cancel := actionCtx(context.Background())
		defer cancel()
		if err := f(uctx); err != nil {
			n.failed(what, err)
		}
		n.set("")
	}
	var err error
	switch kind {
	case Kill:
		if err = n.c.Kill(actx, target); err == nil {
			n.announce(kind, "%s killed for %v", target, hold.Round(100*time.Millisecond))
			sleep(ctx, hold, end)
			undo("start "+target, func(c context.Context) error { return n.c.Start(c, target) })
		}
	case Pause:
		if err = n.c.Pause(actx, target); err == nil {
			n.announce(kind, "%s paused for %v", target, hold.Round(100*time.Millisecond))
			sleep(ctx, hold, end)
			undo("resume "+target, func(c context.Context) error { return n.c.Resume(c, target) })
		}
	case Partition, LongPartition:
		if err = n.c.Partition(actx, a, b); err == nil {
			n.announce(kind, "%s cut from %s for %v", strings.Join(a, ","), strings.Join(b, ","), hold.Round(100*time.Millisecond))
			sleep(ctx, hold, end)
			undo("heal", n.c.Heal)
		}
	case Wipe:
		if !n.wipeAllowed(ctx, end) {
			n.count(n.skipped, kind)
			n.cfg.Log("nemesis: wipe skipped: acknowledged elements not yet on every replica")
			return
		}
		n.announce(kind, "%s wiped (data deleted, started empty)", target)
		err = n.c.Wipe(actx, target)
		n.set("")
	}
	switch {
	case errors.Is(err, ErrUnsupported):
		n.count(n.skipped, kind)
		n.cfg.Log("nemesis: %s skipped: %v", kind, err)
	case err != nil:
		n.failed(kind+" "+target, err)
		// Leave nothing half-done behind: a partition applied to some
		// nodes only, a node killed whose kill reported an error.
		undo("heal", n.c.Heal)
	default:
		n.count(n.done, kind)
	}
}

func (n *nemesis) announce(kind, format string, args ...any) {
	n.set(kind)
	n.cfg.Log("nemesis: "+format, args...)
}

// wipeWait bounds how long a wipe waits for full replication before it is
// skipped: anti-entropy repairs a lab cluster in well under a second once
// every node is back, so 10 s means something is still broken.
var wipeWait = 10 * time.Second

// wipeAllowed applies the wipe rule (see Config.Nemesis): it waits, up to
// 10 s and not past end, until every element acknowledged before the
// check is on every primary replica of its key.
func (n *nemesis) wipeAllowed(ctx context.Context, end time.Time) bool {
	deadline := time.Now().Add(wipeWait)
	for {
		if n.fullyReplicated(ctx, n.hist.ackedSoFar()) {
			return true
		}
		if time.Now().After(deadline) || !sleep(ctx, 500*time.Millisecond, end) {
			return false
		}
	}
}

// fullyReplicated reports whether every element of acked is in the own
// copy of every primary replica of its key. Any error counts as no.
func (n *nemesis) fullyReplicated(ctx context.Context, acked []ackedElem) bool {
	perKey := map[int][]string{}
	for _, a := range acked {
		perKey[a.key] = append(perKey[a.key], a.elem)
	}
	for k, elems := range perKey {
		prefs, err := n.preferenceList(ctx, keyName(k))
		if err != nil {
			return false
		}
		for _, id := range prefs {
			s, err := localSet(ctx, n.hc, n.c.HTTPAddr(id), keyName(k))
			if err != nil {
				return false
			}
			for _, e := range elems {
				if _, ok := s[e]; !ok {
					return false
				}
			}
		}
	}
	return true
}

func (n *nemesis) preferenceList(ctx context.Context, key string) ([]string, error) {
	if p, ok := n.prefs[key]; ok {
		return p, nil
	}
	var err error
	for _, id := range n.c.Nodes() {
		var p []string
		if p, err = preferenceList(ctx, n.hc, n.c.HTTPAddr(id), key); err == nil {
			n.prefs[key] = p
			return p, nil
		}
	}
	return nil, err
}
