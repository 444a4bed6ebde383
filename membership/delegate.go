package membership

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

// hooks implements memberlist's Delegate, EventDelegate and AliveDelegate.
// memberlist calls them from its own goroutines, some with its node lock
// held, so they only touch the Membership's table under its own lock and
// never call back into memberlist.
type hooks struct{ m *Membership }

var (
	_ memberlist.Delegate      = hooks{}
	_ memberlist.EventDelegate = hooks{}
	_ memberlist.AliveDelegate = hooks{}
)

// NodeMeta returns the encoded Meta, which Start and UpdateMeta have
// checked against memberlist's limit (it panics on longer meta).
func (h hooks) NodeMeta(limit int) []byte {
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	return h.m.meta
}

// NotifyMsg receives a cluster state, by gossip or by SendReliable, or a
// leave intent.
func (h hooks) NotifyMsg(buf []byte) { h.m.receive(buf, "gossip") }

func (h hooks) GetBroadcasts(overhead, limit int) [][]byte {
	return h.m.bcast.GetBroadcasts(overhead, limit)
}

// LocalState sends the cluster state in every push/pull, join included.
func (h hooks) LocalState(join bool) []byte {
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	if h.m.state.version == 0 && len(h.m.state.data) == 0 {
		return nil // nothing published yet
	}
	return h.m.state.msg
}

func (h hooks) MergeRemoteState(buf []byte, join bool) {
	if len(buf) == 0 {
		return
	}
	h.m.receive(buf, "push/pull")
}

func (h hooks) NotifyJoin(n *memberlist.Node)   { h.m.observe(n, node.Alive) }
func (h hooks) NotifyUpdate(n *memberlist.Node) { h.m.observe(n, node.Alive) }
func (h hooks) NotifyLeave(n *memberlist.Node)  { h.m.observe(n, node.Dead) }

// NotifyAlive refuses nodes whose meta is not a dynago member's, so that a
// foreign memberlist cluster (a Consul agent on a reused port, say) can
// never merge into this one, and nodes whose name is not a usable ID.
func (h hooks) NotifyAlive(peer *memberlist.Node) error {
	if peer.Name == "" || len(peer.Name) > maxLeaveIDLen {
		return fmt.Errorf("%w: node name of %d bytes", errBadMeta, len(peer.Name))
	}
	_, err := decodeMeta(peer.Meta)
	return err
}

// observe records what memberlist says about a node.
func (m *Membership) observe(n *memberlist.Node, st node.Status) {
	meta, err := decodeMeta(n.Meta)
	if err != nil {
		// NotifyAlive keeps such nodes out; this is belt and braces.
		m.log.Debug("member with malformed meta", "member", n.Name, "err", err)
	}
	addr, ip, port := n.Address(), slices.Clone(n.Addr), n.Port
	now := time.Now()
	m.update(ring.NodeID(n.Name), true, func(e *entry) bool {
		if st == node.Dead && (e.Status != node.Dead || e.retry.since.IsZero()) {
			// Newly dead: the reconnect loop starts on it.
			e.retry = m.firstRetry(now)
		}
		if st == node.Alive {
			e.left, e.retry = false, retry{}
		}
		e.Addr, e.Meta, e.Status = addr, meta, st
		e.ip, e.port = ip, port
		return true
	})
}

// suspect marks a node Suspect after this member's probe of it failed.
// Only an Alive node can become Suspect: a Dead one stays dead until
// memberlist reports it joined again.
func (m *Membership) suspect(id ring.NodeID) {
	if id == m.cfg.ID {
		return
	}
	m.update(id, false, func(e *entry) bool {
		if e.Status != node.Alive {
			return false
		}
		e.Status = node.Suspect
		return true
	})
}

// memberlist writes this line, and nothing else at that moment, right
// before it marks a node it failed to probe as suspect (state.go,
// probeNode). It is the only signal memberlist gives for that transition.
const (
	suspectLogPrefix = "[INFO] memberlist: Suspect "
	suspectLogSuffix = " has failed, no acks received"
)

// logBridge is the io.Writer behind memberlist's *log.Logger: it forwards
// each line to slog at debug level and watches for suspicions.
type logBridge struct{ m *Membership }

func (b logBridge) Write(p []byte) (int, error) {
	line := strings.TrimSuffix(string(p), "\n")
	if rest, ok := strings.CutPrefix(line, suspectLogPrefix); ok {
		if name, ok := strings.CutSuffix(rest, suspectLogSuffix); ok {
			b.m.suspect(ring.NodeID(name))
		}
	}
	level, msg := "", line
	if strings.HasPrefix(line, "[") {
		if i := strings.IndexByte(line, ']'); i > 0 {
			level, msg = line[1:i], strings.TrimSpace(line[i+1:])
		}
	}
	msg = strings.TrimPrefix(msg, "memberlist: ")
	b.m.log.Debug(msg, "source", "memberlist", "memberlist_level", level)
	return len(p), nil
}
