package main

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/httpapi/httpapitest"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

// stuckAdmin is the fake backend with a membership change that stopped
// advancing at lastProgress.
type stuckAdmin struct {
	*httpapitest.Backend
	mu           sync.Mutex
	hp           node.HandoffProgress
	lastProgress time.Time
	aborts       int
}

func (b *stuckAdmin) Plan(context.Context) (node.Plan, error) { return node.Plan{}, node.ErrTransition }
func (b *stuckAdmin) Commit(context.Context) (node.Plan, error) {
	return node.Plan{}, node.ErrTransition
}
func (b *stuckAdmin) StageLeave(context.Context, ring.NodeID) error {
	return node.ErrTransition
}

func (b *stuckAdmin) Progress() (node.HandoffProgress, *ring.Ring) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.hp.InTransition {
		return b.hp, nil
	}
	return b.hp, b.Ring()
}

func (b *stuckAdmin) LastProgress() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastProgress
}

func (b *stuckAdmin) Abort(context.Context) (node.HandoffProgress, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.hp.InTransition {
		return node.HandoffProgress{}, node.ErrNoTransition
	}
	b.aborts++
	hp := b.hp
	b.hp = node.HandoffProgress{}
	return hp, nil
}

func TestStatusShowsAStuckHandoffAndAbortEndsIt(t *testing.T) {
	b := &stuckAdmin{Backend: httpapitest.New()}
	b.SetStatus("n4", "dead")
	pending := []ring.Transfer{{Partition: 12, From: "n3", To: "n4"}, {Partition: 13, From: "n2", To: "n4"}}
	b.hp = node.HandoffProgress{InTransition: true, Claimant: "n1", Total: 3, Done: 1, Pending: pending}
	b.lastProgress = time.Now().Add(-90 * time.Second)
	srv := httptest.NewServer(httpapi.New(b, httpapi.Options{}))
	t.Cleanup(srv.Close)
	t.Setenv("DYNAGO_ADDR", srv.Listener.Addr().String())

	out := mustRun(t, "status")
	for _, want := range []string{
		"handoff in progress (claimant n1): 1 of 3 transfers done",
		"NO PROGRESS: 1/3 transfers, none completed for 1m30s",
		"handoff n3→n4 partition 12: waiting (n4 is dead)",
		"handoff n2→n4 partition 13: waiting (n4 is dead)",
		"dynago admin abort",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}

	// A handoff that advanced recently is not called stuck.
	b.mu.Lock()
	b.lastProgress = time.Now().Add(-2 * time.Second)
	b.mu.Unlock()
	if out := mustRun(t, "status"); !strings.Contains(out, "1 of 3 transfers done") || strings.Contains(out, "NO PROGRESS") {
		t.Fatalf("status of a moving handoff:\n%s", out)
	}

	out = mustRun(t, "admin", "abort")
	if want := "aborted the change committed by n1 (1 of 3 transfers had completed); the ring is unchanged\n"; out != want {
		t.Fatalf("admin abort printed %q, want %q", out, want)
	}
	if out := mustRun(t, "status"); strings.Contains(out, "handoff") {
		t.Fatalf("status after the abort still shows a handoff:\n%s", out)
	}
	// Nothing to abort now: a clear error, not a second abort.
	_, err := run(t, "", "admin", "abort")
	if err == nil || !strings.Contains(err.Error(), "no membership change in progress") {
		t.Fatalf("second abort: %v", err)
	}
	if b.aborts != 1 {
		t.Fatalf("%d aborts reached the backend, want 1", b.aborts)
	}
}
