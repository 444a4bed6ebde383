package httpapi

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"

	"github.com/dynago/dynago/ring"
)

// RingVersionHeader is set on every /kv/ answer to the version of the ring
// the answering node holds, so that a routing client (client.WithRouting)
// notices a membership change on its next answer instead of polling /ring.
const RingVersionHeader = "X-Dynago-Ring-Version"

// RingHash names the key hash of every dynago ring (ring.DefaultHash) in
// /ring answers. A client that places keys itself must refuse any other
// value: placing keys with a different hash sends every request to the
// wrong node.
const RingHash = "xxhash64"

// ringBody is the /ring answer: everything a client needs to rebuild the
// ring with ring.FromOwners and reach each node directly.
type ringBody struct {
	Version    uint64        `json:"version"`
	Partitions int           `json:"partitions"`
	N          int           `json:"n"`
	Hash       string        `json:"hash"`
	Owners     []ring.NodeID `json:"owners"` // owners[p] owns partition p
	Nodes      []ringNode    `json:"nodes"`
}

type ringNode struct {
	ID       ring.NodeID `json:"id"`
	HTTPAddr string      `json:"http_addr"`
	Status   string      `json:"status"`
}

func (a *api) ring(w http.ResponseWriter, _ *http.Request) {
	rg := a.b.Ring()
	if rg == nil {
		writeError(w, &apiError{http.StatusServiceUnavailable, CodeNoRing, "this node has not joined a cluster yet"})
		return
	}
	// Sorted so that successive answers diff cleanly, as in /cluster.
	members := slices.SortedFunc(slices.Values(a.b.Members()), func(x, y Member) int { return cmp.Compare(x.ID, y.ID) })
	nodes := make([]ringNode, len(members))
	for i, m := range members {
		nodes[i] = ringNode{ID: m.ID, HTTPAddr: m.HTTPAddr, Status: m.Status}
	}
	writeJSON(w, http.StatusOK, ringBody{
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
func (a *api) withRingVersion(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rg := a.b.Ring(); rg != nil {
			w.Header().Set(RingVersionHeader, strconv.FormatUint(rg.Version(), 10))
		}
		h.ServeHTTP(w, r)
	})
}
