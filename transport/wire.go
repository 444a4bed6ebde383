package transport

import (
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

// The stream's batches are encoded and decoded here, by hand, straight
// between node.Message and the bytes of a dynagopb.Batch: the generated code
// would need an Envelope per message in between, and protobuf's reflective
// decoder costs an allocation per envelope and per bytes field. The wire
// format is exactly the generated code's (wire_test.go compares the bytes
// and the decoded messages against it), so nodes that still use the
// generated code interoperate, in both directions.

// errWire reports a batch that is not a valid protobuf encoding of a
// dynagopb.Batch: gRPC answers it with an error status and the stream ends.
var errWire = errors.New("transport: malformed batch encoding")

// errWireUTF8 is what the generated code reports for a TraceEvent string
// that is not valid UTF-8 (proto3 strings must be), on either side.
var errWireUTF8 = errors.New("transport: trace text is not valid UTF-8")

// outBatch is what a stream's sender hands gRPC: the messages of one batch,
// encoded by peerCodec without an intermediate Envelope.
type outBatch struct {
	msgs  []node.Message
	sizes []int // encoded size of each envelope, reused between batches
}

// inBatch is what a stream's receiver decodes into, once per batch.
type inBatch struct {
	// msgs are the batch's messages, a new array per batch: the Handler
	// owns what it is given.
	msgs []node.Message
	// bad[i] is why msgs[i] cannot be a node.Message (see fromEnvelope);
	// nil when no message of the batch is bad.
	bad []error
	// ids interns node IDs for the life of the stream: a stream carries
	// the messages of one peer, so From, To, Hint and the dot's actor
	// come from a handful of strings.
	ids interner
}

// peerCodec is the gRPC codec of the peer connections, installed on both
// ends (ForceCodecV2, ForceServerCodecV2). It encodes and decodes the
// stream's own batch types and leaves everything else (Step's Batch,
// StepAck) to gRPC's protobuf codec. It calls itself "proto" because that
// is what is on the wire: a peer without it decodes our batches, and we
// decode its.
var peerCodec encoding.CodecV2 = batchCodec{std: encoding.GetCodecV2(protoenc.Name)}

type batchCodec struct{ std encoding.CodecV2 }

func (batchCodec) Name() string { return protoenc.Name }

func (c batchCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, ok := v.(*outBatch)
	if !ok {
		return c.std.Marshal(v)
	}
	size, err := b.size()
	if err != nil {
		return nil, err
	}
	// As gRPC's protobuf codec does: a small batch in a buffer of its
	// own (the garbage collector recycles it as cheaply as a pool would),
	// a large one from the pool gRPC returns it to once written.
	if mem.IsBelowBufferPoolingThreshold(size) {
		return mem.BufferSlice{mem.SliceBuffer(b.appendTo(make([]byte, 0, size)))}, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	*buf = b.appendTo((*buf)[:0])
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

func (c batchCodec) Unmarshal(data mem.BufferSlice, v any) error {
	b, ok := v.(*inBatch)
	if !ok {
		return c.std.Unmarshal(data, v)
	}
	// The decoder copies what it keeps, so it can read gRPC's buffers,
	// which go back to their pool when this returns.
	if len(data) == 1 {
		return b.decode(data[0].ReadOnlyData())
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return b.decode(buf.ReadOnlyData())
}

// Field numbers of dynago.v1.Envelope (proto/dynago/v1/node.proto).
const (
	fType       = 1
	fFrom       = 2
	fTo         = 3
	fReqID      = 4
	fKey        = 5
	fObject     = 6
	fValue      = 7
	fContext    = 8
	fDelete     = 9
	fW          = 10
	fTimeout    = 11
	fFound      = 12
	fErr        = 13
	fCode       = 14
	fAcks       = 15
	fRequired   = 16
	fRepair     = 17
	fHint       = 18
	fDotActor   = 19
	fDotCounter = 20
	fPartition  = 21
	fLevels     = 22
	fIndexes    = 23
	fHashes     = 24
	fBuckets    = 25
	fKeys       = 26
	fVersions   = 27
	fTrace      = 28
	fReplace    = 29
	fLazySync   = 30
)

// batchMessages is dynago.v1.Batch's one field.
const batchMessages = 1

// ---- encoding ----
//
// Field by field as the generated code encodes them: in field-number
// order, proto3 scalars and plain bytes only when not zero, `optional`
// bytes whenever not nil, repeated scalars packed, every element of a
// repeated message or bytes field even when empty.

func sizeVarintField(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

func sizeBool(num protowire.Number, v bool) int {
	if !v {
		return 0
	}
	return protowire.SizeTag(num) + 1
}

func sizeBytes(num protowire.Number, n int) int {
	if n == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

func sizeOptional(num protowire.Number, b []byte) int {
	if b == nil {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(len(b))
}

func sizePackedVarint(num protowire.Number, vs []uint32) int {
	if len(vs) == 0 {
		return 0
	}
	n := 0
	for _, v := range vs {
		n += protowire.SizeVarint(uint64(v))
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

func sizePackedFixed64(num protowire.Number, vs []uint64) int {
	if len(vs) == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(8*len(vs))
}

func traceEventSize(e *node.TraceEvent) int {
	return sizeVarintField(1, uint64(e.At)) + sizeBytes(2, len(e.Node)) +
		sizeBytes(3, len(e.What)) + sizeBytes(4, len(e.Note))
}

// envelopeSize is the encoded size of m's envelope, without its tag and
// length prefix.
func envelopeSize(m *node.Message) (int, error) {
	n := sizeVarintField(fType, uint64(m.Type)) +
		sizeBytes(fFrom, len(m.From)) +
		sizeBytes(fTo, len(m.To)) +
		sizeVarintField(fReqID, m.ReqID) +
		sizeOptional(fKey, m.Key) +
		sizeOptional(fObject, m.Object) +
		sizeOptional(fValue, m.Value) +
		sizeOptional(fContext, m.Context) +
		sizeBool(fDelete, m.Delete) +
		sizeVarintField(fW, uint64(int64(m.W))) +
		sizeVarintField(fTimeout, uint64(m.Timeout)) +
		sizeBool(fFound, m.Found) +
		sizeBytes(fErr, len(m.Err)) +
		sizeVarintField(fCode, uint64(m.Code)) +
		sizeVarintField(fAcks, uint64(int64(m.Acks))) +
		sizeVarintField(fRequired, uint64(int64(m.Required))) +
		sizeBool(fRepair, m.Repair) +
		sizeBytes(fHint, len(m.Hint)) +
		sizeBytes(fDotActor, len(m.Dot.Actor)) +
		sizeVarintField(fDotCounter, m.Dot.Counter) +
		sizeVarintField(fPartition, uint64(int64(m.Partition))) +
		sizePackedVarint(fLevels, m.Levels) +
		sizePackedVarint(fIndexes, m.Indexes) +
		sizePackedVarint(fBuckets, m.Buckets) +
		sizePackedFixed64(fVersions, m.Versions) +
		sizeBool(fReplace, m.Replace) +
		sizeBool(fLazySync, m.LazySync)
	for _, h := range m.Hashes {
		n += protowire.SizeTag(fHashes) + protowire.SizeBytes(sizePackedFixed64(1, h))
	}
	for _, k := range m.Keys {
		n += protowire.SizeTag(fKeys) + protowire.SizeBytes(len(k))
	}
	for i := range m.Trace {
		e := &m.Trace[i]
		// The generated code refuses to encode such a string, failing
		// the whole batch; so does this one.
		if !utf8.ValidString(e.What) || !utf8.ValidString(e.Note) {
			return 0, errWireUTF8
		}
		n += protowire.SizeTag(fTrace) + protowire.SizeBytes(traceEventSize(e))
	}
	return n, nil
}

// size computes the batch's encoded size and remembers each envelope's.
func (b *outBatch) size() (int, error) {
	b.sizes = b.sizes[:0]
	total := 0
	for i := range b.msgs {
		n, err := envelopeSize(&b.msgs[i])
		if err != nil {
			return 0, err
		}
		b.sizes = append(b.sizes, n)
		total += protowire.SizeTag(batchMessages) + protowire.SizeBytes(n)
	}
	return total, nil
}

// appendTo encodes the batch; size must have been called first.
func (b *outBatch) appendTo(buf []byte) []byte {
	for i := range b.msgs {
		buf = protowire.AppendTag(buf, batchMessages, protowire.BytesType)
		buf = protowire.AppendVarint(buf, uint64(b.sizes[i]))
		buf = appendEnvelope(buf, &b.msgs[i])
	}
	return buf
}

func appendVarintField(buf []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return buf
	}
	buf = protowire.AppendTag(buf, num, protowire.VarintType)
	return protowire.AppendVarint(buf, v)
}

func appendBool(buf []byte, num protowire.Number, v bool) []byte {
	if !v {
		return buf
	}
	buf = protowire.AppendTag(buf, num, protowire.VarintType)
	return append(buf, 1)
}

func appendString(buf []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return buf
	}
	buf = protowire.AppendTag(buf, num, protowire.BytesType)
	return protowire.AppendString(buf, s)
}

func appendOptional(buf []byte, num protowire.Number, b []byte) []byte {
	if b == nil {
		return buf
	}
	buf = protowire.AppendTag(buf, num, protowire.BytesType)
	return protowire.AppendBytes(buf, b)
}

func appendPackedVarint(buf []byte, num protowire.Number, vs []uint32) []byte {
	if len(vs) == 0 {
		return buf
	}
	n := 0
	for _, v := range vs {
		n += protowire.SizeVarint(uint64(v))
	}
	buf = protowire.AppendTag(buf, num, protowire.BytesType)
	buf = protowire.AppendVarint(buf, uint64(n))
	for _, v := range vs {
		buf = protowire.AppendVarint(buf, uint64(v))
	}
	return buf
}

func appendPackedFixed64(buf []byte, num protowire.Number, vs []uint64) []byte {
	if len(vs) == 0 {
		return buf
	}
	buf = protowire.AppendTag(buf, num, protowire.BytesType)
	buf = protowire.AppendVarint(buf, uint64(8*len(vs)))
	for _, v := range vs {
		buf = protowire.AppendFixed64(buf, v)
	}
	return buf
}

func appendEnvelope(buf []byte, m *node.Message) []byte {
	buf = appendVarintField(buf, fType, uint64(m.Type))
	buf = appendString(buf, fFrom, string(m.From))
	buf = appendString(buf, fTo, string(m.To))
	buf = appendVarintField(buf, fReqID, m.ReqID)
	buf = appendOptional(buf, fKey, m.Key)
	buf = appendOptional(buf, fObject, m.Object)
	buf = appendOptional(buf, fValue, m.Value)
	buf = appendOptional(buf, fContext, m.Context)
	buf = appendBool(buf, fDelete, m.Delete)
	buf = appendVarintField(buf, fW, uint64(int64(m.W)))
	buf = appendVarintField(buf, fTimeout, uint64(m.Timeout))
	buf = appendBool(buf, fFound, m.Found)
	buf = appendString(buf, fErr, m.Err)
	buf = appendVarintField(buf, fCode, uint64(m.Code))
	buf = appendVarintField(buf, fAcks, uint64(int64(m.Acks)))
	buf = appendVarintField(buf, fRequired, uint64(int64(m.Required)))
	buf = appendBool(buf, fRepair, m.Repair)
	buf = appendString(buf, fHint, string(m.Hint))
	buf = appendString(buf, fDotActor, m.Dot.Actor)
	buf = appendVarintField(buf, fDotCounter, m.Dot.Counter)
	buf = appendVarintField(buf, fPartition, uint64(int64(m.Partition)))
	buf = appendPackedVarint(buf, fLevels, m.Levels)
	buf = appendPackedVarint(buf, fIndexes, m.Indexes)
	for _, h := range m.Hashes {
		buf = protowire.AppendTag(buf, fHashes, protowire.BytesType)
		buf = protowire.AppendVarint(buf, uint64(sizePackedFixed64(1, h)))
		buf = appendPackedFixed64(buf, 1, h)
	}
	buf = appendPackedVarint(buf, fBuckets, m.Buckets)
	for _, k := range m.Keys {
		buf = protowire.AppendTag(buf, fKeys, protowire.BytesType)
		buf = protowire.AppendBytes(buf, k)
	}
	buf = appendPackedFixed64(buf, fVersions, m.Versions)
	for i := range m.Trace {
		e := &m.Trace[i]
		buf = protowire.AppendTag(buf, fTrace, protowire.BytesType)
		buf = protowire.AppendVarint(buf, uint64(traceEventSize(e)))
		buf = appendVarintField(buf, 1, uint64(e.At))
		buf = appendString(buf, 2, string(e.Node))
		buf = appendString(buf, 3, e.What)
		buf = appendString(buf, 4, e.Note)
	}
	buf = appendBool(buf, fReplace, m.Replace)
	buf = appendBool(buf, fLazySync, m.LazySync)
	return buf
}

// ---- decoding ----
//
// The decoder accepts what the generated code accepts and nothing else:
// fields in any order and repeated (the last singular value wins), repeated
// scalars packed or not, unknown fields (skipped), a known field number with
// another wire type (an unknown field to protobuf, so skipped too). Every
// length is checked against what is left of its enclosing message before
// anything is sliced, and nothing is allocated from a length the frame does
// not back with bytes: a hostile frame gets an error, never a panic or a
// large allocation.

// wireErr wraps the protowire error behind a negative length.
func wireErr(n int) error {
	return fmt.Errorf("%w: %v", errWire, protowire.ParseError(n))
}

// maxBatchEnvelopes bounds the envelopes of one received batch (and
// Config.MaxBatch). An empty envelope takes 2 bytes on the wire and a
// node.Message about 450 in memory: without a bound, one frame of
// maxMsgSize would make the receiver allocate gigabytes.
const maxBatchEnvelopes = 1 << 16

// consumeTag is protowire.ConsumeTag, which accepts field numbers up to
// MaxInt32 (MessageSet's), restricted to what protobuf's decoder accepts.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	num, typ, n := protowire.ConsumeTag(b)
	if n >= 0 && num > protowire.MaxValidNumber {
		return 0, 0, -2 // protowire's code for a bad field number
	}
	return num, typ, n
}

// decode replaces b's messages with those of buf. The messages share no
// bytes with buf.
func (b *inBatch) decode(buf []byte) error {
	// First pass: check the framing and count the envelopes, so that the
	// messages get one array of the right size.
	count := 0
	for rest := buf; len(rest) > 0; {
		num, typ, n := consumeTag(rest)
		if n < 0 {
			return wireErr(n)
		}
		rest = rest[n:]
		if num == batchMessages && typ == protowire.BytesType {
			if count++; count > maxBatchEnvelopes {
				return fmt.Errorf("%w: more than %d envelopes", errWire, maxBatchEnvelopes)
			}
		}
		n = protowire.ConsumeFieldValue(num, typ, rest)
		if n < 0 {
			return wireErr(n)
		}
		rest = rest[n:]
	}
	b.msgs, b.bad = nil, nil
	if count == 0 {
		return nil
	}
	msgs := make([]node.Message, count)
	i := 0
	for rest := buf; len(rest) > 0; {
		num, typ, n := consumeTag(rest)
		rest = rest[n:]
		if num == batchMessages && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(rest)
			rest = rest[n:]
			bad, err := b.decodeEnvelope(&msgs[i], v)
			if err != nil {
				return err
			}
			if bad != nil {
				if b.bad == nil {
					b.bad = make([]error, count)
				}
				b.bad[i] = bad
			}
			i++
			continue
		}
		rest = rest[protowire.ConsumeFieldValue(num, typ, rest):]
	}
	b.msgs = msgs
	return nil
}

// decodeEnvelope decodes one envelope into m. err is a broken encoding,
// which fails the batch; bad is an envelope well encoded but with a value
// that does not fit node.Message (fromEnvelope's checks), which fails only
// this message. Byte fields are first sliced from buf and then copied out
// (see detach).
func (b *inBatch) decodeEnvelope(m *node.Message, buf []byte) (bad, err error) {
	var typ, code uint32
	var w, acks, required, partition int64
	var from, to, errText, hint, actor []byte
	for len(buf) > 0 {
		num, wtyp, n := consumeTag(buf)
		if n < 0 {
			return nil, wireErr(n)
		}
		buf = buf[n:]
		n = -1 // not consumed: an unknown field or an unexpected wire type
		switch wtyp {
		case protowire.VarintType:
			var v uint64
			v, n = protowire.ConsumeVarint(buf)
			if n < 0 {
				return nil, wireErr(n)
			}
			switch num {
			case fType:
				typ = uint32(v)
			case fReqID:
				m.ReqID = v
			case fDelete:
				m.Delete = v != 0
			case fReplace:
				m.Replace = v != 0
			case fW:
				w = int64(v)
			case fTimeout:
				m.Timeout = time.Duration(v)
			case fFound:
				m.Found = v != 0
			case fCode:
				code = uint32(v)
			case fAcks:
				acks = int64(v)
			case fRequired:
				required = int64(v)
			case fRepair:
				m.Repair = v != 0
			case fLazySync:
				m.LazySync = v != 0
			case fDotCounter:
				m.Dot.Counter = v
			case fPartition:
				partition = int64(v)
			case fLevels:
				m.Levels = append(m.Levels, uint32(v))
			case fIndexes:
				m.Indexes = append(m.Indexes, uint32(v))
			case fBuckets:
				m.Buckets = append(m.Buckets, uint32(v))
			default:
				n = -1
			}
		case protowire.Fixed64Type:
			if num == fVersions {
				var v uint64
				v, n = protowire.ConsumeFixed64(buf)
				if n < 0 {
					return nil, wireErr(n)
				}
				m.Versions = append(m.Versions, v)
			}
		case protowire.BytesType:
			var v []byte
			v, n = protowire.ConsumeBytes(buf)
			if n < 0 {
				return nil, wireErr(n)
			}
			switch num {
			case fFrom:
				from = v
			case fTo:
				to = v
			case fKey:
				m.Key = v
			case fObject:
				m.Object = v
			case fValue:
				m.Value = v
			case fContext:
				m.Context = v
			case fErr:
				errText = v
			case fHint:
				hint = v
			case fDotActor:
				actor = v
			case fLevels:
				err = appendPackedVarints(&m.Levels, v)
			case fIndexes:
				err = appendPackedVarints(&m.Indexes, v)
			case fBuckets:
				err = appendPackedVarints(&m.Buckets, v)
			case fVersions:
				err = appendPackedFixed64s(&m.Versions, v)
			case fKeys:
				m.Keys = append(m.Keys, v)
			case fHashes:
				var h []uint64
				h, err = decodeHashList(v)
				m.Hashes = append(m.Hashes, h)
			case fTrace:
				var e node.TraceEvent
				e, err = b.decodeTraceEvent(v)
				m.Trace = append(m.Trace, e)
			default:
				n = -1
			}
			if err != nil {
				return nil, err
			}
		}
		if n < 0 {
			n = protowire.ConsumeFieldValue(num, wtyp, buf)
			if n < 0 {
				return nil, wireErr(n)
			}
		}
		buf = buf[n:]
	}
	// proto3 bytes without `optional`: empty is absent.
	m.From = ring.NodeID(b.ids.intern(from))
	m.To = ring.NodeID(b.ids.intern(to))
	m.Hint = ring.NodeID(b.ids.intern(hint))
	m.Dot.Actor = b.ids.intern(actor)
	if len(errText) > 0 {
		m.Err = string(errText)
	}
	detach(m)
	// fromEnvelope's checks, in its order.
	switch {
	case typ > math.MaxUint8:
		return fmt.Errorf("%w: type %d", ErrMalformed, typ), nil
	case code > math.MaxUint8:
		return fmt.Errorf("%w: code %d", ErrMalformed, code), nil
	}
	for _, v := range [...]int64{w, acks, required, partition} {
		if v != int64(int(v)) {
			return fmt.Errorf("%w: integer %d overflows int", ErrMalformed, v), nil
		}
	}
	m.Type, m.Code = node.MsgType(typ), node.Code(code)
	m.W, m.Acks, m.Required, m.Partition = int(w), int(acks), int(required), int(partition)
	return nil, nil
}

// appendPackedVarints decodes a packed repeated uint32 field (protobuf
// truncates each varint to 32 bits).
func appendPackedVarints(dst *[]uint32, b []byte) error {
	s := *dst
	for len(b) > 0 {
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return wireErr(n)
		}
		s = append(s, uint32(v))
		b = b[n:]
	}
	*dst = s
	return nil
}

// appendPackedFixed64s decodes a packed repeated fixed64 field.
func appendPackedFixed64s(dst *[]uint64, b []byte) error {
	if len(b)%8 != 0 {
		_, n := protowire.ConsumeFixed64(b[len(b)-len(b)%8:])
		return wireErr(n)
	}
	s := *dst
	if s == nil && len(b) > 0 {
		s = make([]uint64, 0, len(b)/8)
	}
	for ; len(b) > 0; b = b[8:] {
		v, _ := protowire.ConsumeFixed64(b)
		s = append(s, v)
	}
	*dst = s
	return nil
}

// decodeHashList decodes a dynago.v1.HashList; an empty one is nil.
func decodeHashList(buf []byte) ([]uint64, error) {
	var h []uint64
	for len(buf) > 0 {
		num, wtyp, n := consumeTag(buf)
		if n < 0 {
			return nil, wireErr(n)
		}
		buf = buf[n:]
		switch {
		case num == 1 && wtyp == protowire.BytesType:
			v, n := protowire.ConsumeBytes(buf)
			if n < 0 {
				return nil, wireErr(n)
			}
			if err := appendPackedFixed64s(&h, v); err != nil {
				return nil, err
			}
			buf = buf[n:]
		case num == 1 && wtyp == protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(buf)
			if n < 0 {
				return nil, wireErr(n)
			}
			h = append(h, v)
			buf = buf[n:]
		default:
			n := protowire.ConsumeFieldValue(num, wtyp, buf)
			if n < 0 {
				return nil, wireErr(n)
			}
			buf = buf[n:]
		}
	}
	return h, nil
}

// decodeTraceEvent decodes a dynago.v1.TraceEvent. Its strings must be
// valid UTF-8, as protobuf requires of proto3 strings.
func (b *inBatch) decodeTraceEvent(buf []byte) (node.TraceEvent, error) {
	var e node.TraceEvent
	for len(buf) > 0 {
		num, wtyp, n := consumeTag(buf)
		if n < 0 {
			return e, wireErr(n)
		}
		buf = buf[n:]
		switch {
		case num == 1 && wtyp == protowire.VarintType:
			v, n := protowire.ConsumeVarint(buf)
			if n < 0 {
				return e, wireErr(n)
			}
			e.At = time.Duration(v)
			buf = buf[n:]
		case num >= 2 && num <= 4 && wtyp == protowire.BytesType:
			v, n := protowire.ConsumeBytes(buf)
			if n < 0 {
				return e, wireErr(n)
			}
			buf = buf[n:]
			switch num {
			case 2:
				e.Node = ring.NodeID(b.ids.intern(v))
			case 3:
				if !utf8.Valid(v) {
					return e, errWireUTF8
				}
				e.What = string(v)
			case 4:
				if !utf8.Valid(v) {
					return e, errWireUTF8
				}
				e.Note = string(v)
			}
		default:
			n := protowire.ConsumeFieldValue(num, wtyp, buf)
			if n < 0 {
				return e, wireErr(n)
			}
			buf = buf[n:]
		}
	}
	return e, nil
}

// sharedMax is the largest byte field detach copies into a message's shared
// buffer; a larger one gets a buffer of its own. Sharing saves an
// allocation per field, but a field the core keeps (a key in a pending
// request, say) keeps the whole buffer alive: the limit bounds what a kept
// field can pin to a few KiB, whatever the object's size.
const sharedMax = 1 << 10

// detach replaces m's byte fields, which alias the frame being decoded,
// with copies: fields up to sharedMax in one buffer per message, each
// field's capacity cut to its length so that appending to one never
// overwrites the next. A present empty field stays non-nil, as
// `optional` requires and as protobuf decodes an empty element of Keys.
func detach(m *node.Message) {
	total := 0
	add := func(b []byte) {
		if len(b) <= sharedMax {
			total += len(b)
		}
	}
	add(m.Key)
	add(m.Object)
	add(m.Value)
	add(m.Context)
	for _, k := range m.Keys {
		add(k)
	}
	shared := make([]byte, 0, total) // non-nil even when total is 0
	cp := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		if len(b) > sharedMax {
			return append(make([]byte, 0, len(b)), b...)
		}
		off := len(shared)
		shared = append(shared, b...)
		return shared[off:len(shared):len(shared)]
	}
	m.Key = cp(m.Key)
	m.Object = cp(m.Object)
	m.Value = cp(m.Value)
	m.Context = cp(m.Context)
	for i, k := range m.Keys {
		m.Keys[i] = cp(k)
	}
}

// interner hands out one string per distinct node ID seen on a stream,
// instead of one per field per message.
type interner struct {
	m map[string]string
}

// Bounds on what a stream's sender can make its receiver keep: a peer
// sends a few IDs (its own, ours, those of hinted primaries); a hostile
// one sending new IDs in every message fills the table and its further
// IDs are simply allocated each time.
const (
	maxInterned    = 64
	maxInternedLen = 256
)

func (t *interner) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := t.m[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(t.m) < maxInterned && len(s) <= maxInternedLen {
		if t.m == nil {
			t.m = make(map[string]string)
		}
		t.m[s] = s
	}
	return s
}
