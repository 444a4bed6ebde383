package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

// Admin is implemented by backends that support membership changes: the
// staged join/leave, plan and commit of DESIGN.md.
type Admin interface {
	// Plan computes what a commit would do now.
	Plan(ctx context.Context) (node.Plan, error)
	// Commit starts the planned transition, this node its claimant.
	Commit(ctx context.Context) (node.Plan, error)
	// StageLeave stages a node to leave at the next commit.
	StageLeave(ctx context.Context, id ring.NodeID) error
	// Progress reports the running transition, and the ring it moves to.
	Progress() (node.HandoffProgress, *ring.Ring)
	// LastProgress is when this node last saw the running transition
	// advance (a handoff recorded), or begin.
	LastProgress() time.Time
	// Abort rolls the running transition back, on this node. It returns
	// the progress at the abort.
	Abort(ctx context.Context) (node.HandoffProgress, error)
}

// ErrMemberUnreachable reports a node that would join but whose advertised
// addresses do not answer as that node; backends wrap it.
var ErrMemberUnreachable = errors.New("a joining node's advertised addresses do not answer")

// Error codes of the admin endpoints.
const (
	CodeTransition = "transition_in_progress" // a membership change is running
	CodeNoChange   = "no_change"              // nothing staged
	CodeNoRing     = "no_ring"                // this node has not joined a cluster yet
	// CodeNoTransition answers an abort with no change running.
	CodeNoTransition = "no_transition"
	// CodeMemberUnreachable refuses a plan or commit with a joining node
	// whose advertised addresses do not answer.
	CodeMemberUnreachable = "member_unreachable"
)

type moveJSON struct {
	Partition int         `json:"partition"`
	From      ring.NodeID `json:"from"`
	To        ring.NodeID `json:"to"`
}

type transferJSON struct {
	moveJSON
	Keys int `json:"keys"` // objects the answering node holds in the partition; -1 unknown
}

type planBody struct {
	RingVersion uint64              `json:"ring_version"`
	Joining     []ring.NodeID       `json:"joining"`
	Leaving     []ring.NodeID       `json:"leaving"`
	Moves       []moveJSON          `json:"moves"`
	Transfers   []transferJSON      `json:"transfers"`
	Before      map[ring.NodeID]int `json:"partitions_before"`
	After       map[ring.NodeID]int `json:"partitions_after"`
	Committed   bool                `json:"committed"`
}

func newPlanBody(p node.Plan, committed bool) planBody {
	b := planBody{RingVersion: p.FromVersion, Joining: nonNil(p.Joining), Leaving: nonNil(p.Leaving),
		Moves: []moveJSON{}, Transfers: []transferJSON{}, Before: p.Before, After: p.After, Committed: committed}
	for _, m := range p.Moves {
		b.Moves = append(b.Moves, moveJSON{m.Partition, m.From, m.To})
	}
	for i, t := range p.Transfers {
		k := -1
		if i < len(p.Keys) {
			k = p.Keys[i]
		}
		b.Transfers = append(b.Transfers, transferJSON{moveJSON{t.Partition, t.From, t.To}, k})
	}
	return b
}

// adminError maps the core's membership errors to HTTP.
func adminError(err error) *apiError {
	switch {
	case errors.Is(err, node.ErrTransition):
		return &apiError{http.StatusConflict, CodeTransition, err.Error()}
	case errors.Is(err, node.ErrNoChange):
		return &apiError{http.StatusConflict, CodeNoChange, err.Error()}
	case errors.Is(err, node.ErrNoRing):
		return &apiError{http.StatusServiceUnavailable, CodeNoRing, err.Error()}
	case errors.Is(err, node.ErrNotMember):
		return &apiError{http.StatusNotFound, CodeNotFound, err.Error()}
	case errors.Is(err, node.ErrNoTransition):
		return &apiError{http.StatusConflict, CodeNoTransition, err.Error()}
	case errors.Is(err, ErrMemberUnreachable):
		return &apiError{http.StatusConflict, CodeMemberUnreachable, err.Error()}
	}
	return &apiError{http.StatusBadRequest, CodeBadRequest, err.Error()}
}

func (a *api) admin(w http.ResponseWriter) (Admin, bool) {
	ad, ok := a.b.(Admin)
	if !ok {
		writeError(w, &apiError{http.StatusNotFound, CodeNotFound, "this node does not support membership changes"})
	}
	return ad, ok
}

func (a *api) plan(w http.ResponseWriter, r *http.Request) {
	ad, ok := a.admin(w)
	if !ok {
		return
	}
	p, err := ad.Plan(r.Context())
	if err != nil && !errors.Is(err, node.ErrNoChange) {
		writeError(w, adminError(err))
		return
	}
	writeJSON(w, http.StatusOK, newPlanBody(p, false))
}

