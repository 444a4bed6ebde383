package transport

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/dynago/dynago/dvv"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/proto/dynagopb"
	"github.com/dynago/dynago/ring"
)

// randomBytes returns nil, empty or random bytes (some not UTF-8), up to
// max long.
func randomBytes(r *rand.Rand, max int) []byte {
	switch r.IntN(4) {
	case 0:
		return nil
	case 1:
		return []byte{}
	}
	b := make([]byte, r.IntN(max+1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func randomInt(r *rand.Rand) int {
	switch r.IntN(4) {
	case 0:
		return 0
	case 1:
		return -1 - r.IntN(1000)
	case 2:
		return int(r.Int64())
	}
	return r.IntN(300)
}

func randomUint32s(r *rand.Rand) []uint32 {
	if r.IntN(3) == 0 {
		return nil
	}
	s := make([]uint32, r.IntN(5))
	for i := range s {
		s[i] = r.Uint32() >> r.IntN(32)
	}
	return s
}

func randomUint64s(r *rand.Rand) []uint64 {
	if r.IntN(3) == 0 {
		return nil
	}
	s := make([]uint64, r.IntN(5))
	for i := range s {
		s[i] = r.Uint64()
	}
	return s
}

// randomMessage sets each field of a message at random, zero about a third
// of the time; large says whether byte fields may exceed sharedMax.
func randomMessage(r *rand.Rand, large bool) node.Message {
	max := 40
	if large {
		max = 3 * sharedMax
	}
	str := func() string { return string(randomBytes(r, 12)) }
	m := node.Message{
		Type:      node.MsgType(r.IntN(256)),
		From:      ring.NodeID(str()),
		To:        ring.NodeID(str()),
		ReqID:     r.Uint64() >> r.IntN(64),
		Key:       randomBytes(r, max),
		Object:    randomBytes(r, max),
		Value:     randomBytes(r, max),
		Context:   randomBytes(r, max),
		Delete:    r.IntN(2) == 0,
		Replace:   r.IntN(2) == 0,
		W:         randomInt(r),
		Timeout:   time.Duration(randomInt(r)),
		Found:     r.IntN(2) == 0,
		Err:       str(),
		Code:      node.Code(r.IntN(256)),
		Acks:      randomInt(r),
		Required:  randomInt(r),
		Repair:    r.IntN(2) == 0,
		Hint:      ring.NodeID(str()),
		Dot:       dvv.Dot{Actor: str(), Counter: r.Uint64() >> r.IntN(64)},
		Partition: randomInt(r),
		Levels:    randomUint32s(r),
		Indexes:   randomUint32s(r),
		Buckets:   randomUint32s(r),
		Versions:  randomUint64s(r),
	}
	if r.IntN(3) == 0 {
		m.Hashes = make([][]uint64, r.IntN(4))
		for i := range m.Hashes {
			m.Hashes[i] = randomUint64s(r)
		}
	}
	if r.IntN(3) == 0 {
		m.Keys = make([][]byte, r.IntN(4))
		for i := range m.Keys {
			m.Keys[i] = randomBytes(r, max)
		}
	}
	if r.IntN(3) == 0 {
		m.Trace = make([]node.TraceEvent, r.IntN(3))
		for i := range m.Trace {
			m.Trace[i] = node.TraceEvent{At: time.Duration(randomInt(r)), Node: ring.NodeID(str()), What: "ack", Note: fmt.Sprint(r.IntN(3))}
		}
		if len(m.Trace) > 0 && r.IntN(2) == 0 {
			m.Trace[0].Note = ""
		}
	}
	return m
}

// protoBatch encodes msgs the reference way: toEnvelope and the generated
// code.
func protoBatch(t testing.TB, msgs []node.Message) ([]byte, error) {
	t.Helper()
	b := &dynagopb.Batch{}
	for i := range msgs {
		b.Messages = append(b.Messages, envelopeOf(&msgs[i]))
	}
	return proto.Marshal(b)
}

// codecBatch encodes msgs through peerCodec, as a stream's sender does.
func codecBatch(msgs []node.Message) ([]byte, error) {
	data, err := peerCodec.Marshal(&outBatch{msgs: msgs})
	if err != nil {
		return nil, err
	}
	defer data.Free()
	return data.Materialize(), nil
}

// referenceDecode decodes buf the reference way: the generated code and
// fromEnvelope, as Step does.
func referenceDecode(buf []byte) ([]node.Message, []error, error) {
	var b dynagopb.Batch
	if err := proto.Unmarshal(buf, &b); err != nil {
		return nil, nil, err
	}
	msgs, bad := decodeBatch(&b)
	if len(msgs) == 0 {
		msgs = nil
	}
	return msgs, bad, nil
}

// codecDecode decodes buf through peerCodec, split into two buffers when
// split is within buf (gRPC hands the codec a frame in pieces).
func codecDecode(buf []byte, split int) ([]node.Message, []error, error) {
	var data mem.BufferSlice
	if split > 0 && split < len(buf) {
		data = mem.BufferSlice{mem.SliceBuffer(buf[:split]), mem.SliceBuffer(buf[split:])}
	} else {
		data = mem.BufferSlice{mem.SliceBuffer(buf)}
	}
	var b inBatch
	err := peerCodec.Unmarshal(data, &b)
	return b.msgs, b.bad, err
}

// sameDecoding fails t unless both decoders agree on buf: both reject it,
// or both yield equal messages with the same ones bad.
func sameDecoding(t *testing.T, buf []byte, split int) {
	t.Helper()
	want, wantBad, wantErr := referenceDecode(buf)
	got, gotBad, gotErr := codecDecode(buf, split)
	if wantErr == nil && len(want) > maxBatchEnvelopes {
		if !errors.Is(gotErr, errWire) {
			t.Fatalf("a batch of %d envelopes: codec error %v, want the bound's", len(want), gotErr)
		}
		return
	}
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("decoding %x: reference error %v, codec error %v", buf, wantErr, gotErr)
	}
	if wantErr != nil {
		return
	}
	if len(got) != len(want) {
		t.Fatalf("decoding %x: %d messages, reference %d", buf, len(got), len(want))
	}
	for i := range want {
		wb := wantBad != nil && wantBad[i] != nil
		gb := gotBad != nil && gotBad[i] != nil
		if wb != gb {
			t.Fatalf("decoding %x: message %d bad: reference %v, codec %v", buf, i, wantBad, gotBad)
		}
		if wb {
			if wantBad[i].Error() != gotBad[i].Error() || !errors.Is(gotBad[i], ErrMalformed) {
				t.Fatalf("message %d: codec says %v, reference %v", i, gotBad[i], wantBad[i])
			}
			continue
		}
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("decoding %x: message %d\n got %#v\nwant %#v", buf, i, got[i], want[i])
		}
	}
}

// encodesLikeProto encodes msgs with the codec and with the generated code,
// fails the test unless the bytes are equal, and returns them.
func encodesLikeProto(t *testing.T, what string, msgs []node.Message) []byte {
	t.Helper()
	want, err := protoBatch(t, msgs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := codecBatch(msgs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: codec encoded\n%x\nreference\n%x\n%#v", what, got, want, msgs)
	}
	return got
}

// TestCodecEncodesLikeProto: for many random batches, the codec's bytes are
// the generated code's, and both decoders decode them to the messages sent.
func TestCodecEncodesLikeProto(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		msgs := make([]node.Message, r.IntN(4))
		for j := range msgs {
			msgs[j] = randomMessage(r, i%10 == 0)
		}
		got := encodesLikeProto(t, fmt.Sprintf("batch %d", i), msgs)
		sameDecoding(t, got, r.IntN(len(got)+1))
	}
}

func TestCodecEncodesTheFullMessageLikeProto(t *testing.T) {
	msgs := []node.Message{fullMessage(1, "n1", "n2"), {}, fullMessage(2, "n2", "n1")}
	got := encodesLikeProto(t, "the full messages", msgs)
	dec, bad, err := codecDecode(got, 0)
	if err != nil || bad != nil {
		t.Fatalf("decode: %v %v", err, bad)
	}
	if !reflect.DeepEqual(dec, msgs) {
		t.Fatalf("round trip changed the messages\n got %#v\nwant %#v", dec, msgs)
	}
}

// TestCodecRefusesInvalidUTF8Trace: like the generated code, the encoder
// fails a batch whose trace text is not UTF-8 (proto3 strings must be), and
// the decoder refuses one.
func TestCodecRefusesInvalidUTF8Trace(t *testing.T) {
	msgs := []node.Message{{Type: node.MsgForwardResp, Trace: []node.TraceEvent{{What: "ack", Note: "\xff"}}}}
	if _, err := protoBatch(t, msgs); err == nil {
		t.Fatal("the reference encoded invalid UTF-8; the codec's check is out of date")
	}
	if _, err := codecBatch(msgs); !errors.Is(err, errWireUTF8) {
		t.Fatalf("codec encoded invalid UTF-8: %v", err)
	}
	var ev []byte
	ev = protowire.AppendTag(ev, 3, protowire.BytesType)
	ev = protowire.AppendString(ev, "\xfe")
	var env []byte
	env = protowire.AppendTag(env, fTrace, protowire.BytesType)
	env = protowire.AppendBytes(env, ev)
	var buf []byte
	buf = protowire.AppendTag(buf, batchMessages, protowire.BytesType)
	buf = protowire.AppendBytes(buf, env)
	if _, _, err := codecDecode(buf, 0); err == nil {
		t.Fatal("codec decoded invalid UTF-8")
	}
	sameDecoding(t, buf, 0)
}

// oddEncodings are valid encodings the generated code never writes but
// accepts, and invalid ones it refuses: both decoders must agree on each.
func oddEncodings() map[string][]byte {
	env := func(fields ...[]byte) []byte {
		e := bytes.Join(fields, nil)
		var b []byte
		b = protowire.AppendTag(b, batchMessages, protowire.BytesType)
		return protowire.AppendBytes(b, e)
	}
	varint := func(num protowire.Number, v uint64) []byte {
		b := protowire.AppendTag(nil, num, protowire.VarintType)
		return protowire.AppendVarint(b, v)
	}
	bytesField := func(num protowire.Number, v []byte) []byte {
		b := protowire.AppendTag(nil, num, protowire.BytesType)
		return protowire.AppendBytes(b, v)
	}
	fixed := func(num protowire.Number, v uint64) []byte {
		b := protowire.AppendTag(nil, num, protowire.Fixed64Type)
		return protowire.AppendFixed64(b, v)
	}
	group := func(num protowire.Number, inner []byte) []byte {
		b := protowire.AppendTag(nil, num, protowire.StartGroupType)
		b = append(b, inner...)
		return protowire.AppendTag(b, num, protowire.EndGroupType)
	}
	hashList := bytesField(fHashes, append(fixed(1, 7), bytesField(1, protowire.AppendFixed64(nil, 9))...))
	return map[string][]byte{
		"empty":                 {},
		"empty envelope":        env(),
		"fields reversed":       env(varint(fReqID, 9), bytesField(fTo, []byte("a")), bytesField(fFrom, []byte("b")), varint(fType, 2)),
		"repeated singular":     env(varint(fType, 2), varint(fType, 3), bytesField(fKey, []byte("x")), bytesField(fKey, nil)),
		"unpacked repeated":     env(varint(fLevels, 1), varint(fLevels, 2), fixed(fVersions, 5), varint(fBuckets, 1<<40)),
		"packed and unpacked":   env(bytesField(fLevels, protowire.AppendVarint(nil, 3)), varint(fLevels, 4)),
		"empty packed":          env(bytesField(fLevels, nil), bytesField(fVersions, nil)),
		"hash list mixed":       env(hashList, bytesField(fHashes, nil)),
		"unknown fields":        env(varint(99, 1), bytesField(100, []byte("zz")), fixed(101, 1), group(102, varint(1, 1)), varint(fType, 2)),
		"unknown batch fields":  append(append(varint(2, 5), env(varint(fType, 2))...), group(3, nil)...),
		"wrong wire type":       env(bytesField(fType, []byte{1}), varint(fKey, 1), fixed(fFrom, 1), varint(fTrace, 1), varint(fHashes, 2)),
		"wrong batch wire type": varint(batchMessages, 1),
		"group in envelope":     env(group(fKey, nil)),
		"type too large":        env(varint(fType, 1<<20)),
		"type truncated":        env(varint(fType, 1<<32+2)),
		"code too large":        env(varint(fCode, 300)),
		"negative ints":         env(varint(fW, math.MaxUint64), varint(fPartition, 1<<63)),
		"bool as 2":             env(varint(fDelete, 2), varint(fFound, 1<<40)),
		"trace fields":          env(bytesField(fTrace, append(varint(1, 5), bytesField(2, []byte("n\xff"))...)), bytesField(fTrace, nil)),
		"trace unknown":         env(bytesField(fTrace, varint(9, 1))),
		"truncated varint":      env([]byte{fType << 3, 0x80}),
		"overlong varint":       env([]byte{fType << 3, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02}),
		"truncated length":      append(protowire.AppendTag(nil, batchMessages, protowire.BytesType), 0x05, 1),
		"huge length":           append(protowire.AppendTag(nil, batchMessages, protowire.BytesType), 0xff, 0xff, 0xff, 0xff, 0x0f),
		"inner huge length":     env(protowire.AppendTag(nil, fKey, protowire.BytesType), []byte{0xff, 0xff, 0xff, 0x7f}),
		"packed fixed64 ragged": env(bytesField(fVersions, []byte{1, 2, 3})),
		"hash list ragged":      env(bytesField(fHashes, bytesField(1, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}))),
		"packed varint cut":     env(bytesField(fLevels, []byte{0x80})),
		"field zero":            env([]byte{0x00, 0x01}),
		"end group at top":      protowire.AppendTag(nil, 5, protowire.EndGroupType),
		"end group in env":      env(protowire.AppendTag(nil, 5, protowire.EndGroupType)),
		"unclosed group":        env(protowire.AppendTag(nil, 50, protowire.StartGroupType)),
		"wire type 6":           env([]byte{fType<<3 | 6, 0}),
		"reserved number":       env(varint(19500, 1)),
		"max field number":      env(varint(protowire.MaxValidNumber, 1)),
		"field number too big":  env(protowire.AppendVarint(nil, uint64(protowire.MaxValidNumber+1)<<3)),
		"batch number too big":  append(protowire.AppendVarint(nil, uint64(math.MaxInt32)<<3), 0),
		"two envelopes":         append(env(varint(fType, 2)), env(varint(fType, 3))...),
	}
}

