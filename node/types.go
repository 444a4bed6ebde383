package node

import (
	"strconv"
	"time"

	"github.com/dynago/dynago/dvv"

	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
)

// Op is what a client asks a coordinator to do with one key.
type Op uint8

const (
	OpGet Op = iota + 1
	OpPut
	OpDelete
)

func (o Op) String() string {
	switch o {
	case OpGet:
		return "get"
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	}
	return "unknown"
}

// Request is a client operation handed to the core by a driver. The driver
// assigns ID, unique among the requests it has in flight on this node, and
// receives exactly one Reply carrying the same ID.
type Request struct {
	ID      uint64
	Op      Op
	Key     []byte
	Value   []byte        // put only
	Context []byte        // encoded client context (dvv.EncodeContext); nil = blind write
	R, W    int           // 0 means the cluster default; otherwise 1..N
	Timeout time.Duration // 0 means the configured default
	// Session is the session's floor for Key (dvv.EncodeContext of the
	// join of the versions the session saw of it; see package session);
	// nil outside a session or for a key the session never touched. A
	// get answers only with a version that dominates it (or
	// CodeSessionUnavailable); a put or delete merges it into Context, so
	// the new version follows everything the session saw of the key.
	Session []byte
	// SessionDeleted says the newest version the session saw of Key held
	// no live value: a get finding nothing at all satisfies the session
	// too (the tombstone may have been reaped since).
	SessionDeleted bool
	// Replace (puts only, with no Context) makes the new version supersede
	// every version the coordinating replica holds of Key, as if the
	// client had sent that copy's context: Redis's SET, in one round trip
	// instead of a read and a write. Versions acknowledged by other
	// replicas that have not reached the coordinator yet are not covered
	// and stay siblings of the new one (never lost), as a concurrent write
	// would. A coordinator that holds no copy (every primary unreachable)
	// writes blindly.
	Replace bool
	// Trace asks for Reply.Trace, how the cluster served the request
	// (?trace=1, and the requests a node's event log samples). Untraced
	// requests record nothing: tracing costs every step an allocation.
	Trace bool
}

// Code classifies a Reply. The HTTP layer maps codes to status codes.
type Code uint8

const (
	CodeOK           Code = iota // put acknowledged by W replicas / get found live values
	CodeNotFound                 // get: no live value (Context may carry a tombstone's history)
	CodeQuorumFailed             // fewer than R/W replicas answered in time; a put's outcome is unknown
	CodeBadRequest               // invalid key, context or parameter
	CodeUnavailable              // no node of the preference list is reachable
	CodeInternal                 // a local storage error
	// CodeNotCoordinator answers a MsgForward only, never a client: by the
	// receiver's ring it is not in the key's preference list (the rings of
	// the two nodes differ during a membership change), so it did not
	// apply the write; Hint names the node it would forward to.
	CodeNotCoordinator
	// CodeTooManySiblings: the write would leave the key with more than
	// Config.MaxSiblings siblings; nothing was written. The client must
	// read the key and write the resolved value with its context.
	CodeTooManySiblings
	// CodeSessionUnavailable: a session get reached R replicas, but none
	// of the replicas and fallbacks that answered before the deadline
	// held a version dominating the session's floor (Request.Session).
	// Only ever a Reply: gets are not forwarded, so no message carries it.
	CodeSessionUnavailable
	// CodeBadQuorum: the request named an R or W outside 1..N
	// (ErrBadQuorum); nothing was done. Only ever a Reply: the node that
	// receives the request checks it before forwarding.
	CodeBadQuorum
	// CodeOverloaded: the node already had as many client requests in
	// flight as its driver admits (the server's --max-inflight), and
	// refused this one before doing anything; retry later, or elsewhere.
	// Never produced by the core, so no message carries it.
	CodeOverloaded
)

func (c Code) String() string {
	switch c {
	case CodeOK:
		return "ok"
	case CodeNotFound:
		return "not_found"
	case CodeQuorumFailed:
		return "quorum_failed"
	case CodeBadRequest:
		return "bad_request"
	case CodeUnavailable:
		return "unavailable"
	case CodeInternal:
		return "internal"
	case CodeNotCoordinator:
		return "not_coordinator"
	case CodeTooManySiblings:
		return "too_many_siblings"
	case CodeSessionUnavailable:
		return "session_unavailable"
	case CodeBadQuorum:
		return "bad_quorum"
	case CodeOverloaded:
		return "overloaded"
	}
	return "unknown"
}

