package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dynago/dynago/cluster"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// stateView is what the HTTP goroutines see of the core's cluster state; the
// loop replaces it whenever the state changes.
type stateView struct {
	// n, r and w are the core's N and default quorums (Node.Defaults).
	n, r, w  int
	version  uint64
	next     *ring.Ring
	progress node.HandoffProgress
	// progressAt is when this node saw the transition begin or last
	// advance: how long a handoff has been stuck.
	progressAt time.Time
}

// publishView refreshes the ring and state snapshots. Loop goroutine only.
func (s *Server) publishView() {
	s.ring.Store(s.core.Ring())
	st := s.core.State()
	old := s.view.Load()
	v := &stateView{version: st.Version, next: s.core.NextRing(), progress: s.core.Progress(), progressAt: time.Now()}
	v.n, v.r, v.w = s.core.Defaults()
	if old != nil && old.progress.InTransition && v.progress.InTransition && old.progress.Claimant == v.progress.Claimant &&
		old.progress.Total == v.progress.Total && old.progress.Done == v.progress.Done {
		v.progressAt = old.progressAt
	}
	s.view.Store(v)
	s.progressEvent(old, v)
	if old == nil || old.version != st.Version {
		msg := fmt.Sprintf("ring version %d", st.Version)
		if st.InTransition() {
			msg += fmt.Sprintf(", moving partitions (claimant %s)", st.Claimant)
		}
		s.events.publish("ring", msg, map[string]any{"version": st.Version, "in_transition": st.InTransition(), "claimant": st.Claimant})
	}
}

// loadState returns the persisted cluster state; on first boot of a static
// cluster it creates and persists the initial one; a node started only
// with --join has none until gossip brings it.
func (s *Server) loadState() (*cluster.State, error) {
	raw, err := s.engine.Get(storage.MetaKey("cluster"))
	switch {
	case err == nil:
		st, err := cluster.Decode(raw)
		if err != nil {
			return nil, fmt.Errorf("server: persisted cluster state: %w", err)
		}
		if len(s.cfg.Cluster) > 0 {
			s.log.Info("using the persisted cluster state; --cluster only seeds a new cluster", "ring_version", st.Version)
		}
		return &st, nil
	case !errors.Is(err, storage.ErrNotFound):
		return nil, err
	case len(s.cfg.Cluster) == 0:
		s.log.Info("no cluster state yet: waiting for gossip from the nodes in --join")
		return nil, nil
	}
	st, err := cluster.Initial(s.cfg.Node.Partitions, s.cfg.Node.N, s.cfg.memberIDs())
	if err != nil {
		return nil, fmt.Errorf("server: building the initial ring: %w", err)
	}
	var b storage.Batch
	b.Set(storage.MetaKey("cluster"), cluster.Encode(st))
	if err := s.engine.Apply(&b, true); err != nil {
		return nil, err
	}
	return &st, nil
}

// onState receives a cluster state from gossip; membership has already
// checked it with checkGossipState, and this decodes it again because a
// state may have been adopted before this node held the ring it is
// compared with.
func (s *Server) onState(version uint64, raw []byte) {
	st, err := decodeGossipState(version, raw, s.Ring())
	if err != nil {
		s.log.Warn("ignoring a bad gossiped cluster state", "version", version, "err", err)
		return
	}
	select {
	case s.inputs <- input{state: &st}:
	case <-s.stop:
	}
}

// checkGossipState is membership's ValidateState: a state from gossip is
// adopted (and passed on) only if it is a usable state of this cluster.
func (s *Server) checkGossipState(version uint64, raw []byte) error {
	_, err := decodeGossipState(version, raw, s.Ring())
	return err
}

// maxGossipNodeID bounds a node ID in a gossiped state, as memberlist
// bounds node names.
const maxGossipNodeID = 255

var errGossipState = errors.New("server: gossiped cluster state refused")

