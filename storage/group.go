package storage

import "sync"

// GroupCommitter lets many goroutines commit batches durably while sharing
// fsyncs: each Commit applies its batch without syncing, then either
// becomes the leader and syncs everything applied so far, or waits for the
// leader whose sync covers its batch. Under load, one fsync acknowledges as
// many batches as arrived during the previous fsync (the leader/follower
// scheme of LevelDB's and Pebble's write paths), so throughput grows with
// concurrency while each Commit still waits for at most two fsyncs.
type GroupCommitter struct {
	e Engine

	mu      sync.Mutex
	wake    sync.Cond
	applied uint64 // sequence number of the last batch applied
	synced  uint64 // every batch with a sequence number up to this is durable
	// failedThrough is the highest sequence number covered by a failed
	// sync; failErr is that sync's error.
	failedThrough uint64
	failErr       error
	leading       bool // a leader is in Sync
	commits       uint64
	syncs         uint64
}

// NewGroupCommitter returns a committer writing to e. Every writer of e that
// needs durability should go through the same committer, though writes made
// directly with Apply are also covered by its syncs.
func NewGroupCommitter(e Engine) *GroupCommitter {
	g := &GroupCommitter{e: e}
	g.wake.L = &g.mu
	return g
}

// Commit applies b and returns once b is durable: only after an engine Sync
// that started after b was applied has returned. An error means b may or
// may not be durable (a failed sync says nothing about what reached the
// disk), so the caller must treat the outcome as unknown, never as "not
// written". b may be reused as soon as Commit returns.
func (g *GroupCommitter) Commit(b *Batch) error {
	// Applying outside the lock lets the engine take writes concurrently
	// (Pebble pipelines them) while a leader is in its fsync.
	if err := g.e.Apply(b, false); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	// The sequence number is taken after Apply returned, so any sync whose
	// leader reads g.applied at or after this point covers b.
	g.applied++
	seq := g.applied
	for {
		switch {
		case g.synced >= seq:
			g.commits++
			return nil
		case g.failedThrough >= seq:
			return g.failErr
		case !g.leading:
			g.lead()
		default:
			g.wake.Wait()
		}
	}
}

// lead runs one sync on behalf of every batch applied so far. Called and
// returns with g.mu held, releasing it during the sync.
func (g *GroupCommitter) lead() {
	g.leading = true
	target := g.applied
	g.mu.Unlock()
	err := g.e.Sync()
	g.mu.Lock()
	g.leading = false
	g.syncs++
	if err == nil {
		g.synced = max(g.synced, target)
	} else {
		g.failedThrough, g.failErr = target, err
	}
	g.wake.Broadcast()
}

// Stats returns how many Commits succeeded and how many engine syncs were
// issued; commits/syncs is the achieved batching factor.
func (g *GroupCommitter) Stats() (commits, syncs uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.commits, g.syncs
}