// TestDecodeBoundsEnvelopes: a frame of many tiny envelopes is refused
// before anything is allocated for them; a batch at the bound is not.
func TestDecodeBoundsEnvelopes(t *testing.T) {
	empty := protowire.AppendBytes(protowire.AppendTag(nil, batchMessages, protowire.BytesType), nil)
	var b inBatch
	if err := b.decode(bytes.Repeat(empty, maxBatchEnvelopes)); err != nil || len(b.msgs) != maxBatchEnvelopes {
		t.Fatalf("batch at the bound: %v, %d messages", err, len(b.msgs))
	}
	if err := b.decode(bytes.Repeat(empty, maxBatchEnvelopes+1)); !errors.Is(err, errWire) {
		t.Fatalf("batch over the bound: %v", err)
	}
}

func TestCodecDecodesLikeProto(t *testing.T) {
	for name, buf := range oddEncodings() {
		t.Run(name, func(t *testing.T) {
			for split := range len(buf) + 1 {
				sameDecoding(t, buf, split)
			}
		})
	}
}

// FuzzCodecDecode: on arbitrary bytes, the codec's decoder does not panic,
// rejects what the generated code rejects, and otherwise yields the same
// messages as the generated code and fromEnvelope.
func FuzzCodecDecode(f *testing.F) {
	for _, buf := range oddEncodings() {
		f.Add(buf, 0)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		msgs := []node.Message{randomMessage(r, false), randomMessage(r, false)}
		msgs[0].Trace = nil
		buf, err := protoBatch(f, msgs)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(buf, r.IntN(len(buf)+1))
	}
	f.Fuzz(func(t *testing.T, buf []byte, split int) {
		sameDecoding(t, buf, split)
	})
}

