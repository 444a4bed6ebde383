package transport

import (
	"errors"
	"fmt"
	"math"
	"time"
	"unsafe"

	"github.com/dynago/dynago/dvv"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/proto/dynagopb"
	"github.com/dynago/dynago/ring"
)

// ErrMalformed reports an envelope that cannot be a node.Message.
var ErrMalformed = errors.New("transport: malformed envelope")

// toEnvelope maps m field for field into e, which it overwrites. Nothing is
// copied: the byte slices are shared (Send takes ownership of them, see
// Send), and so are the bytes of the strings (see bytesOf).
func toEnvelope(e *dynagopb.Envelope, m *node.Message) {
	*e = dynagopb.Envelope{
		Type:       uint32(m.Type),
		From:       bytesOf(string(m.From)),
		To:         bytesOf(string(m.To)),
		ReqId:      m.ReqID,
		Key:        m.Key,
		Object:     m.Object,
		Value:      m.Value,
		Context:    m.Context,
		Delete:     m.Delete,
		Replace:    m.Replace,
		W:          int64(m.W),
		TimeoutNs:  int64(m.Timeout),
		Found:      m.Found,
		Err:        bytesOf(m.Err),
		Code:       uint32(m.Code),
		Acks:       int64(m.Acks),
		Required:   int64(m.Required),
		Repair:     m.Repair,
		LazySync:   m.LazySync,
		Hint:       bytesOf(string(m.Hint)),
		DotActor:   bytesOf(m.Dot.Actor),
		DotCounter: m.Dot.Counter,
		Partition:  int64(m.Partition),
		Levels:     m.Levels,
		Indexes:    m.Indexes,
		Hashes:     toHashLists(m.Hashes),
		Buckets:    m.Buckets,
		Keys:       m.Keys,
		Versions:   m.Versions,
		Trace:      toTrace(m.Trace),
	}
}

// bytesOf returns the bytes of s without copying them, nil for "". The
// envelope fields it fills are only ever read (by the protobuf encoder,
// within the Send that owns the message), never written, so sharing the
// string's immutable bytes is safe and saves an allocation per field per
// message. An empty bytes field is not encoded at all in proto3, so nil
// for "" changes nothing on the wire.
func bytesOf(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

func toTrace(events []node.TraceEvent) []*dynagopb.TraceEvent {
	if events == nil {
		return nil
	}
	out := make([]*dynagopb.TraceEvent, len(events))
	for i, e := range events {
		out[i] = &dynagopb.TraceEvent{AtNs: int64(e.At), Node: bytesOf(string(e.Node)), What: e.What, Note: e.Note}
	}
	return out
}

func fromTrace(events []*dynagopb.TraceEvent) []node.TraceEvent {
	if events == nil {
		return nil
	}
	out := make([]node.TraceEvent, len(events))
	for i, e := range events {
		out[i] = node.TraceEvent{At: time.Duration(e.GetAtNs()), Node: ring.NodeID(e.GetNode()), What: e.GetWhat(), Note: e.GetNote()}
	}
	return out
}

func toHashLists(hashes [][]uint64) []*dynagopb.HashList {
	if hashes == nil {
		return nil
	}
	out := make([]*dynagopb.HashList, len(hashes))
	for i, h := range hashes {
		out[i] = &dynagopb.HashList{Hashes: h}
	}
	return out
}

func fromHashLists(lists []*dynagopb.HashList) [][]uint64 {
	if lists == nil {
		return nil
	}
	out := make([][]uint64, len(lists))
	for i, l := range lists {
		out[i] = l.GetHashes()
	}
	return out
}

// fromEnvelope is the inverse of toEnvelope. It rejects enum values that do
// not fit their Go type instead of truncating them, which could turn garbage
// into a valid message type.
func fromEnvelope(e *dynagopb.Envelope) (node.Message, error) {
	if e.Type > math.MaxUint8 {
		return node.Message{}, fmt.Errorf("%w: type %d", ErrMalformed, e.Type)
	}
	if e.Code > math.MaxUint8 {
		return node.Message{}, fmt.Errorf("%w: code %d", ErrMalformed, e.Code)
	}
	for _, v := range []int64{e.W, e.Acks, e.Required, e.Partition} {
		if v != int64(int(v)) {
			return node.Message{}, fmt.Errorf("%w: integer %d overflows int", ErrMalformed, v)
		}
	}
	return node.Message{
		Type:      node.MsgType(e.Type),
		From:      ring.NodeID(e.From),
		To:        ring.NodeID(e.To),
		ReqID:     e.ReqId,
		Key:       e.Key,
		Object:    e.Object,
		Value:     e.Value,
		Context:   e.Context,
		Delete:    e.Delete,
		Replace:   e.Replace,
		W:         int(e.W),
		Timeout:   time.Duration(e.TimeoutNs),
		Found:     e.Found,
		Err:       string(e.Err),
		Code:      node.Code(e.Code),
		Acks:      int(e.Acks),
		Required:  int(e.Required),
		Repair:    e.Repair,
		LazySync:  e.LazySync,
		Hint:      ring.NodeID(e.Hint),
		Dot:       dvv.Dot{Actor: string(e.DotActor), Counter: e.DotCounter},
		Partition: int(e.Partition),
		Levels:    e.Levels,
		Indexes:   e.Indexes,
		Hashes:    fromHashLists(e.Hashes),
		Buckets:   e.Buckets,
		Keys:      e.Keys,
		Versions:  e.Versions,
		Trace:     fromTrace(e.Trace),
	}, nil
}

// envelopeOverhead approximates the fixed part of an encoded envelope: tags,
// lengths and the varint fields.
const envelopeOverhead = 64

// approxSize estimates m's encoded size, for splitting batches by bytes.
func approxSize(m *node.Message) int {
	n := envelopeOverhead + len(m.Key) + len(m.Object) + len(m.Value) + len(m.Context) +
		len(m.Err) + len(m.From) + len(m.To) + len(m.Hint) + len(m.Dot.Actor) +
		5*(len(m.Levels)+len(m.Indexes)+len(m.Buckets)) + 8*len(m.Versions)
	for _, k := range m.Keys {
		n += 3 + len(k) // tag and length prefix
	}
	for _, h := range m.Hashes {
		n += 3 + 8*len(h)
	}
	for _, e := range m.Trace {
		n += 16 + len(e.Node) + len(e.What) + len(e.Note)
	}
	return n
}
