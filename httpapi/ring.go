package httpapi

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"

	"github.com/dynago/dynago/api"
)

// RingVersionHeader and RingHash: see package api.
const (
	RingVersionHeader = api.RingVersionHeader
	RingHash          = api.RingHash
)

func (a *handler) ring(w http.ResponseWriter, _ *http.Request) {
	rg := a.b.Ring()
	if rg == nil {
		writeError(w, &apiError{http.StatusServiceUnavailable, CodeNoRing, "this node has not joined a cluster yet"})
		return
	}
	// Sorted so that successive answers diff cleanly, as in /cluster.
	members := slices.SortedFunc(slices.Values(a.b.Members()), func(x, y Member) int { return cmp.Compare(x.ID, y.ID) })
	nodes := make([]api.RingNode, len(members))
	for i, m := range members {
		nodes[i] = api.RingNode{ID: m.ID, HTTPAddr: m.HTTPAddr, Status: m.Status}
	}
	writeJSON(w, http.StatusOK, api.Ring{
		Version:    rg.Version(),
		Partitions: rg.Partitions(),
		N:          rg.N(),
		Hash:       RingHash,
		Owners:     rg.Owners(),
		Nodes:      nodes,
	})
}

// withRingVersion sets RingVersionHeader on every answer of h, errors
// included, before h runs: an answer that is already being written can no
// longer gain a header.
func (a *handler) withRingVersion(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rg := a.b.Ring(); rg != nil {
			w.Header().Set(RingVersionHeader, strconv.FormatUint(rg.Version(), 10))
		}
		h.ServeHTTP(w, r)
	})
}