// TestDecodeCopiesOut: decoded messages share no bytes with the frame (gRPC
// reuses it), a field's capacity ends at its length (appending to a key
// must not overwrite the object), and a large object has a buffer of its
// own (a small key the core keeps must not pin it).
func TestDecodeCopiesOut(t *testing.T) {
	big := bytes.Repeat([]byte{7}, sharedMax+1)
	m := node.Message{Type: node.MsgReplicaPut, From: "b", To: "a", Key: []byte("k"), Context: []byte("c"), Object: big, Keys: [][]byte{{1}, {}}}
	buf, err := codecBatch([]node.Message{m})
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := codecDecode(buf, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range buf {
		buf[i] = 0xee
	}
	if !reflect.DeepEqual(got[0], m) {
		t.Fatalf("decoded message changed with the frame: %#v", got[0])
	}
	g := got[0]
	if cap(g.Key) != len(g.Key) || cap(g.Context) != len(g.Context) || cap(g.Keys[0]) != 1 || g.Keys[1] == nil {
		t.Fatalf("capacities: key %d, context %d, keys[0] %d, keys[1] %v", cap(g.Key), cap(g.Context), cap(g.Keys[0]), g.Keys[1])
	}
	// Key and Context share a buffer; the object does not.
	k, c := uintptr(unsafe.Pointer(unsafe.SliceData(g.Key))), uintptr(unsafe.Pointer(unsafe.SliceData(g.Context)))
	if c-k != uintptr(len(g.Key)) {
		t.Errorf("key at %#x and context at %#x: not one shared buffer", k, c)
	}
	if cap(g.Object) != len(big) {
		t.Errorf("object's capacity %d, want its own buffer of %d", cap(g.Object), len(big))
	}
}

// TestDecodeInternsNodeIDs: a stream's node IDs are allocated once, and a
// sender inventing IDs cannot grow the table without bound.
func TestDecodeInternsNodeIDs(t *testing.T) {
	var b inBatch
	decode := func(m node.Message) node.Message {
		buf, err := codecBatch([]node.Message{m})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.decode(buf); err != nil {
			t.Fatal(err)
		}
		return b.msgs[0]
	}
	m := node.Message{Type: node.MsgForwardResp, From: "node-b", To: "node-a", Hint: "node-b", Dot: dvv.Dot{Actor: "node-b", Counter: 1}}
	first, second := decode(m), decode(m)
	if !reflect.DeepEqual(first, m) || !reflect.DeepEqual(second, m) {
		t.Fatalf("decoded %+v and %+v, want %+v", first, second, m)
	}
	same := func(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }
	if !same(string(first.From), string(second.From)) || !same(string(first.To), string(second.To)) ||
		!same(string(first.From), string(second.Hint)) || !same(string(first.From), second.Dot.Actor) {
		t.Error("node IDs were not interned")
	}
	for i := range 10 * maxInterned {
		decode(node.Message{Type: node.MsgReplicaGet, From: ring.NodeID(fmt.Sprint("forged-", i)), To: "node-a"})
	}
	if len(b.ids.m) > maxInterned {
		t.Fatalf("%d interned IDs, want at most %d", len(b.ids.m), maxInterned)
	}
	long := ring.NodeID(bytes.Repeat([]byte{'x'}, maxInternedLen+1))
	if got := decode(node.Message{Type: node.MsgReplicaGet, From: long}); got.From != long {
		t.Fatalf("From = %q", got.From)
	}
}

// TestCodecLeavesOtherMessagesToProto: Step's messages still go through
// gRPC's protobuf codec.
func TestCodecLeavesOtherMessagesToProto(t *testing.T) {
	m := fullMessage(3, "a", "b")
	in := &dynagopb.Batch{Messages: []*dynagopb.Envelope{envelopeOf(&m)}}
	data, err := peerCodec.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out dynagopb.Batch
	if err := peerCodec.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, &out) {
		t.Fatal("Batch changed through the codec")
	}
	if peerCodec.Name() != "proto" {
		t.Fatalf("codec name %q: peers without this codec would not decode our batches", peerCodec.Name())
	}
}

