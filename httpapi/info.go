package httpapi

import (
	"cmp"
	"encoding/base64"
	"net/http"
	"slices"

	"github.com/dynago/dynago/api"
	"github.com/dynago/dynago/ring"
)

func (a *handler) placement(w http.ResponseWriter, r *http.Request) {
	key, e := a.key(r)
	if e != nil {
		writeError(w, e)
		return
	}
	rg := a.b.Ring()
	if rg == nil {
		writeError(w, &apiError{http.StatusServiceUnavailable, CodeNoRing, "this node has not joined a cluster yet"})
		return
	}
	p := rg.PartitionOf(key)
	writeJSON(w, http.StatusOK, api.Placement{
		Key:            string(key),
		Partition:      p,
		PreferenceList: nonNil(rg.PreferenceList(p)),
		Fallbacks:      nonNil(rg.Fallbacks(p)),
	})
}

func (a *handler) cluster(w http.ResponseWriter, _ *http.Request) {
	n, r, wq := a.b.Defaults()
	rg := a.b.Ring()
	if rg == nil {
		writeError(w, &apiError{http.StatusServiceUnavailable, CodeNoRing, "this node has not joined a cluster yet"})
		return
	}
	counts := rg.PartitionCounts()
	handoff, nextCounts := a.handoff()
	// Sorted so that successive answers diff cleanly, whatever order the
	// membership layer keeps.
	members := slices.SortedFunc(slices.Values(a.b.Members()), func(x, y Member) int { return cmp.Compare(x.ID, y.ID) })
	nodes := make([]api.ClusterNode, len(members))
	for i, m := range members {
		nodes[i] = api.ClusterNode{ID: m.ID, HTTPAddr: m.HTTPAddr, Status: m.Status, Partitions: counts[m.ID], Version: m.Version, Commit: m.Commit}
		if nextCounts != nil {
			c := nextCounts[m.ID]
			nodes[i].NextPartitions = &c
		}
	}
	writeJSON(w, http.StatusOK, api.Cluster{
		Node:        a.b.NodeID(),
		N:           n,
		R:           r,
		W:           wq,
		Partitions:  rg.Partitions(),
		RingVersion: rg.Version(),
		Nodes:       nodes,
		Handoff:     handoff,
	})
}

type localBody struct {
	Key      string         `json:"key"`
	Node     ring.NodeID    `json:"node"`
	Siblings []localSibling `json:"siblings"`
	Context  string         `json:"context"`
	Hints    []localHint    `json:"hints"`
}

type localSibling struct {
	Value   string `json:"value"` // standard base64; "" for a tombstone
	Deleted bool   `json:"deleted"`
}

type localHint struct {
	For ring.NodeID `json:"for"`
}

func (a *handler) local(w http.ResponseWriter, r *http.Request) {
	key, e := a.key(r)
	if e != nil {
		writeError(w, e)
		return
	}
	l, ok, err := a.b.Local(key)
	if err != nil {
		a.opts.Logger.Error("httpapi: reading local copy", "key", string(key), "err", err)
		writeError(w, &apiError{http.StatusInternalServerError, CodeInternal, "reading the local copy: " + err.Error()})
		return
	}
	if !ok {
		writeError(w, &apiError{http.StatusNotFound, CodeNotFound, "this node holds nothing for the key"})
		return
	}
	body := localBody{
		Key:      string(key),
		Node:     a.b.NodeID(),
		Siblings: make([]localSibling, len(l.Siblings)),
		Context:  EncodeContextHeader(key, l.Context),
		Hints:    make([]localHint, len(l.Hints)),
	}
	for i, s := range l.Siblings {
		body.Siblings[i] = localSibling{Value: base64.StdEncoding.EncodeToString(s.Value), Deleted: s.Deleted}
	}
	for i, h := range l.Hints {
		body.Hints[i] = localHint{For: h}
	}
	writeJSON(w, http.StatusOK, body)
}

func (a *handler) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		Status string      `json:"status"`
		Node   ring.NodeID `json:"node"`
	}{"ok", a.b.NodeID()})
}
