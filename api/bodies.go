package api

import "github.com/dynago/dynago/ring"

// Values is the JSON form of a read (GET /kv/{key} with Accept:
// application/json, or any read of several siblings).
type Values struct {
	Key      string   `json:"key"`
	Context  string   `json:"context"`
	Siblings [][]byte `json:"siblings"` // standard base64, as encoding/json writes []byte
	Trace    *Trace   `json:"trace,omitempty"`
}

// Written is the JSON answer of a traced put or delete (?trace=1); an
// untraced one answers 204 with the context in ContextHeader only.
type Written struct {
	Context string `json:"context"`
	Trace   *Trace `json:"trace,omitempty"`
}

// Trace is the "trace" member of a ?trace=1 answer: how the coordinator
// served the request.
type Trace struct {
	Coordinator    ring.NodeID   `json:"coordinator"`
	ForwardedBy    ring.NodeID   `json:"forwarded_by,omitempty"`
	Partition      int           `json:"partition"`
	PreferenceList []ring.NodeID `json:"preference_list"`
	Events         []TraceEvent  `json:"events"`
}

// TraceEvent is one step of a Trace.
type TraceEvent struct {
	AtMS float64     `json:"at_ms"` // milliseconds since the coordinator took the request
	Node ring.NodeID `json:"node"`
	What string      `json:"what"`
	Note string      `json:"note,omitempty"`
}

// Ring is the GET /ring answer: everything a client needs to rebuild the
// ring with ring.FromOwners and reach each node directly.
type Ring struct {
	Version    uint64        `json:"version"`
	Partitions int           `json:"partitions"`
	N          int           `json:"n"`
	Hash       string        `json:"hash"`   // RingHash
	Owners     []ring.NodeID `json:"owners"` // owners[p] owns partition p
	Nodes      []RingNode    `json:"nodes"`
}

// RingNode is one member in a Ring answer.
type RingNode struct {
	ID       ring.NodeID `json:"id"`
	HTTPAddr string      `json:"http_addr"`
	Status   string      `json:"status"` // alive, suspect or dead
}

// Placement is the GET /kv/{key}/placement answer: where a key lives.
type Placement struct {
	Key            string        `json:"key"`
	Partition      int           `json:"partition"`
	PreferenceList []ring.NodeID `json:"preference_list"` // coordinator candidates first
	Fallbacks      []ring.NodeID `json:"fallbacks"`       // where writes go when primaries are down
}

// Cluster is the GET /cluster answer: a node's view of the cluster.
type Cluster struct {
	Node        ring.NodeID   `json:"node"` // the node that answered
	N           int           `json:"n"`
	R           int           `json:"r"`
	W           int           `json:"w"`
	Partitions  int           `json:"partitions"`
	RingVersion uint64        `json:"ring_version"`
	Nodes       []ClusterNode `json:"nodes"`
	// Handoff is the running membership change, if any.
	Handoff *Handoff `json:"handoff,omitempty"`
}

// ClusterNode is one member of a Cluster.
type ClusterNode struct {
	ID         ring.NodeID `json:"id"`
	HTTPAddr   string      `json:"http_addr"`
	Status     string      `json:"status"`     // alive, suspect or dead
	Partitions int         `json:"partitions"` // partitions the node owns in the ring
	// NextPartitions is what it will own when the running change ends.
	NextPartitions *int `json:"next_partitions,omitempty"`
	// Version and Commit are the build the node runs, as it gossips it;
	// absent when unknown (not heard from, or a node older than them).
	// A rolling upgrade shows here which nodes run what.
	Version string `json:"version,omitempty"`
	Commit  string `json:"commit,omitempty"`
}

// Move is one partition changing owner in a Plan or Handoff.
type Move struct {
	Partition int         `json:"partition"`
	From      ring.NodeID `json:"from"`
	To        ring.NodeID `json:"to"`
}

// Transfer is a Move with what the answering node holds of it.
type Transfer struct {
	Move
	Keys int `json:"keys"` // objects the answering node holds in the partition; -1 unknown
}

// Plan is a staged membership change (GET /admin/plan) or the one just
// committed.
type Plan struct {
	RingVersion uint64              `json:"ring_version"`
	Joining     []ring.NodeID       `json:"joining"`
	Leaving     []ring.NodeID       `json:"leaving"`
	Moves       []Move              `json:"moves"`
	Transfers   []Transfer          `json:"transfers"`
	Before      map[ring.NodeID]int `json:"partitions_before"`
	After       map[ring.NodeID]int `json:"partitions_after"`
	Committed   bool                `json:"committed"`
}

// Handoff is the progress of a running membership change.
type Handoff struct {
	InProgress bool        `json:"in_progress"`
	Claimant   ring.NodeID `json:"claimant,omitempty"`
	Total      int         `json:"total"`
	Done       int         `json:"done"`
	Pending    []Move      `json:"pending"`
	// NoProgressMS is how long, as the answering node saw it, no transfer
	// has completed (since the last one, or since the change began).
	NoProgressMS int64 `json:"no_progress_ms,omitempty"`
}

// Abort is the POST /admin/abort answer.
type Abort struct {
	Aborted  bool        `json:"aborted"`
	Node     ring.NodeID `json:"node"`     // the node that aborted it
	Claimant ring.NodeID `json:"claimant"` // the node that had committed it
	Total    int         `json:"total"`    // transfers of the aborted change
	Done     int         `json:"done"`     // of them, complete at the abort
}
