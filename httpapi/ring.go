package httpapi

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"

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
	var last atomic.Pointer[ringVersionValue]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rg := a.b.Ring(); rg != nil {
			// The header value of the current version is made once and
			// shared (see jsonContentType for why that is safe), rather
			// than formatted and wrapped in a new []string per request.
			v := last.Load()
			if v == nil || v.version != rg.Version() {
				v = &ringVersionValue{rg.Version(), []string{strconv.FormatUint(rg.Version(), 10)}}
				last.Store(v)
			}
			w.Header()[RingVersionHeader] = v.header
		}
		h.ServeHTTP(w, r)
	})
}

// ringVersionValue is a RingVersionHeader value.
type ringVersionValue struct {
	version uint64
	header  []string
}
