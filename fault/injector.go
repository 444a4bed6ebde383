package fault

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynago/dynago/node"
)

// Stats counts the injector's decisions since it was made.
type Stats struct {
	// Delayed is messages given a positive delay.
	Delayed uint64 `json:"delayed"`
	// DroppedLoss is messages dropped by a loss probability.
	DroppedLoss uint64 `json:"dropped_loss"`
	// DroppedCut is messages dropped because their destination is cut.
	DroppedCut uint64 `json:"dropped_cut"`
}

// Injector decides the fate of each outbound message from its current
// Rules. It implements transport.Interceptor and is safe for concurrent
// use.
type Injector struct {
	rules atomic.Pointer[compiled]

	// One seeded source behind a mutex rather than one per goroutine: with
	// a fixed seed and a single sender the draws, and so the experiment,
	// are reproducible, and the lock is held only for a draw or two.
	mu  sync.Mutex
	rng *rand.Rand

	delayed, droppedLoss, droppedCut atomic.Uint64
}

// NewInjector returns an injector with no rules whose random draws are
// determined by seed.
func NewInjector(seed uint64) *Injector {
	i := &Injector{
		// The second PCG word is derived from the seed so that one number
		// is enough to reproduce a run.
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
	i.rules.Store(compile(Rules{}))
	return i
}

// Set validates r and replaces the whole configuration atomically: every
// message decided after Set returns sees r, none sees a mix. Set(Rules{})
// heals everything.
func (i *Injector) Set(r Rules) error {
	if err := r.Validate(); err != nil {
		return err
	}
	i.rules.Store(compile(r))
	return nil
}

// Rules returns a copy of the current configuration.
func (i *Injector) Rules() Rules {
	return i.rules.Load().rules.clone()
}

// Stats returns the decision counters.
func (i *Injector) Stats() Stats {
	return Stats{
		Delayed:     i.delayed.Load(),
		DroppedLoss: i.droppedLoss.Load(),
		DroppedCut:  i.droppedCut.Load(),
	}
}

// Outbound implements transport.Interceptor for a message to m.To.
func (i *Injector) Outbound(m *node.Message) (time.Duration, bool) {
	return i.Decide(string(m.To))
}

// Decide returns the fate of one message to dst: dropped if dst is cut or
// the message is lost, otherwise its delay (0 = none). A cut is checked
// first and costs no random draw, so partitions do not perturb the random
// sequence of the other rules.
func (i *Injector) Decide(dst string) (time.Duration, bool) {
	c := i.rules.Load()
	if c.cutAll || c.cut[dst] {
		i.droppedCut.Add(1)
		return 0, true
	}
	p := c.lossTo(dst)
	d, hasDelay := c.delayTo(dst)
	if p <= 0 && !hasDelay {
		return 0, false
	}
	var lost bool
	var delay time.Duration
	i.mu.Lock()
	if p > 0 {
		// Float64 is in [0, 1): p == 1 always loses, p == 0 never does.
		lost = i.rng.Float64() < p
	}
	if !lost && hasDelay {
		delay = d.sample(i.rng)
	}
	i.mu.Unlock()
	if lost {
		i.droppedLoss.Add(1)
		return 0, true
	}
	if delay > 0 {
		i.delayed.Add(1)
	}
	return delay, false
}