func (a *api) commit(w http.ResponseWriter, r *http.Request) {
	ad, ok := a.admin(w)
	if !ok {
		return
	}
	p, err := ad.Commit(r.Context())
	if err != nil {
		writeError(w, adminError(err))
		return
	}
	writeJSON(w, http.StatusOK, newPlanBody(p, true))
}

func (a *api) leave(w http.ResponseWriter, r *http.Request) {
	ad, ok := a.admin(w)
	if !ok {
		return
	}
	id := strings.TrimPrefix(r.URL.Path, "/admin/leave/")
	if id == "" || strings.Contains(id, "/") {
		writeError(w, errBadParameter("POST /admin/leave/{node id}"))
		return
	}
	if err := ad.StageLeave(r.Context(), ring.NodeID(id)); err != nil {
		writeError(w, adminError(err))
		return
	}
	// The leave is staged whatever the plan says; a joining node that does
	// not answer is for plan and commit to refuse, not this answer.
	p, err := ad.Plan(r.Context())
	if err != nil && !errors.Is(err, node.ErrNoChange) && !errors.Is(err, ErrMemberUnreachable) {
		writeError(w, adminError(err))
		return
	}
	writeJSON(w, http.StatusOK, newPlanBody(p, false))
}

// handoffJSON is the /cluster view of a running transition.
type handoffJSON struct {
	InProgress bool        `json:"in_progress"`
	Claimant   ring.NodeID `json:"claimant,omitempty"`
	Total      int         `json:"total"`
	Done       int         `json:"done"`
	Pending    []moveJSON  `json:"pending"`
	// NoProgressMS is how long, as this node saw it, no transfer has
	// completed (since the last one, or since the change began).
	NoProgressMS int64 `json:"no_progress_ms,omitempty"`
}

func (a *api) handoff() (*handoffJSON, map[ring.NodeID]int) {
	ad, ok := a.b.(Admin)
	if !ok {
		return nil, nil
	}
	hp, next := ad.Progress()
	h := &handoffJSON{InProgress: hp.InTransition, Claimant: hp.Claimant, Total: hp.Total, Done: hp.Done, Pending: []moveJSON{}}
	if hp.InTransition {
		h.NoProgressMS = max(time.Since(ad.LastProgress()).Milliseconds(), 0)
	}
	for _, t := range hp.Pending {
		h.Pending = append(h.Pending, moveJSON{t.Partition, t.From, t.To})
	}
	if next == nil {
		return h, nil
	}
	return h, next.PartitionCounts()
}

// abortBody answers POST /admin/abort.
type abortBody struct {
	Aborted  bool        `json:"aborted"`
	Node     ring.NodeID `json:"node"`     // the node that aborted it
	Claimant ring.NodeID `json:"claimant"` // the node that had committed it
	Total    int         `json:"total"`    // transfers of the aborted change
	Done     int         `json:"done"`     // of them, complete at the abort
}

// abortProxy forwards an abort to the claimant. Its timeout bounds how long
// an operator waits for a claimant that gossip reports alive but that does
// not answer; the abort then runs here.
var abortProxy = &http.Client{Timeout: 5 * time.Second}

// abort rolls the running membership change back. Only the claimant writes
// the cluster state during a change, so a node that is not the claimant
// forwards the abort to it while gossip reports it alive (and it answers);
// otherwise it aborts itself. ?forward=false stops the forwarding (the
// claimant's side of it).
func (a *api) abort(w http.ResponseWriter, r *http.Request) {
	ad, ok := a.admin(w)
	if !ok {
		return
	}
	hp, _ := ad.Progress()
	if hp.InTransition && hp.Claimant != a.b.NodeID() && r.URL.Query().Get("forward") != "false" {
		if a.forwardAbort(w, r, hp.Claimant) {
			return
		}
	}
	hp, err := ad.Abort(r.Context())
	if err != nil {
		writeError(w, adminError(err))
		return
	}
	writeJSON(w, http.StatusOK, abortBody{Aborted: true, Node: a.b.NodeID(), Claimant: hp.Claimant, Total: hp.Total, Done: hp.Done})
}

// forwardAbort relays the abort to the claimant and its answer back. It
// reports false, having written nothing, when the claimant is not known
// alive with an HTTP address or does not answer.
func (a *api) forwardAbort(w http.ResponseWriter, r *http.Request, claimant ring.NodeID) bool {
	var addr string
	for _, m := range a.b.Members() {
		if m.ID == claimant && m.Status == "alive" {
			addr = m.HTTPAddr
		}
	}
	if addr == "" {
		return false
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, "http://"+addr+"/admin/abort?forward=false", nil)
	if err != nil {
		return false
	}
	resp, err := abortProxy.Do(req)
	if err != nil {
		a.opts.Logger.Warn("httpapi: the claimant did not take the abort; aborting here", "claimant", claimant, "addr", addr, "err", err)
		return false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return false
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
	return true
}
