package sim

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dynago/dynago/dvv"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// The trace of a scenario command: the simulator's events printed in
// Dynamo's terms.

// see is the cluster's watcher: it turns events into trace lines.
func (e *env) see(s seen) {
	switch s.kind {
	case seenBoot:
		e.lives[s.node]++
		e.actors[s.note] = string(s.node) + strings.Repeat("'", e.lives[s.node]-1)
	case seenSend:
		m := s.msg
		if len(m.Key) > 0 && m.ReqID != 0 {
			e.keys[reqRef{m.From, m.ReqID}] = string(m.Key)
		}
		if !e.shown(m.Type) {
			return
		}
		switch s.note {
		case fateHeld:
			e.line("%s -> %s %s (held)", m.From, m.To, e.describeMsg(m))
		case fateLost, fatePartitioned:
			e.line("%s -x %s %s (%s)", m.From, m.To, e.describeMsg(m), s.note)
		}
	case seenDeliver:
		if e.shown(s.msg.Type) {
			e.line("%s -> %s %s", s.msg.From, s.msg.To, e.describeMsg(s.msg))
		}
	case seenDrop:
		if e.shown(s.msg.Type) {
			why := "cut off"
			if e.c.Node(s.node) == nil {
				why = string(s.node) + " is down"
			}
			e.line("%s -x %s %s (%s)", s.msg.From, s.msg.To, e.describeMsg(s.msg), why)
		}
	case seenWrites:
		for _, w := range s.writes {
			e.describeWrite(s.node, w)
		}
	case seenState:
		st := s.state
		desc := fmt.Sprintf("ring v%d", st.Version)
		if st.InTransition() {
			next, err := st.NextRing()
			total := 0
			if cur, err2 := st.Ring(); err == nil && err2 == nil {
				total = len(ring.Transfers(cur, next))
			}
			desc += fmt.Sprintf(", moving: %d of %d handoffs done", len(st.Done), total)
		} else {
			desc += fmt.Sprintf(", members %s", joinIDs(slices.Compact(slices.Sorted(slices.Values(st.Owners)))))
		}
		e.line("%s gossips cluster state %s", s.node, desc)
	case seenNote:
		e.line("%s", s.note)
	case seenEvent:
		if d := describeEvent(s.node, s.event); d != "" {
			e.line("%s", d)
		}
	}
}

// describeEvent names what a core reports having done, when the messages
// alone would not say it: why a repair was sent (a read, anti-entropy, a
// hint no primary took), a hint delivered, a partition handed off, trees
// found different. Events the trace already shows otherwise (a hint
// stored is a write) or that would drown the story (every in-sync
// exchange, tree build and empty handoff step) are left out.
func describeEvent(id ring.NodeID, ev node.Event) string {
	switch ev.Kind {
	case node.HintDelivered:
		return fmt.Sprintf("%s delivered its hint for %s to %s", id, ev.Key, ev.Peer)
	case node.Exchange:
		if !ev.InSync {
			return fmt.Sprintf("%s finds its tree of partition %d differs from %s's", id, ev.Partition, ev.Peer)
		}
	case node.Repair:
		switch ev.Cause {
		case node.RepairRead:
			return fmt.Sprintf("%s read-repairs %s on %s", id, ev.Key, ev.Peer)
		case node.RepairAE:
			return fmt.Sprintf("%s repairs %s on %s (anti-entropy)", id, ev.Key, ev.Peer)
		case node.RepairSpread:
			return fmt.Sprintf("%s spreads its hint for %s to %s", id, ev.Key, ev.Peer)
		}
	case node.HandoffStep:
		// A step that pushed nothing is already told by its handoff_done
		// message (or says nothing worth a line).
		if ev.N == 1 {
			return fmt.Sprintf("%s handed partition %d to %s (1 object pushed)", id, ev.Partition, ev.Peer)
		} else if ev.N > 1 {
			return fmt.Sprintf("%s handed partition %d to %s (%d objects pushed)", id, ev.Partition, ev.Peer, ev.N)
		}
	}
	return ""
}

// line writes one trace line, stamped with the virtual time since the
// command began.
func (e *env) line(format string, args ...any) {
	at := e.c.Now() - e.start
	ms := strconv.FormatFloat(float64(at.Microseconds())/1000, 'f', -1, 64)
	fmt.Fprintf(&e.out, "%8s %s\n", "+"+ms+"ms", fmt.Sprintf(format, args...))
}

