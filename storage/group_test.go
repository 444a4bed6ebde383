package storage

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// orderedEngine wraps an engine to observe group commit from below: it
// numbers every Apply when it completes, remembers which number each key
// got, and advances durableThrough to the number that was current when a
// Sync started, once that Sync returns. A key is durable exactly when its
// number is at most durableThrough. Sync sleeps to model a slow disk, so
// that committers pile up behind it.
type orderedEngine struct {
	Engine
	syncDelay time.Duration

	mu             sync.Mutex
	seq            uint64
	keySeq         map[string]uint64
	durableThrough uint64
	syncErr        error
}

func newOrderedEngine(inner Engine, syncDelay time.Duration) *orderedEngine {
	return &orderedEngine{Engine: inner, syncDelay: syncDelay, keySeq: make(map[string]uint64)}
}

func (o *orderedEngine) Apply(b *Batch, sync bool) error {
	if sync {
		return errors.New("group commit must apply without syncing")
	}
	if err := o.Engine.Apply(b, false); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seq++
	return b.Each(func(k, _ []byte, _ bool) error {
		o.keySeq[string(k)] = o.seq
		return nil
	})
}

func (o *orderedEngine) Sync() error {
	o.mu.Lock()
	start, err := o.seq, o.syncErr
	o.mu.Unlock()
	time.Sleep(o.syncDelay)
	if err != nil {
		return err
	}
	if err := o.Engine.Sync(); err != nil {
		return err
	}
	o.mu.Lock()
	o.durableThrough = max(o.durableThrough, start)
	o.mu.Unlock()
	return nil
}

func (o *orderedEngine) durable(key string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	s, ok := o.keySeq[key]
	return ok && s <= o.durableThrough
}

func (o *orderedEngine) failSyncs(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.syncErr = err
}

func TestGroupCommitSharesSyncs(t *testing.T) {
	const writers, perWriter = 64, 10
	oe := newOrderedEngine(NewMem(), 5*time.Millisecond)
	g := NewGroupCommitter(oe)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			var b Batch
			for i := range perWriter {
				key := fmt.Sprintf("w%02d-%02d", w, i)
				b.Reset()
				b.Set([]byte(key), []byte("v"))
				if err := g.Commit(&b); err != nil {
					t.Errorf("Commit(%s): %v", key, err)
					return
				}
				if !oe.durable(key) {
					t.Errorf("Commit(%s) returned before a sync covering it returned", key)
				}
			}
		})
	}
	wg.Wait()
	commits, syncs := g.Stats()
	t.Logf("%d commits, %d syncs (%.1f commits per sync)", commits, syncs, float64(commits)/float64(syncs))
	if commits != writers*perWriter {
		t.Fatalf("commits = %d, want %d", commits, writers*perWriter)
	}
	if syncs >= commits/2 {
		t.Fatalf("syncs = %d for %d commits: concurrent commits must share syncs", syncs, commits)
	}
}

// A lone committer gets its own sync: group commit must never wait for
// company.
func TestGroupCommitSingleWriter(t *testing.T) {
	oe := newOrderedEngine(NewMem(), 0)
	g := NewGroupCommitter(oe)
	var b Batch
	for i := range 5 {
		b.Reset()
		key := fmt.Sprint("k", i)
		b.Set([]byte(key), []byte("v"))
		if err := g.Commit(&b); err != nil {
			t.Fatal(err)
		}
		if !oe.durable(key) {
			t.Fatalf("Commit(%s) returned before its sync", key)
		}
	}
	if commits, syncs := g.Stats(); commits != 5 || syncs != 5 {
		t.Fatalf("commits, syncs = %d, %d; want 5, 5", commits, syncs)
	}
}

func TestGroupCommitSyncFailure(t *testing.T) {
	oe := newOrderedEngine(NewMem(), time.Millisecond)
	g := NewGroupCommitter(oe)
	oe.failSyncs(ErrInjected)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			var b Batch
			b.Set(fmt.Append(nil, "k", i), []byte("v"))
			if err := g.Commit(&b); !errors.Is(err, ErrInjected) {
				t.Errorf("Commit with failing syncs = %v, want ErrInjected", err)
			}
		})
	}
	wg.Wait()
	if commits, _ := g.Stats(); commits != 0 {
		t.Fatalf("commits = %d after failed syncs, want 0", commits)
	}
	oe.failSyncs(nil)
	var b Batch
	b.Set([]byte("after"), []byte("v"))
	if err := g.Commit(&b); err != nil {
		t.Fatalf("Commit after the disk recovered: %v", err)
	}
	if !oe.durable("after") {
		t.Fatal("Commit returned before its sync")
	}
}

func TestGroupCommitApplyFailure(t *testing.T) {
	f := NewFaulty(NewMem())
	g := NewGroupCommitter(f)
	f.FailWrites(ErrInjected)
	var b Batch
	b.Set([]byte("k"), []byte("v"))
	if err := g.Commit(&b); !errors.Is(err, ErrInjected) {
		t.Fatalf("Commit = %v, want ErrInjected", err)
	}
	wantMissing(t, f, "k")
}