// Reply answers one Request.
type Reply struct {
	ID       uint64
	Code     Code
	Err      string           // human-readable detail when Code != CodeOK
	Siblings []object.Sibling // get: the live siblings (tombstones removed)
	Context  []byte           // encoded context of the version read or written
	Dot      dvv.Dot          // put/delete: the version stamp the coordinator gave the write
	Acks     int              // replicas that acknowledged (put) or answered (get)
	Required int              // W or R of the request
	Trace    *Trace           // how the request was served, when Request.Trace asked
	// ManySiblings is how many siblings a put or delete left its key
	// with, when above the coordinator's SiblingWarn; 0 otherwise (see
	// SiblingCount).
	ManySiblings int
}

// SiblingCount returns how many siblings a put or delete left its key
// with, when the coordinator found that above its SiblingWarn; 0
// otherwise. It is ManySiblings, or else read from the trace's
// SiblingsEvent (a reply built from a trace alone).
func (r Reply) SiblingCount() int {
	if r.ManySiblings > 0 {
		return r.ManySiblings
	}
	if r.Trace == nil {
		return 0
	}
	return siblingsNoted(r.Trace.Events)
}

// siblingsNoted returns the count of the last SiblingsEvent among events,
// 0 without one.
func siblingsNoted(events []TraceEvent) int {
	for i := len(events) - 1; i >= 0; i-- {
		if e := events[i]; e.What == SiblingsEvent {
			if c, err := strconv.Atoi(e.Note); err == nil && c > 0 {
				return c
			}
		}
	}
	return 0
}

// Trace records how the cluster served one request: who coordinated, whom it
// asked, who answered and when, and what read repair fixed. Offsets are
// relative to the moment the coordinator took the request.
type Trace struct {
	Coordinator    ring.NodeID
	ForwardedBy    ring.NodeID // set when the receiving node forwarded the request
	Partition      int
	PreferenceList []ring.NodeID
	Events         []TraceEvent
}

// TraceEvent is one step of a Trace.
type TraceEvent struct {
	At   time.Duration // since the coordinator took the request
	Node ring.NodeID
	What string // "sent", "ack", "answer", "not_found", "no_hint", "error", "timeout", "repair", "hint", "redirect"
	Note string
}

// MsgType names a node-to-node message.
type MsgType uint8

const (
	// MsgForward carries a client put or delete from a node outside the key's
	// preference list to the coordinator (the first reachable preference-list
	// node). Request fields: Key, Value, Context, W, Timeout, Delete.
	MsgForward MsgType = iota + 1
	// MsgForwardResp carries the coordinator's Reply back to the forwarding
	// node, or CodeNotCoordinator with the node to try instead in Hint.
	MsgForwardResp
	// MsgReplicaPut asks a replica to merge Object into its copy and persist it.
	// Also used for read repair (Repair=true), in which case no answer is awaited.
	MsgReplicaPut
	// MsgReplicaPutResp acknowledges a durable MsgReplicaPut (or reports Err).
	MsgReplicaPutResp
	// MsgReplicaGet asks a replica for its copy of Key.
	MsgReplicaGet
	// MsgReplicaGetResp answers with Object (nil when the replica holds nothing).
	MsgReplicaGetResp
	// MsgAETreeReq asks another replica of Partition for the child hashes
	// of the Merkle tree nodes named by Levels/Indexes (anti-entropy).
	MsgAETreeReq
	// MsgAETreeResp answers with Hashes[i] = children of node i.
	MsgAETreeResp
	// MsgAEKeys lists the sender's keys and version hashes (Keys/Versions)
	// in the differing leaf buckets Buckets of Partition. The receiver sends
	// back what the sender lacks and asks (MsgAEWant) for what it lacks.
	MsgAEKeys
	// MsgAEWant asks for the objects of Keys; they come as repair puts.
	MsgAEWant
	// MsgHandoffDone tells the claimant of a transition that the data of
	// Partition is now held by node Hint, which enters its preference list.
	MsgHandoffDone
	// MsgReapQuery asks a member which of Keys (with version hashes
	// Versions, tombstones of Partition) it agrees may be reaped.
	MsgReapQuery
	// MsgReapResp lists the Keys the sender agrees to reap.
	MsgReapResp
	// MsgReap tells a replica to delete Keys whose stored version is still
	// Versions: every member agreed.
	MsgReap
)

