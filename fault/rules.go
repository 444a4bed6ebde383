package fault

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// ErrRules reports an invalid Rules.
var ErrRules = errors.New("fault: invalid rules")

// Any is the destination key that matches every destination. A rule for a
// specific destination takes precedence over the Any rule of the same kind.
const Any = "*"

// Rules is the whole fault configuration of one node. The zero value (or
// Rules{}) injects nothing. Its JSON form, for the admin API, is e.g.
//
//	{"delay":{"*":"10ms","n3":"normal:20ms,5ms"},"loss":{"n2":0.1},"cut":["n4"]}
type Rules struct {
	// Delay is the one-way delay per destination node ID; key "*" applies
	// to every destination without its own entry.
	Delay map[string]Delay `json:"delay,omitempty"`
	// Loss is the probability, 0..1, that a message to the destination is
	// lost; key "*" applies to every destination without its own entry.
	Loss map[string]float64 `json:"loss,omitempty"`
	// Cut lists destinations this node cannot reach, as in a network
	// partition: every message to them is dropped. "*" cuts every
	// destination (the node is isolated). A cut overrides Delay and Loss.
	Cut []string `json:"cut,omitempty"`
}

// IsZero reports whether r injects nothing.
func (r Rules) IsZero() bool { return len(r.Delay) == 0 && len(r.Loss) == 0 && len(r.Cut) == 0 }

// Validate rejects empty destination IDs, invalid delays and loss
// probabilities outside [0, 1].
func (r Rules) Validate() error {
	for _, dst := range slices.Sorted(maps.Keys(r.Delay)) {
		if dst == "" {
			return fmt.Errorf("%w: delay for empty destination", ErrRules)
		}
		if err := r.Delay[dst].Validate(); err != nil {
			return fmt.Errorf("%w: delay for %s: %w", ErrRules, dst, err)
		}
	}
	for _, dst := range slices.Sorted(maps.Keys(r.Loss)) {
		if dst == "" {
			return fmt.Errorf("%w: loss for empty destination", ErrRules)
		}
		// The negated comparison also rejects NaN.
		if p := r.Loss[dst]; !(p >= 0 && p <= 1) {
			return fmt.Errorf("%w: loss for %s is %v, want a probability in [0, 1]", ErrRules, dst, p)
		}
	}
	for _, dst := range r.Cut {
		if dst == "" {
			return fmt.Errorf("%w: cut of empty destination", ErrRules)
		}
	}
	return nil
}

// clone deep-copies r so that neither the caller nor the injector can see
// the other's later edits.
func (r Rules) clone() Rules {
	return Rules{
		Delay: maps.Clone(r.Delay),
		Loss:  maps.Clone(r.Loss),
		Cut:   slices.Clone(r.Cut),
	}
}

// compiled is Rules in the shape Outbound reads: lookups without
// allocation, the "*" entries pulled out.
type compiled struct {
	rules    Rules // as given, for Injector.Rules
	delay    map[string]Delay
	anyDelay *Delay
	loss     map[string]float64
	anyLoss  float64
	cut      map[string]bool
	cutAll   bool
}

func compile(r Rules) *compiled {
	c := &compiled{
		rules: r.clone(),
		delay: make(map[string]Delay, len(r.Delay)),
		loss:  make(map[string]float64, len(r.Loss)),
		cut:   make(map[string]bool, len(r.Cut)),
	}
	for dst, d := range r.Delay {
		if dst == Any {
			c.anyDelay = &d
			continue
		}
		c.delay[dst] = d
	}
	for dst, p := range r.Loss {
		if dst == Any {
			c.anyLoss = p
			continue
		}
		c.loss[dst] = p
	}
	for _, dst := range r.Cut {
		if dst == Any {
			c.cutAll = true
			continue
		}
		c.cut[dst] = true
	}
	return c
}

func (c *compiled) delayTo(dst string) (Delay, bool) {
	if d, ok := c.delay[dst]; ok {
		return d, true
	}
	if c.anyDelay != nil {
		return *c.anyDelay, true
	}
	return Delay{}, false
}

func (c *compiled) lossTo(dst string) float64 {
	if p, ok := c.loss[dst]; ok {
		return p
	}
	return c.anyLoss
}
