package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/dynago/dynago/dvv"
	"github.com/dynago/dynago/ring"
)

// Messages come from peers, and a peer can be buggy, of another version, or
// not a peer at all: anything that reaches the RPC port. Two checks stand
// between the wire and the handlers, so that no field of a message can
// crash the core (an index out of range, an overflow) or store something
// that cannot be read back:
//
//   - Validate checks what a message is on its own: a known type, known
//     enum values, bounded IDs and lengths, paired lists of equal length,
//     contexts that decode. The transport calls it at the boundary.
//   - Step checks what depends on this node: the partition count and the
//     key and value size limits of its configuration.

// ErrBadMessage is wrapped by every error Validate returns.
var ErrBadMessage = errors.New("node: bad message")

// Bounds of Validate. Generous: real messages stay far below them; they
// exist so that a forged one cannot make the core allocate or loop without
// limit.
const (
	// MaxNodeIDLen bounds node IDs in From, To and Hint. IDs are short
	// names chosen by operators.
	MaxNodeIDLen = 255
	// MaxActorLen bounds a dot's actor: a node ID, its epoch and, for
	// hinted writes, a time and sequence number.
	MaxActorLen = 2 * MaxNodeIDLen
	// MaxMessageTimeout bounds a forwarded request's timeout; the HTTP
	// layer caps clients at a minute.
	MaxMessageTimeout = time.Hour
	// maxReplicas bounds W, Acks and Required: N is at most the member
	// count.
	maxReplicas = 1 << 16
	// maxTraceEvents bounds a forwarded trace.
	maxTraceEvents = 4096
	// maxTraceText bounds one trace event's What and Note.
	maxTraceText = 4096
)

// Valid reports whether t is a message type this version knows.
func (t MsgType) Valid() bool { return t >= MsgForward && t <= MsgReap }

// Valid reports whether c is a reply code this version knows.
func (c Code) Valid() bool { return c <= CodeTooManySiblings }

// Validate checks m on its own, without this node's configuration: a known
// type and code, a sender, bounded IDs, counts and
// lengths, paired lists of equal length, contexts that decode. A message
// that fails it must be dropped before Step. Step calls it too.
func (m *Message) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrBadMessage, m.Type, fmt.Sprintf(format, args...))
	}
	if !m.Type.Valid() {
		return fmt.Errorf("%w: unknown type %d", ErrBadMessage, m.Type)
	}
	if !m.Code.Valid() {
		return bad("unknown code %d", m.Code)
	}
	for _, f := range []struct {
		name string
		id   string
		must bool
	}{{"from", string(m.From), true}, {"to", string(m.To), false}, {"hint", string(m.Hint), false}} {
		if f.must && f.id == "" {
			return bad("empty %s", f.name)
		}
		if len(f.id) > MaxNodeIDLen {
			return bad("%s of %d bytes, more than %d", f.name, len(f.id), MaxNodeIDLen)
		}
	}
	if len(m.Dot.Actor) > MaxActorLen {
		return bad("dot actor of %d bytes, more than %d", len(m.Dot.Actor), MaxActorLen)
	}
	if m.Dot.Counter > dvv.MaxCounter {
		return bad("dot counter %d above %d", m.Dot.Counter, dvv.MaxCounter)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"w", m.W}, {"acks", m.Acks}, {"required", m.Required}} {
		if f.v < 0 || f.v > maxReplicas {
			return bad("%s=%d outside 0..%d", f.name, f.v, maxReplicas)
		}
	}
	if m.Timeout < 0 || m.Timeout > MaxMessageTimeout {
		return bad("timeout %v outside 0..%v", m.Timeout, MaxMessageTimeout)
	}
	if m.Partition < 0 || m.Partition >= ring.MaxPartitions {
		return bad("partition %d outside 0..%d", m.Partition, ring.MaxPartitions-1)
	}
	if _, err := dvv.DecodeContext(m.Context); err != nil {
		return bad("context: %v", err)
	}
	if len(m.Trace) > maxTraceEvents {
		return bad("%d trace events, more than %d", len(m.Trace), maxTraceEvents)
	}
	for _, e := range m.Trace {
		if len(e.Node) > MaxNodeIDLen || len(e.What) > maxTraceText || len(e.Note) > maxTraceText {
			return bad("trace event too long")
		}
	}
	if len(m.Levels) != len(m.Indexes) {
		return bad("%d levels for %d indexes", len(m.Levels), len(m.Indexes))
	}
	if len(m.Hashes) > len(m.Levels) {
		return bad("%d hash lists for %d tree nodes", len(m.Hashes), len(m.Levels))
	}
	switch m.Type {
	case MsgForward, MsgReplicaPut, MsgReplicaGet:
		if len(m.Key) == 0 {
			return bad("empty key")
		}
	case MsgAEKeys, MsgReapQuery, MsgReap:
		if len(m.Keys) != len(m.Versions) {
			return bad("%d keys for %d versions", len(m.Keys), len(m.Versions))
		}
	}
	if m.Type == MsgReplicaPut && len(m.Object) == 0 {
		return bad("no object")
	}
	for _, k := range m.Keys {
		if len(k) == 0 {
			return bad("empty key in key list")
		}
	}
	return nil
}

// check is Step's gate: Validate, then what depends on this node's ring
// and limits. The transport validated already; the simulator and tests
// call Step directly, and the partition count is only known here.
func (n *Node) check(m *Message) error {
	if err := m.Validate(); err != nil {
		return err
	}
	if q := n.ring.Partitions(); m.Partition >= q {
		return fmt.Errorf("%w: %s: partition %d outside 0..%d", ErrBadMessage, m.Type, m.Partition, q-1)
	}
	if len(m.Key) > n.cfg.MaxKeySize {
		return fmt.Errorf("%w: %s: key of %d bytes exceeds the limit of %d", ErrBadMessage, m.Type, len(m.Key), n.cfg.MaxKeySize)
	}
	if m.Type == MsgForward && len(m.Value) > n.cfg.MaxValueSize {
		return fmt.Errorf("%w: %s: value of %d bytes exceeds the limit of %d", ErrBadMessage, m.Type, len(m.Value), n.cfg.MaxValueSize)
	}
	return nil
}

// reject drops a message that failed check. A forwarded write is answered,
// so that the client hears "bad request" at once instead of waiting for
// its timeout; nothing else is answered (an answer to a bad answer would
// only feed a loop between two confused nodes).
func (n *Node) reject(m Message, err error) {
	n.rejected++
	if m.Type == MsgForward && m.From != "" && len(m.From) <= MaxNodeIDLen {
		n.send(Message{Type: MsgForwardResp, To: m.From, ReqID: m.ReqID, Code: CodeBadRequest, Err: err.Error()})
	}
}

// Rejected returns how many peer messages Step dropped as malformed.
func (n *Node) Rejected() uint64 { return n.rejected }
