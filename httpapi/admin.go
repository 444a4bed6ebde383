package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/dynago/dynago/api"
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

// Error codes of the admin endpoints: see package api.
const (
	CodeTransition        = api.CodeTransition
	CodeNoChange          = api.CodeNoChange
	CodeNoRing            = api.CodeNoRing
	CodeNoTransition      = api.CodeNoTransition
	CodeMemberUnreachable = api.CodeMemberUnreachable
)

func newPlanBody(p node.Plan, committed bool) api.Plan {
	b := api.Plan{RingVersion: p.FromVersion, Joining: nonNil(p.Joining), Leaving: nonNil(p.Leaving),
		Moves: []api.Move{}, Transfers: []api.Transfer{}, Before: p.Before, After: p.After, Committed: committed}
	for _, m := range p.Moves {
		b.Moves = append(b.Moves, api.Move{Partition: m.Partition, From: m.From, To: m.To})
	}
	for i, t := range p.Transfers {
		k := -1
		if i < len(p.Keys) {
			k = p.Keys[i]
		}
		b.Transfers = append(b.Transfers, api.Transfer{Move: api.Move{Partition: t.Partition, From: t.From, To: t.To}, Keys: k})
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

func (a *handler) admin(w http.ResponseWriter) (Admin, bool) {
	ad, ok := a.b.(Admin)
	if !ok {
		writeError(w, &apiError{http.StatusNotFound, CodeNotFound, "this node does not support membership changes"})
	}
	return ad, ok
}

func (a *handler) plan(w http.ResponseWriter, r *http.Request) {
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

func (a *handler) commit(w http.ResponseWriter, r *http.Request) {
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

func (a *handler) leave(w http.ResponseWriter, r *http.Request) {
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

func (a *handler) handoff() (*api.Handoff, map[ring.NodeID]int) {
	ad, ok := a.b.(Admin)
	if !ok {
		return nil, nil
	}
	hp, next := ad.Progress()
	h := &api.Handoff{InProgress: hp.InTransition, Claimant: hp.Claimant, Total: hp.Total, Done: hp.Done, Pending: []api.Move{}}
	if hp.InTransition {
		h.NoProgressMS = max(time.Since(ad.LastProgress()).Milliseconds(), 0)
	}
	for _, t := range hp.Pending {
		h.Pending = append(h.Pending, api.Move{Partition: t.Partition, From: t.From, To: t.To})
	}
	if next == nil {
		return h, nil
	}
	return h, next.PartitionCounts()
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
func (a *handler) abort(w http.ResponseWriter, r *http.Request) {
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
	writeJSON(w, http.StatusOK, api.Abort{Aborted: true, Node: a.b.NodeID(), Claimant: hp.Claimant, Total: hp.Total, Done: hp.Done})
}

// forwardAbort relays the abort to the claimant and its answer back. It
// reports false, having written nothing, when the claimant is not known
// alive with an HTTP address or does not answer.
func (a *handler) forwardAbort(w http.ResponseWriter, r *http.Request, claimant ring.NodeID) bool {
	var addr string
	for _, m := range a.b.Members() {
		if m.ID == claimant && m.Status == "alive" {
			addr = m.HTTPAddr
		}
	}
	if addr == "" {
		return false
	}
	scheme, hc := "http", abortProxy
	if a.opts.PeerTLS != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = a.opts.PeerTLS()
		defer tr.CloseIdleConnections()
		scheme, hc = "https", &http.Client{Timeout: abortProxy.Timeout, Transport: tr}
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, scheme+"://"+addr+"/admin/abort?forward=false", nil)
	if err != nil {
		return false
	}
	resp, err := hc.Do(req)
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