// vouches reports whether a message of this type asserts something about
// the sender's stored state, and so may leave only once that state is
// durable (see Ready).
func (t MsgType) vouches() bool {
	switch t {
	case MsgForward, MsgReplicaPut, MsgReplicaGet, MsgAETreeReq, MsgAEWant, MsgReapQuery, MsgReap, MsgHandoffDone:
		return false
	}
	return true
}

func (t MsgType) String() string {
	switch t {
	case MsgForward:
		return "forward"
	case MsgForwardResp:
		return "forward_resp"
	case MsgReplicaPut:
		return "replica_put"
	case MsgReplicaPutResp:
		return "replica_put_resp"
	case MsgReplicaGet:
		return "replica_get"
	case MsgReplicaGetResp:
		return "replica_get_resp"
	case MsgAETreeReq:
		return "ae_tree_req"
	case MsgAETreeResp:
		return "ae_tree_resp"
	case MsgAEKeys:
		return "ae_keys"
	case MsgAEWant:
		return "ae_want"
	case MsgHandoffDone:
		return "handoff_done"
	case MsgReapQuery:
		return "reap_query"
	case MsgReapResp:
		return "reap_resp"
	case MsgReap:
		return "reap"
	}
	return "unknown"
}

// Message is the one envelope exchanged between node cores. It is flat so
// that the transport can map it to protobuf field by field; each MsgType
// uses the subset of fields documented on it.
type Message struct {
	Type  MsgType
	From  ring.NodeID
	To    ring.NodeID
	ReqID uint64 // the sender's request ID, echoed in the answer

	Key    []byte
	Object []byte // object.Encode output

	// Forwarded client request (MsgForward).
	Value   []byte
	Context []byte
	Delete  bool
	Replace bool // Request.Replace
	W       int
	Timeout time.Duration

	// Answers.
	Found    bool    // MsgReplicaGetResp: the replica holds an object for Key
	Err      string  // non-empty: the operation failed on the sender
	Code     Code    // MsgForwardResp
	Dot      dvv.Dot // MsgForwardResp: the write's version stamp
	Acks     int     // MsgForwardResp
	Required int     // MsgForwardResp
	Repair   bool    // MsgReplicaPut sent by read repair: no answer wanted

	// LazySync marks a MsgReplicaPut whose acknowledgement no quorum
	// waits for (its coordinator had the write's W when it sent it), and
	// the replica's acknowledgement of it. A driver may leave the
	// acknowledgement's writes to its next fsync, within a bound, instead
	// of starting one for them: the acknowledgement still waits for the
	// fsync that covers them (Ready), only the fsync is not hurried.
	LazySync bool

	// Trace is the coordinator's trace of a forwarded request
	// (MsgForwardResp), merged into the forwarding node's own.
	Trace []TraceEvent

	// Hint names the primary a fallback stores this write for (sloppy
	// quorum); in a MsgForwardResp with CodeNotCoordinator, the node the
	// sender would forward the write to.
	Hint ring.NodeID

	// Anti-entropy.
	Partition int
	Levels    []uint32   // MsgAETreeReq/Resp: tree node addresses (level, index)
	Indexes   []uint32   //
	Hashes    [][]uint64 // MsgAETreeResp: child hashes per requested node
	Buckets   []uint32   // MsgAEKeys: the differing leaf buckets
	Keys      [][]byte   // MsgAEKeys, MsgAEWant
	Versions  []uint64   // MsgAEKeys: object.Hash of each key's encoding
}

// Write is one key the driver must persist before releasing the Messages and
// Replies of the same Ready. Value nil means delete.
type Write struct {
	Key   []byte
	Value []byte
}