// BenchmarkCodec measures encoding and decoding a batch of one small
// request, the common case.
func BenchmarkCodec(b *testing.B) {
	m := node.Message{Type: node.MsgReplicaGetResp, From: "n2", To: "n1", ReqID: 77, Key: []byte("key-000123"), Found: true, Object: bytes.Repeat([]byte{1}, 100)}
	b.Run("encode", func(b *testing.B) {
		ob := &outBatch{msgs: []node.Message{m}}
		b.ReportAllocs()
		for b.Loop() {
			data, err := peerCodec.Marshal(ob)
			if err != nil {
				b.Fatal(err)
			}
			data.Free()
		}
	})
	b.Run("encode-proto", func(b *testing.B) {
		b.ReportAllocs()
		var e dynagopb.Envelope
		batch := &dynagopb.Batch{Messages: []*dynagopb.Envelope{&e}}
		for b.Loop() {
			toEnvelope(&e, &m)
			data, err := peerCodec.Marshal(batch)
			if err != nil {
				b.Fatal(err)
			}
			data.Free()
		}
	})
	buf, err := codecBatch([]node.Message{m})
	if err != nil {
		b.Fatal(err)
	}
	data := mem.BufferSlice{mem.SliceBuffer(buf)}
	b.Run("decode", func(b *testing.B) {
		var in inBatch
		b.ReportAllocs()
		for b.Loop() {
			if err := peerCodec.Unmarshal(data, &in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode-fresh-interner", func(b *testing.B) {
		// What interning saves: a new stream's first batch.
		b.ReportAllocs()
		for b.Loop() {
			var in inBatch
			if err := peerCodec.Unmarshal(data, &in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode-proto", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var batch dynagopb.Batch
			if err := peerCodec.Unmarshal(data, &batch); err != nil {
				b.Fatal(err)
			}
			if _, bad := decodeBatch(&batch); bad != nil {
				b.Fatal(bad)
			}
		}
	})
}

// generatedNode is a Node server with nothing but the generated code, as
// a node without peerCodec would be: it accepts every stream and passes
// each Batch on.
type generatedNode struct {
	dynagopb.UnimplementedNodeServer
	batches chan *dynagopb.Batch
}

func (g *generatedNode) Stream(st dynagopb.Node_StreamServer) error {
	if err := st.SendHeader(nil); err != nil {
		return err
	}
	for {
		b, err := st.Recv()
		if err != nil {
			return err
		}
		g.batches <- b
	}
}

// TestStreamReachesAGeneratedCodeServer: a peer that decodes with the
// generated code (a node of an earlier version) reads our stream's batches
// as the messages we sent.
func TestStreamReachesAGeneratedCodeServer(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &generatedNode{batches: make(chan *dynagopb.Batch, 16)}
	srv := grpc.NewServer()
	dynagopb.RegisterNodeServer(srv, g)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	a := env{ModeStream}.start(t, "a", func([]node.Message) {}, nil)
	a.SetPeers(map[ring.NodeID]string{"b": lis.Addr().String()})
	var sent []node.Message
	for i := range 5 {
		m := fullMessage(i, "a", "b")
		sent = append(sent, m)
		a.Send(m)
	}
	var got []node.Message
	deadline := time.After(10 * time.Second)
	for len(got) < len(sent) {
		select {
		case b := <-g.batches:
			msgs, bad := decodeBatch(b)
			if bad != nil {
				t.Fatalf("the generated code found bad messages: %v", bad)
			}
			got = append(got, msgs...)
		case <-deadline:
			t.Fatalf("received %d of %d messages", len(got), len(sent))
		}
	}
	if !reflect.DeepEqual(got, sent) {
		t.Fatalf("the generated code decoded\n%#v\nwant\n%#v", got, sent)
	}
}
