package server

import (
	"time"

	"github.com/dynago/dynago/cluster"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/storage"
)

// statsEvery is how often the loop refreshes the snapshot of the core's
// counters and state that /admin/stats and the gauges read: often enough
// for a dashboard polling a few times a second, rarely enough that a burst
// of writes costs one snapshot, not one per write.
const statsEvery = 200 * time.Millisecond

// publishStats snapshots the core's counters. Loop goroutine only.
func (s *Server) publishStats() {
	st := s.core.Stats()
	s.coreSnapshot.Store(&st)
}

// stats returns the latest snapshot of the core's counters.
func (s *Server) stats() node.Stats {
	if st := s.coreSnapshot.Load(); st != nil {
		return *st
	}
	return node.Stats{}
}

// maxKeptBatch bounds the bytes of the write batch collect keeps for the
// next loop pass.
const maxKeptBatch = 1 << 20

// maxDrain bounds how many queued inputs one loop iteration feeds the core
// before collecting its Ready, so that one burst cannot delay everything
// else indefinitely while still batching many writes into one fsync.
const maxDrain = 1024

// loop is the event loop: the only goroutine that touches the core.
func (s *Server) loop() {
	defer close(s.loopDone)
	ticker := time.NewTicker(s.cfg.TickInterval)
	defer ticker.Stop()
	s.core.Tick(time.Now())
	for {
		select {
		case <-s.stop:
			return
		case in := <-s.inputs:
			now := time.Now()
			s.stepAt = now
			s.feed(now, in)
		drain:
			for i := 1; i < maxDrain; i++ {
				select {
				case in := <-s.inputs:
					s.feed(now, in)
				default:
					break drain
				}
			}
		case <-ticker.C:
			now := time.Now()
			s.stepAt = now
			s.core.Tick(now)
			s.requestSync() // a lazy batch may have come due
		case res := <-s.syncDone:
			s.syncing = false
			if res.err != nil {
				// An fsync failure means we cannot know what is durable.
				// Acknowledging anything now could lie; stopping the node is
				// the only safe answer (as PostgreSQL and Pebble do).
				s.log.Error("fsync failed; stopping the node to protect acknowledged data", "err", res.err)
				s.failStop()
				return
			}
			s.syncedSeq = res.seq
			s.releaseHeld()
		}
		if !s.collect() {
			return // fail-stopped: nothing more may leave this node
		}
		if now := time.Now(); now.Sub(s.statsAt) >= statsEvery {
			s.statsAt = now
			s.publishStats()
		}
		s.metrics.inflight.Set(float64(s.core.InFlight()))
	}
}

func (s *Server) feed(now time.Time, in input) {
	if in.fn != nil {
		s.core.Tick(now)
		in.fn()
		return
	}
	if d := in.defaults; d != nil {
		err := s.core.SetDefaults(d.r, d.w)
		if err == nil {
			// Published before the answer, so that the caller reads its
			// own change back.
			s.publishView()
			_, r, w := s.core.Defaults()
			s.log.Info("default quorums changed", "r", r, "w", w)
		}
		d.done <- err
		return
	}
	if in.state != nil {
		// A stopped core refuses states too; collect reports why.
		if err := s.core.SetState(now, *in.state); err != nil && s.core.Err() == nil {
			s.log.Warn("ignoring gossiped cluster state", "err", err)
		}
		return
	}
	if in.status != nil {
		s.core.Tick(now)
		s.core.SetStatus(in.status.ID, in.status.Status)
		return
	}
	if in.req != nil {
		s.core.Propose(now, *in.req)
		return
	}
	for i := range in.reqs {
		s.core.Propose(now, in.reqs[i])
	}
	for _, m := range in.msgs {
		s.core.Step(now, m)
	}
}

// collect takes the core's Ready: writes go to Pebble unsynced (visible to
// the core's reads at once) and the outputs wait for the fsync that makes
// them durable. It reports false when it stopped the node.
func (s *Server) collect() bool {
	if !s.core.HasReady() {
		return true
	}
	rd := s.core.Ready()
	if rd.Err != nil {
		// The core could not read its own storage, and has stopped (as a
		// raft node does). What it computed from the failed read (a Merkle
		// tree, a handoff's keys) could be wrong; restarting on the same
		// disk re-reads everything, so stop as on a failed fsync.
		s.log.Error("storage read failed; stopping the node", "err", rd.Err)
		s.failStop()
		return false
	}
	for _, e := range rd.Events {
		if e.Kind == node.TreeBuilt {
			// The build ran inside the steps just taken, and dominates
			// them; the core has no clock of its own to time it with.
			s.metrics.treeBuild.Observe(time.Since(s.stepAt).Seconds())
			break
		}
	}
	if len(rd.Writes) > 0 {
		rd.BatchInto(&s.batch)
		if err := s.engine.Apply(&s.batch, false); err != nil {
			s.log.Error("storage write failed; stopping the node", "err", err)
			s.failStop()
			return false
		}
		if s.batch.Size() > maxKeptBatch {
			s.batch = storage.Batch{} // one handoff's pass must not pin its buffer
		}
		s.writeSeq++
		s.metrics.batchWrites.Observe(float64(len(rd.Writes)))
	}
	s.core.Advance()
	for _, m := range rd.Requests {
		s.trans.Send(m) // queued by value: the slice is free after
	}
	s.core.Recycle(node.Ready{Writes: rd.Writes, Requests: rd.Requests})
	if rd.State != nil || s.view.Load().version != s.core.StateVersion() {
		s.publishView()
	}
	if len(rd.Messages) == 0 && len(rd.Replies) == 0 && len(rd.Events) == 0 && rd.State == nil {
		s.core.Recycle(node.Ready{Messages: rd.Messages, Replies: rd.Replies}) // empty, but their arrays serve again
		if len(rd.Writes) > 0 {
			s.urgentSeq = s.writeSeq // nothing waits for them, but nothing marked them lazy either
		}
		s.requestSync()
		return true
	}
	h := held{seq: s.writeSeq, msgs: rd.Messages, replies: rd.Replies, events: rd.Events, state: rd.State}
	if s.writeSeq == s.syncedSeq {
		s.release(h)
		return true
	}
	s.hold = append(s.hold, h)
	if s.cfg.LazySyncDelay > 0 && lazyOnly(rd) {
		// A pass without writes holds its outputs for an earlier batch,
		// which is already timed, urgent or covered by the running fsync;
		// timing it would leave a stale start for the next lazy batch.
		if s.lazySince.IsZero() && len(rd.Writes) > 0 {
			s.lazySince = time.Now()
		}
	} else {
		s.urgentSeq = s.writeSeq
	}
	s.requestSync()
	return true
}

