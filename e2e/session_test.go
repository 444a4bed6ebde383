package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/dynago/dynago/devcluster"
)

// sessionRun writes keys through one node and reads each back at once
// through another, R=1 W=1, as one session (token carried) or as the
// control (no token), and counts reads that missed the write just made.
type sessionRun struct {
	t       *testing.T
	token   *string // nil: the control, no X-Dynago-Session
	prefix  string
	reads   int // reads that answered 200 or 300
	stale   int // of those, reads that did not return the value just written
	unavail int // 503 session_unavailable
	waited  int // session reads whose coordinator had to ask again (trace)
	other   []string
}

// round writes and reads key i once: through from, then through to.
func (s *sessionRun) round(i int, from, to *devcluster.Node) {
	key := fmt.Sprintf("%s%d", s.prefix, i%10)
	value := fmt.Sprintf("v%d", i)
	h := map[string]string{}
	if s.token != nil {
		h["X-Dynago-Session"] = *s.token
	}
	w := call(s.t, "PUT", base(from)+"/kv/"+key+"?w=1&timeout=2000", []byte(value), h)
	if w.Status != http.StatusNoContent {
		// A write may fail around the kill (its outcome unknown): no
		// guarantee is owed for it, and the session does not record it.
		s.other = append(s.other, fmt.Sprintf("PUT %s via %s: %d", key, from.ID, w.Status))
		s.keep(w)
		return
	}
	s.keep(w)
	if s.token != nil {
		h["X-Dynago-Session"] = *s.token
	}
	h["Accept"] = "application/json"
	r := call(s.t, "GET", base(to)+"/kv/"+key+"?r=1&timeout=2000&trace=1", nil, h)
	s.keep(r)
	switch r.Status {
	case http.StatusOK, http.StatusMultipleChoices:
		var body struct {
			Siblings [][]byte
			Trace    struct{ Events []struct{ What string } }
		}
		r.json(s.t, &body)
		s.reads++
		if slices.ContainsFunc(body.Trace.Events, func(e struct{ What string }) bool { return e.What == "session" }) {
			s.waited++
		}
		var vals []string
		for _, v := range body.Siblings {
			vals = append(vals, string(v))
		}
		switch {
		case !slices.Contains(vals, value):
			s.stale++
		case s.token != nil && len(vals) != 1:
			// Monotonic writes: the session's write supersedes its
			// earlier writes of the key, so it is the only value.
			s.t.Errorf("session read of %s via %s: siblings %q, want only %q", key, to.ID, vals, value)
		}
	case http.StatusServiceUnavailable:
		if r.errorCode(s.t) == "session_unavailable" {
			s.unavail++
		} else {
			s.other = append(s.other, fmt.Sprintf("GET %s via %s: 503 %s", key, to.ID, r.Body))
		}
	default:
		s.other = append(s.other, fmt.Sprintf("GET %s via %s: %d %s", key, to.ID, r.Status, r.Body))
	}
}

func (s *sessionRun) keep(r response) {
	if s.token == nil {
		return
	}
	if _, ok := r.Header[http.CanonicalHeaderKey("X-Dynago-Session")]; !ok {
		s.t.Fatalf("a session request's answer (%d) carries no X-Dynago-Session", r.Status)
	}
	*s.token = r.Header.Get("X-Dynago-Session")
}

// TestSessionReadYourWritesThroughAnotherNodeWithANodeKilled: with
// X-Dynago-Session, R=1 W=1 reads through another node right after a
// write always return the write, before and after a node is killed with
// SIGKILL. The same loop without the token is the control: on a real
// cluster replicas are often fast enough that it sees no stale read, so
// its count is only logged.
func TestSessionReadYourWritesThroughAnotherNodeWithANodeKilled(t *testing.T) {
	c := startCluster(t, devcluster.Config{Nodes: 5, N: 3, R: 1, W: 1})
	token := ""
	sess := &sessionRun{t: t, token: &token, prefix: "sess-"}
	ctrl := &sessionRun{t: t, prefix: "ctrl-"}
	alive := slices.Clone(c.Nodes)
	deadline := time.Now().Add(90 * time.Second)
	const rounds = 40 // per phase
	for phase := range 2 {
		if phase == 1 {
			victim := alive[2]
			if err := c.Kill(victim); err != nil {
				t.Fatal(err)
			}
			alive = slices.Delete(alive, 2, 3)
			t.Logf("killed %s (SIGKILL)", victim.ID)
		}
		for i := range rounds {
			if time.Now().After(deadline) {
				t.Fatalf("phase %d: out of time after %d rounds", phase, i)
			}
			from, to := alive[i%len(alive)], alive[(i+1)%len(alive)]
			n := phase*rounds + i
			sess.round(n, from, to)
			ctrl.round(n, from, to)
		}
	}
	t.Logf("session: %d reads (%d waited for the session's version), %d stale, %d session_unavailable, other: %v", sess.reads, sess.waited, sess.stale, sess.unavail, sess.other)
	t.Logf("control (no token): %d reads, %d stale, other: %v", ctrl.reads, ctrl.stale, ctrl.other)
	if sess.stale > 0 {
		t.Errorf("%d of %d session reads missed the session's own write", sess.stale, sess.reads)
	}
	// Most writes and reads must succeed: a run of 503s would satisfy the
	// check above vacuously.
	if sess.reads < 2*rounds*3/4 {
		t.Errorf("only %d of %d session rounds read successfully (%d session_unavailable, other %v)", sess.reads, 2*rounds, sess.unavail, sess.other)
	}
	if token == "" {
		t.Error("the session ended with an empty token")
	}
}
