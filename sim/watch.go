package sim

import (
	"fmt"
	"slices"

	"github.com/dynago/dynago/cluster"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

// Two aids for scenario scripts (interaction_test.go): a watcher that sees
// the simulator's events as values rather than as trace text, and held
// messages, which let a script decide when, and whether, one message
// arrives, to stage a race exactly instead of hoping a seed produces it.

// seenKind says what a watcher is shown.
type seenKind uint8

const (
	seenBoot    seenKind = iota + 1 // node booted with actor note
	seenSend                        // a message entered the network (fate says how it fared)
	seenDeliver                     // a message reached its node
	seenDrop                        // a message was lost on arrival (receiver down or cut off)
	seenWrites                      // node applied a Ready's writes
	seenState                       // node produced and gossips a new cluster state
	seenNote                        // anything else the trace says (crash, restart, detector...)
	seenEvent                       // node released one of its core's events (event)
)

// Fates of a sent message (seen.note of a seenSend).
const (
	fateSent        = ""
	fateLost        = "lost"
	fatePartitioned = "partitioned"
	fateHeld        = "held"
)

// seen is one event shown to the watcher.
type seen struct {
	kind   seenKind
	node   ring.NodeID
	msg    node.Message
	writes []node.Write
	state  *cluster.State
	event  node.Event
	note   string
}

// see shows an event to the watcher, if there is one.
func (c *Cluster) see(s seen) {
	if c.watch != nil {
		c.watch(s)
	}
}

// notef is tracef for events with no value of their own to show: the
// watcher gets the line without its timestamp.
func (c *Cluster) notef(format string, args ...any) {
	c.tracef(format, args...)
	if c.watch != nil {
		c.see(seen{kind: seenNote, note: fmt.Sprintf(format, args...)})
	}
}

// MsgFilter selects messages by sender, receiver and type; a zero field
// matches any.
type MsgFilter struct {
	From, To ring.NodeID
	Type     node.MsgType
}

func (f MsgFilter) matches(m node.Message) bool {
	return (f.From == "" || f.From == m.From) && (f.To == "" || f.To == m.To) && (f.Type == 0 || f.Type == m.Type)
}

// Hold parks every message f selects when it is sent, instead of putting
// it on the network, until DeliverHeld or DropHeld decides its fate. A
// held message is in flight: the sender crashing does not take it back.
func (c *Cluster) Hold(f MsgFilter) {
	if !slices.Contains(c.holds, f) {
		c.holds = append(c.holds, f)
	}
}

// Unhold stops holding what f selected; messages already parked stay
// parked.
func (c *Cluster) Unhold(f MsgFilter) {
	c.holds = slices.DeleteFunc(c.holds, func(h MsgFilter) bool { return h == f })
}

// Held returns the parked messages f selects, oldest first.
func (c *Cluster) Held(f MsgFilter) []node.Message {
	var out []node.Message
	for _, m := range c.parked {
		if f.matches(m) {
			out = append(out, m)
		}
	}
	return out
}

// DeliverHeld puts the parked messages f selects on the network, oldest
// first, arriving now (a link down at this moment still drops them). It
// returns how many it released.
func (c *Cluster) DeliverHeld(f MsgFilter) int {
	var n int
	c.parked = slices.DeleteFunc(c.parked, func(m node.Message) bool {
		if !f.matches(m) {
			return false
		}
		n++
		c.schedule(c.now, event{kind: evDeliver, to: m.To, msg: m})
		return true
	})
	return n
}

// DropHeld discards the parked messages f selects, as a network losing
// them would, and returns how many.
func (c *Cluster) DropHeld(f MsgFilter) int {
	var n int
	c.parked = slices.DeleteFunc(c.parked, func(m node.Message) bool {
		if !f.matches(m) {
			return false
		}
		n++
		c.Dropped++
		return true
	})
	return n
}

// hold parks m if a hold selects it.
func (c *Cluster) hold(m node.Message) bool {
	for _, f := range c.holds {
		if f.matches(m) {
			c.parked = append(c.parked, m)
			return true
		}
	}
	return false
}