// lazyOnly reports whether the only outputs rd holds back for its fsync
// are acknowledgements no quorum waits for (node.Message.LazySync), and
// events. Such a batch need not start an fsync of its own: the next one
// covers it, and collect bounds the wait by Config.LazySyncDelay.
//
// Why: with W=1 a put's coordinator answers on its own copy, and its
// replicas' fsyncs are work nobody waits for that competes for the disk and
// the processors with fsyncs somebody does wait for. Eight nodes sharing a
// disk (the seed table) spent an fsync on every replica copy; left to the
// next fsync, the replicas' copies ride along with the ones that matter.
func lazyOnly(rd node.Ready) bool {
	if len(rd.Replies) > 0 || rd.State != nil || len(rd.Messages) == 0 {
		return false
	}
	for i := range rd.Messages {
		if !rd.Messages[i].LazySync {
			return false
		}
	}
	return true
}

// requestSync starts an fsync unless one is running (the one running will
// be followed by another when it returns: releaseHeld checks) or nothing
// waits for one yet: every batch not yet synced holds back only lazy
// acknowledgements (lazyOnly), none of them for LazySyncDelay.
func (s *Server) requestSync() {
	if s.syncing || s.writeSeq == s.syncedSeq {
		return
	}
	if s.urgentSeq <= s.syncedSeq {
		if s.lazySince.IsZero() || time.Since(s.lazySince) < s.cfg.LazySyncDelay {
			return
		}
		s.metrics.lazyFsyncs.Inc()
	}
	s.syncing = true
	s.lazySince = time.Time{} // this fsync covers every batch applied so far
	s.syncReq <- s.writeSeq   // never blocks: at most one request is outstanding
}

func (s *Server) releaseHeld() {
	i := 0
	for ; i < len(s.hold) && s.hold[i].seq <= s.syncedSeq; i++ {
		s.release(s.hold[i])
	}
	clear(s.hold[:i]) // their slices went back to the core
	s.hold = s.hold[i:]
	s.requestSync()
}

func (s *Server) release(h held) {
	if h.state != nil && s.members != nil {
		if err := s.members.SetState(h.state.Version, cluster.Encode(*h.state)); err != nil {
			s.log.Warn("publishing cluster state", "version", h.state.Version, "err", err)
		}
	}
	for _, m := range h.msgs {
		s.trans.Send(m)
	}
	s.publishEvents(h.events)
	if len(h.replies) > 0 {
		s.mu.Lock()
		for _, r := range h.replies {
			if ch, ok := s.waiters[r.ID]; ok {
				ch <- r // buffered; exactly one reply per request
			}
		}
		s.mu.Unlock()
	}
	s.core.Recycle(node.Ready{Messages: h.msgs, Replies: h.replies}) // sent by value
}

// syncer performs fsyncs on request. The loop sends a request, carrying the
// number of the last batch it applied, only when no fsync is running; the
// fsync that follows covers that batch and every one before it.
func (s *Server) syncer() {
	defer close(s.syncDead)
	var seq uint64
	for {
		select {
		case <-s.stop:
			return
		case seq = <-s.syncReq:
		}
		if s.cfg.beforeSync != nil {
			s.cfg.beforeSync()
		}
		start := time.Now()
		err := s.engine.Sync()
		s.metrics.fsync.Observe(time.Since(start).Seconds())
		select {
		case s.syncDone <- syncResult{seq: seq, err: err}:
		case <-s.stop:
			return
		}
	}
}

// failStop stops the node after a storage failure, answering nothing more.
func (s *Server) failStop() {
	s.failed.Store(true)
	s.halt()
}

// halt closes stop exactly once, whoever calls it first.
func (s *Server) halt() { s.stopOnce.Do(func() { close(s.stop) }) }
