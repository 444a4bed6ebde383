// Package httpapitest provides an in-memory httpapi.Backend, so that users
// of the HTTP API (the Go client, the CLI, the dashboard) can be tested
// against the real handler without running a cluster.
//
// A Backend is one node that holds every key itself. Versions follow the
// real DVVSet rules of package dvv: a blind write becomes a sibling of what
// is stored, a write carrying the context read supersedes exactly what was
// read, and a delete writes a tombstone. There is no replication and no
// failure unless a test queues one with Fail. It is for tests only: it
// keeps everything in memory and never forgets anything.
package httpapitest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dynago/dynago/coord"
	"github.com/dynago/dynago/dvv"
	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
)

// The shape of every Backend's cluster: four nodes n1..n4 (this node is
// n1), so that every key has fallbacks; 8 partitions; N=3, R=W=2.
const (
	Partitions = 8
	N, R, W    = 3, 2, 2
)

// Self is the ID of the node a Backend plays.
const Self ring.NodeID = "n1"

// Backend is an in-memory httpapi.Backend. It is safe for concurrent use.
type Backend struct {
	ring *ring.Ring

	mu       sync.Mutex
	members  []httpapi.Member
	objects  map[string]object.Object
	hints    map[string][]ring.NodeID
	failures []node.Reply
	requests []node.Request
	nextID   uint64
}

// New returns an empty Backend. Members n1..n4 are alive, with HTTP
// addresses 127.0.0.1:9101..9104.
func New() *Backend {
	ids := []ring.NodeID{"n1", "n2", "n3", "n4"}
	rg, err := ring.New(ring.Config{Partitions: Partitions, N: N}, ids)
	if err != nil {
		panic(err) // constant, valid configuration
	}
	b := &Backend{
		ring:    rg,
		objects: make(map[string]object.Object),
		hints:   make(map[string][]ring.NodeID),
	}
	for i, id := range ids {
		m := httpapi.Member{ID: id, HTTPAddr: fmt.Sprintf("127.0.0.1:%d", 9101+i), Status: "alive"}
		if i < len(ids)-1 {
			// The last member gossips no build, as a node older than
			// Meta's build fields would.
			m.Version, m.Commit = "v1.2.0", "0123456789abcdef"
		}
		b.members = append(b.members, m)
	}
	return b
}

// SetStatus changes the liveness Members reports for id.
func (b *Backend) SetStatus(id ring.NodeID, status string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.members {
		if b.members[i].ID == id {
			b.members[i].Status = status
		}
	}
}

// Fail makes the next Do return rep (with the request's ID) instead of
// serving the request. Several calls queue several failures.
func (b *Backend) Fail(rep node.Reply) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures = append(b.failures, rep)
}

// AddHint records that this node holds a hint for primary about key, as
// Local reports it.
func (b *Backend) AddHint(key string, primary ring.NodeID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.hints[key] = append(b.hints[key], primary)
}

// Requests returns every request Do received, in order.
func (b *Backend) Requests() []node.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.requests)
}

// Do serves req like a coordinator whose every replica answers at once.
func (b *Backend) Do(ctx context.Context, req node.Request) node.Reply {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nextID++
	req.ID = b.nextID
	b.requests = append(b.requests, req)
	if len(b.failures) > 0 {
		rep := b.failures[0]
		b.failures = b.failures[1:]
		rep.ID = req.ID
		return rep
	}
	if err := ctx.Err(); err != nil {
		return node.Reply{ID: req.ID, Code: node.CodeUnavailable, Err: err.Error()}
	}
	// As the core's checkRequest: the front end checks only that a quorum
	// is a positive integer, the node that it is within 1..N.
	for _, q := range []struct {
		name string
		v    int
	}{{"r", req.R}, {"w", req.W}} {
		if q.v != 0 {
			if err := coord.CheckQuorum(q.name, q.v, N); err != nil {
				return node.Reply{ID: req.ID, Code: node.CodeBadQuorum, Err: err.Error()}
			}
		}
	}
	p := b.ring.PartitionOf(req.Key)
	rep := node.Reply{
		ID: req.ID,
		Trace: &node.Trace{
			Coordinator:    Self,
			Partition:      p,
			PreferenceList: b.ring.PreferenceList(p),
		},
	}
	for i, id := range rep.Trace.PreferenceList {
		rep.Trace.Events = append(rep.Trace.Events,
			node.TraceEvent{At: time.Duration(i) * time.Millisecond, Node: id, What: "sent"},
			node.TraceEvent{At: time.Duration(i+1) * time.Millisecond, Node: id, What: "ack"})
	}
	key := string(req.Key)
	switch req.Op {
	case node.OpPut, node.OpDelete:
		vv, err := dvv.DecodeContext(req.Context)
		if err != nil {
			rep.Code, rep.Err = node.CodeBadRequest, err.Error()
			return rep
		}
		sib := object.Sibling{Value: req.Value, Deleted: req.Op == node.OpDelete}
		actor := string(Self)
		if dvv.Exhausted(b.objects[key].Clock, vv, actor) {
			// As a real coordinator does: a context that claimed this
			// actor's last counter must not make the key unwritable.
			actor = fmt.Sprintf("%s+%d", Self, b.nextID)
		}
		obj := object.Update(b.objects[key], vv, sib, actor)
		b.objects[key] = obj
		rep.Code, rep.Context = node.CodeOK, obj.Context()
		rep.Acks, rep.Required = N, cmp.Or(req.W, W)
	case node.OpGet:
		rep.Acks, rep.Required = N, cmp.Or(req.R, R)
		obj := b.objects[key]
		rep.Context, rep.Siblings = obj.Context(), obj.Live()
		rep.Code = node.CodeOK
		if len(rep.Siblings) == 0 {
			rep.Code = node.CodeNotFound
		}
	default:
		rep.Code, rep.Err = node.CodeBadRequest, "unknown operation "+req.Op.String()
	}
	return rep
}

// NodeID returns Self.
func (b *Backend) NodeID() ring.NodeID { return Self }

// Ring returns the fixed ring of n1..n4.
func (b *Backend) Ring() *ring.Ring { return b.ring }

// Defaults returns N, R and W.
func (b *Backend) Defaults() (n, r, w int) { return N, R, W }

// Members returns n1..n4 with their current status.
func (b *Backend) Members() []httpapi.Member {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.members)
}

// Local returns the stored siblings of key, tombstones included, and the
// hints recorded with AddHint.
func (b *Backend) Local(key []byte) (httpapi.Local, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	obj, stored := b.objects[string(key)]
	hints := b.hints[string(key)]
	if !stored && len(hints) == 0 {
		return httpapi.Local{}, false, nil
	}
	return httpapi.Local{
		Siblings: obj.Siblings(),
		Context:  obj.Context(),
		Hints:    slices.Clone(hints),
	}, true, nil
}