// decodeGossipState decodes and validates a cluster state from gossip.
// cluster.Decode checks the tables (Q a power of two in range, N ≥ 1,
// owner tables of Q non-empty IDs, a claimant during a transition); this
// adds what a peer could forge on top: the version must be the one the
// envelope carries, Q and N must be this cluster's (both are fixed when
// the cluster is created), node IDs must be printable, handoffs must name
// real partitions and a node of the new table. (The claimant may be any
// node: a commit can be made through a node that owns nothing.)
func decodeGossipState(version uint64, raw []byte, cur *ring.Ring) (cluster.State, error) {
	st, err := cluster.Decode(raw)
	if err != nil {
		return st, err
	}
	bad := func(format string, a ...any) (cluster.State, error) {
		return cluster.State{}, fmt.Errorf("%w: "+format, append([]any{errGossipState}, a...)...)
	}
	if st.Version != version {
		return bad("version %d inside, %d outside", st.Version, version)
	}
	if cur != nil && cur.Version() > 0 {
		if st.Partitions != cur.Partitions() || st.N != cur.N() {
			return bad("Q=%d N=%d, this cluster has Q=%d N=%d", st.Partitions, st.N, cur.Partitions(), cur.N())
		}
	}
	ids := slices.Concat(st.Owners, st.Next, st.Leaving, []ring.NodeID{st.Claimant})
	for _, h := range st.Done {
		ids = append(ids, h.To)
	}
	for _, id := range ids {
		if len(id) > maxGossipNodeID || !utf8.ValidString(string(id)) || strings.IndexFunc(string(id), func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }) >= 0 {
			return bad("node ID %q", id)
		}
	}
	if len(st.Done) > 0 && st.Next == nil {
		return bad("handoffs done without a transition")
	}
	for _, h := range st.Done {
		if h.Partition < 0 || h.Partition >= st.Partitions || h.To == "" || !slices.Contains(st.Next, h.To) {
			return bad("handoff %+v", h)
		}
	}
	return st, nil
}

// inLoop runs fn on the event loop goroutine and waits for it.
func (s *Server) inLoop(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	select {
	case s.inputs <- input{fn: func() { fn(); close(done) }}:
	case <-s.stop:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-s.stop:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// aliveMembers lists the nodes gossip reports alive, this one included.
func (s *Server) aliveMembers() []ring.NodeID {
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	out := []ring.NodeID{s.cfg.ID}
	for id, m := range s.seen {
		if m.Status == node.Alive {
			out = append(out, id)
		}
	}
	return out
}

// Plan implements httpapi.Admin. A plan with a joining node whose
// advertised addresses do not answer is refused (checkJoining).
func (s *Server) Plan(ctx context.Context) (node.Plan, error) {
	alive := s.aliveMembers()
	var (
		pl  node.Plan
		err error
	)
	if e := s.inLoop(ctx, func() { pl, err = s.core.Plan(alive) }); e != nil {
		return pl, e
	}
	if err != nil {
		return pl, err
	}
	return pl, s.checkJoining(ctx, pl.Joining)
}

// Commit implements httpapi.Admin. It checks the joining nodes as Plan
// does, then commits with exactly those: a node gossip brings in between
// the check and the commit waits for the next plan.
func (s *Server) Commit(ctx context.Context) (node.Plan, error) {
	alive := s.aliveMembers()
	pl, err := s.Plan(ctx)
	if err != nil {
		return pl, err
	}
	rg := s.Ring()
	alive = slices.DeleteFunc(alive, func(id ring.NodeID) bool {
		return !rg.Contains(id) && !slices.Contains(pl.Joining, id)
	})
	if e := s.inLoop(ctx, func() { pl, err = s.core.Commit(s.now(), alive) }); e != nil {
		return pl, e
	}
	if err == nil {
		s.log.Info("membership change committed", "joining", pl.Joining, "leaving", pl.Leaving, "moves", len(pl.Moves), "transfers", len(pl.Transfers))
	}
	return pl, err
}

// StageLeave implements httpapi.Admin.
func (s *Server) StageLeave(ctx context.Context, id ring.NodeID) error {
	var err error
	if e := s.inLoop(ctx, func() { err = s.core.StageLeave(s.now(), id) }); e != nil {
		return e
	}
	return err
}

// Progress implements httpapi.Admin.
func (s *Server) Progress() (node.HandoffProgress, *ring.Ring) {
	v := s.view.Load()
	return v.progress, v.next
}

// LastProgress implements httpapi.Admin.
func (s *Server) LastProgress() time.Time { return s.view.Load().progressAt }

// Abort implements httpapi.Admin.
func (s *Server) Abort(ctx context.Context) (node.HandoffProgress, error) {
	var (
		hp  node.HandoffProgress
		err error
	)
	if e := s.inLoop(ctx, func() { hp, err = s.core.Abort(s.now()) }); e != nil {
		return hp, e
	}
	if err == nil {
		s.log.Warn("membership change aborted", "claimant", hp.Claimant, "transfers_done", hp.Done, "transfers_total", hp.Total)
	}
	return hp, err
}

// now is the clock the daemon feeds the core.
func (s *Server) now() time.Time { return time.Now() }
