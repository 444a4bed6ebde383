package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"

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
}

// Error codes of the admin endpoints.
const (
	CodeTransition = "transition_in_progress" // a membership change is running
	CodeNoChange   = "no_change"              // nothing staged
	CodeNoRing     = "no_ring"                // this node has not joined a cluster yet
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
	p, err := ad.Plan(r.Context())
	if err != nil && !errors.Is(err, node.ErrNoChange) {
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
}

func (a *api) handoff() (*handoffJSON, map[ring.NodeID]int) {
	ad, ok := a.b.(Admin)
	if !ok {
		return nil, nil
	}
	hp, next := ad.Progress()
	h := &handoffJSON{InProgress: hp.InTransition, Claimant: hp.Claimant, Total: hp.Total, Done: hp.Done, Pending: []moveJSON{}}
	for _, t := range hp.Pending {
		h.Pending = append(h.Pending, moveJSON{t.Partition, t.From, t.To})
	}
	if next == nil {
		return h, nil
	}
	return h, next.PartitionCounts()
}