func (e *env) describeMsg(m node.Message) string {
	key := string(m.Key)
	var b strings.Builder
	b.WriteString(m.Type.String())
	if key != "" {
		b.WriteString(" " + key)
	} else {
		key = e.keys[reqRef{m.To, m.ReqID}]
	}
	switch m.Type {
	case node.MsgReplicaPut:
		if o, err := object.Decode(m.Object); err == nil {
			b.WriteString(" " + e.object(key, o))
		}
		if m.Hint != "" {
			fmt.Fprintf(&b, " (hint for %s)", m.Hint)
		}
		if m.Repair {
			b.WriteString(" (" + e.repairKind(m) + ")")
		}
	case node.MsgReplicaGet:
		if m.Hint != "" {
			fmt.Fprintf(&b, " (standing in for %s)", m.Hint)
		}
	case node.MsgReplicaGetResp:
		if !m.Found {
			b.WriteString(" not found")
		} else if o, err := object.Decode(m.Object); err == nil {
			b.WriteString(" " + e.object(key, o))
		}
	case node.MsgForward:
		if m.Delete {
			b.WriteString(" delete")
		} else {
			fmt.Fprintf(&b, " put %q", m.Value)
		}
	case node.MsgForwardResp:
		if m.Code == node.CodeNotCoordinator {
			b.WriteString(" " + m.Code.String())
			if m.Hint != "" {
				fmt.Fprintf(&b, ", try %s", m.Hint)
			}
		} else {
			fmt.Fprintf(&b, " %s %d/%d acks", m.Code, m.Acks, m.Required)
		}
	case node.MsgAEKeys, node.MsgAEWant, node.MsgReapQuery, node.MsgReapResp, node.MsgReap:
		ks := make([]string, len(m.Keys))
		for i, k := range m.Keys {
			ks[i] = string(k)
		}
		fmt.Fprintf(&b, " partition %d [%s]", m.Partition, strings.Join(ks, " "))
	case node.MsgAETreeReq, node.MsgAETreeResp:
		fmt.Fprintf(&b, " partition %d", m.Partition)
	case node.MsgHandoffDone:
		fmt.Fprintf(&b, " partition %d now held by %s", m.Partition, m.Hint)
	}
	if m.Err != "" {
		fmt.Fprintf(&b, " error %q", m.Err)
	}
	return b.String()
}

// repairKind tells the two uses of an unacknowledged replica put apart:
// during a membership change a coordinator sends each write to the node
// entering the key's preference list (a dual write); otherwise it repairs.
func (e *env) repairKind(m node.Message) string {
	if core := e.c.Node(m.From); core != nil && core.NextRing() != nil && core.Ring() != nil {
		p := core.Ring().PartitionOf(m.Key)
		if slices.Contains(core.NextRing().PreferenceList(p), m.To) && !slices.Contains(core.Ring().PreferenceList(p), m.To) {
			return "dual write"
		}
	}
	return "repair"
}

func (e *env) describeWrite(id ring.NodeID, w node.Write) {
	if _, key, ok := storage.ParseObjectKey(w.Key); ok {
		if w.Value == nil {
			e.line("%s deletes its copy of %s", id, key)
			return
		}
		o, err := object.Decode(w.Value)
		if err != nil {
			e.line("%s stores %s: undecodable object: %v", id, key, err)
			return
		}
		e.line("%s stores %s %s", id, key, e.object(string(key), o))
		return
	}
	if target, _, key, ok := storage.ParseHintKey(w.Key); ok {
		if w.Value == nil {
			e.line("%s deletes its hint for %s: %s", id, target, key)
			return
		}
		o, err := object.Decode(w.Value)
		if err != nil {
			e.line("%s stores a hint for %s: %s undecodable: %v", id, target, key, err)
			return
		}
		e.line("%s stores a hint for %s: %s %s", id, target, key, e.object(string(key), o))
		return
	}
	// Node metadata (epochs, the cluster state every node saves as it
	// adopts it) is left out: the state shows once, where it is made.
}

// object prints a stored version: its siblings with their dots, and the
// causal history when it records more than the siblings' own dots (what a
// write with a context superseded).
func (e *env) object(key string, o object.Object) string {
	var sibs []string
	covered := true
	for _, en := range o.Clock.Entries {
		for i, s := range en.Values {
			sibs = append(sibs, sibling(s)+"@"+e.dot(key, dvv.Dot{Actor: en.Actor, Counter: en.Counter - uint64(i)}))
		}
		if e.counter(key, en.Actor, en.Counter) != uint64(len(en.Values)) {
			covered = false
		}
	}
	out := "{" + strings.Join(sibs, " ") + "}"
	if !covered {
		out += " seen " + e.vv(key, o.Clock.Join())
	}
	return out
}

func sibling(s object.Sibling) string {
	if s.Deleted {
		return "<deleted>"
	}
	return string(s.Value)
}

func (e *env) context(key string, raw []byte) string {
	vv, err := dvv.DecodeContext(raw)
	if err != nil {
		return "<bad context: " + err.Error() + ">"
	}
	return e.vv(key, vv)
}

func (e *env) vv(key string, vv dvv.VV) string {
	ds := make([]string, len(vv))
	for i, d := range vv {
		ds[i] = e.dot(key, d)
	}
	return "[" + strings.Join(ds, " ") + "]"
}

// dot prints a version stamp as actor:counter, the paper's [Sx,1].
func (e *env) dot(key string, d dvv.Dot) string {
	return e.actor(d.Actor) + ":" + strconv.FormatUint(e.counter(key, d.Actor, d.Counter), 10)
}

// counter maps an actor's counter for key to its rank from the first one
// seen (1, 2, ...).
func (e *env) counter(key, actor string, c uint64) uint64 {
	k := key + "\x00" + actor
	b, ok := e.base[k]
	if !ok || c < b {
		// The first sighting of an actor is its first write to the key;
		// an earlier counter would mean a sighting was missed, and the
		// rank then restarts there.
		b = c
		e.base[k] = b
	}
	return c - b + 1
}

func (e *env) actor(a string) string {
	if name, ok := e.actors[a]; ok {
		return name
	}
	// A fresh actor of a hinted write: the node's actor, '+', a suffix.
	if life, _, ok := strings.Cut(a, "+"); ok {
		if owner, ok := e.actors[life]; ok {
			e.fresh[owner]++
			name := fmt.Sprintf("%s+%d", owner, e.fresh[owner])
			e.actors[a] = name
			return name
		}
	}
	return a
}
