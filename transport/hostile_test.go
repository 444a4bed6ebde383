package transport

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/dynago/dynago/cluster"
	"github.com/dynago/dynago/dvv"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/proto/dynagopb"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/storage"
)

// core is a real node core ("a", in a ring of a, b, c with N=3 and R=W=1,
// so that it answers its clients alone) driven synchronously: what a
// Step handler would deliver to.
type core struct {
	t     testing.TB
	n     *node.Node
	store *storage.Mem
	now   time.Time
	id    uint64
	// touched: a delivered message named ackedKey. A peer may write a
	// key (a forwarded client write, a replica put): then the key must
	// still be readable, but its value may have changed by the protocol.
	touched bool
}

// ackedKey is the key acknowledged before hostile input arrives.
const ackedKey = "acked-key"

func newCore(t testing.TB) *core {
	t.Helper()
	st, err := cluster.Initial(8, 3, []ring.NodeID{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	store := storage.NewMem()
	n, err := node.New(node.Config{ID: "a", Actor: node.ActorFor("a", 1), State: &st, R: 1, W: 1}, store)
	if err != nil {
		t.Fatal(err)
	}
	c := &core{t: t, n: n, store: store, now: time.Unix(1000, 0)}
	n.Tick(c.now)
	c.drain()
	return c
}

func (c *core) drain() []node.Reply {
	var replies []node.Reply
	for c.n.HasReady() {
		rd := c.n.Ready()
		if err := c.store.Apply(rd.Batch(), true); err != nil {
			c.t.Fatal(err)
		}
		c.n.Advance()
		replies = append(replies, rd.Replies...)
	}
	return replies
}

func (c *core) do(req node.Request) node.Reply {
	c.t.Helper()
	c.id++
	req.ID = c.id
	c.now = c.now.Add(time.Millisecond)
	c.n.Propose(c.now, req)
	for _, r := range c.drain() {
		if r.ID == req.ID {
			return r
		}
	}
	c.t.Fatalf("no reply to %v %q", req.Op, req.Key)
	return node.Reply{}
}

// step is the Handler: every message the transport lets through goes to
// the core.
func (c *core) step(msgs []node.Message) {
	for _, m := range msgs {
		if err := m.Validate(); err != nil {
			c.t.Fatalf("the transport delivered an invalid message: %v", err)
		}
		if string(m.Key) == ackedKey {
			c.touched = true
		}
		for _, k := range m.Keys {
			if string(k) == ackedKey {
				c.touched = true
			}
		}
		c.now = c.now.Add(time.Millisecond)
		c.n.Step(c.now, m)
		c.drain()
	}
}

func (c *core) mustRead(key, value string) {
	c.t.Helper()
	r := c.do(node.Request{Op: node.OpGet, Key: []byte(key)})
	if c.touched && (r.Code == node.CodeOK || r.Code == node.CodeNotFound) {
		return // readable; what a peer wrote is the protocol's business
	}
	if r.Code != node.CodeOK || len(r.Siblings) != 1 || string(r.Siblings[0].Value) != value {
		c.t.Fatalf("read %q: %v %q %v, want the one value %q", key, r.Code, r.Err, r.Siblings, value)
	}
}

// hostileStepper is a Step handler in front of a real core, with key "k"
// acknowledged.
func hostileStepper(t testing.TB) (*nodeServer, *core) {
	c := newCore(t)
	if r := c.do(node.Request{Op: node.OpPut, Key: []byte(ackedKey), Value: []byte("acked")}); r.Code != node.CodeOK {
		t.Fatalf("put: %v %s", r.Code, r.Err)
	}
	tr, err := New(Config{ID: "a", ListenAddr: "127.0.0.1:0"}, c.step)
	if err != nil {
		t.Fatal(err)
	}
	return &nodeServer{t: tr}, c
}

// hostileEnvelopes are frames a node of this version never sends, each
// with one field out of range.
func hostileEnvelopes() map[string]*dynagopb.Envelope {
	key := []byte("k")
	ok := func(e *dynagopb.Envelope) *dynagopb.Envelope {
		if e.From == nil {
			e.From = []byte("b")
		}
		if e.To == nil {
			e.To = []byte("a")
		}
		return e
	}
	return map[string]*dynagopb.Envelope{
		"reap partition 1e6":    ok(&dynagopb.Envelope{Type: uint32(node.MsgReap), Partition: 1_000_000, Keys: [][]byte{key}, Versions: []uint64{1}}),
		"reap partition -1":     ok(&dynagopb.Envelope{Type: uint32(node.MsgReap), Partition: -1, Keys: [][]byte{key}, Versions: []uint64{1}}),
		"reap partition maxint": ok(&dynagopb.Envelope{Type: uint32(node.MsgReap), Partition: math.MaxInt64}),
		"reap unpaired":         ok(&dynagopb.Envelope{Type: uint32(node.MsgReap), Keys: [][]byte{key}}),
		"unknown type":          ok(&dynagopb.Envelope{Type: 99}),
		"type zero":             ok(&dynagopb.Envelope{Type: 0}),
		"huge type":             ok(&dynagopb.Envelope{Type: math.MaxUint32}),
		"unknown code":          ok(&dynagopb.Envelope{Type: uint32(node.MsgForwardResp), Code: 200}),
		"no sender":             {Type: uint32(node.MsgReplicaGet), To: []byte("a"), Key: key},
		"long sender":           ok(&dynagopb.Envelope{Type: uint32(node.MsgReplicaGet), From: make([]byte, 4096), Key: key}),
		"negative w":            ok(&dynagopb.Envelope{Type: uint32(node.MsgForward), Key: key, W: -3}),
		"negative timeout":      ok(&dynagopb.Envelope{Type: uint32(node.MsgForward), Key: key, W: 1, TimeoutNs: -1}),
		"counter overflow":      ok(&dynagopb.Envelope{Type: uint32(node.MsgForwardResp), DotCounter: math.MaxUint64}),
		"bad context":           ok(&dynagopb.Envelope{Type: uint32(node.MsgForward), Key: key, W: 1, Context: []byte{1, 1, 1, 'a', 0}}),
		"forged counter":        ok(&dynagopb.Envelope{Type: uint32(node.MsgForward), Key: key, W: 1, Context: append([]byte{1, 1, 1, 'a'}, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01)}),
		"levels unpaired":       ok(&dynagopb.Envelope{Type: uint32(node.MsgAETreeReq), Levels: []uint32{1, 2}, Indexes: []uint32{0}}),
		"empty key":             ok(&dynagopb.Envelope{Type: uint32(node.MsgReplicaPut), Key: []byte{}, Object: []byte{1}}),
	}
}

// hostileTarget starts the victim of a hostile-frame test: a core holding
// an acknowledged key "k" (which must still read back afterwards), and a
// transport "a" on loopback whose deliveries arrive on delivered, reached
// by a client with only the generated code.
func hostileTarget(t *testing.T) (c *core, tr *Transport, delivered chan []node.Message, client dynagopb.NodeClient) {
	t.Helper()
	c = newCore(t)
	if r := c.do(node.Request{Op: node.OpPut, Key: []byte("k"), Value: []byte("acked")}); r.Code != node.CodeOK {
		t.Fatalf("put: %v %s", r.Code, r.Err)
	}
	delivered = make(chan []node.Message, 64)
	tr, err := New(Config{ID: "a", ListenAddr: "127.0.0.1:0"}, func(msgs []node.Message) { delivered <- msgs })
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	conn, err := grpc.NewClient(tr.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client = dynagopb.NewNodeClient(conn)
	return c, tr, delivered, client
}

// expectOnlyGood waits for what the handler delivered of a batch holding
// one hostile envelope and the good one (ReqID 7), checks that it is the
// good message alone, and steps the core with it.
func expectOnlyGood(t *testing.T, name string, c *core, delivered <-chan []node.Message) {
	t.Helper()
	select {
	case msgs := <-delivered:
		if len(msgs) != 1 || msgs[0].ReqID != 7 {
			t.Errorf("%s: delivered %+v, want only the good message", name, msgs)
		}
		c.step(msgs)
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: the good message of the batch was not delivered", name)
	}
}

// TestStepRejectsHostileFrames: through a real gRPC connection, each bad
// frame gets InvalidArgument, the node does not die, and the key it
// acknowledged still reads back. A good frame in the same batch is still
// delivered.
func TestStepRejectsHostileFrames(t *testing.T) {
	c, tr, delivered, client := hostileTarget(t)
	good := &dynagopb.Envelope{Type: uint32(node.MsgReplicaGet), From: []byte("b"), To: []byte("a"), Key: []byte("k"), ReqId: 7}
	for name, e := range hostileEnvelopes() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := client.Step(ctx, &dynagopb.Batch{Messages: []*dynagopb.Envelope{e, good}})
		cancel()
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: Step = %v, want InvalidArgument", name, err)
		}
		expectOnlyGood(t, name, c, delivered)
	}
	if got, want := tr.Stats().Malformed, uint64(len(hostileEnvelopes())); got != want {
		t.Errorf("Stats().Malformed = %d, want %d", got, want)
	}
	c.mustRead("k", "acked")
}

// FuzzStep feeds arbitrary bytes, as a Batch, to the Step handler in front
// of a real core: no panic, a malformed batch is InvalidArgument, whatever
// is delivered passed validation (checked by the handler), and the key
// acknowledged before still reads back.
func FuzzStep(f *testing.F) {
	for _, e := range hostileEnvelopes() {
		buf, err := proto.Marshal(&dynagopb.Batch{Messages: []*dynagopb.Envelope{e}})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(buf)
	}
	for i := range 6 {
		m := fullMessage(i, "b", "a")
		m.Key = []byte("k")
		buf, err := proto.Marshal(&dynagopb.Batch{Messages: []*dynagopb.Envelope{envelopeOf(&m)}})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(buf)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, buf []byte) {
		var b dynagopb.Batch
		if proto.Unmarshal(buf, &b) != nil {
			return // gRPC would have refused it before the handler
		}
		s, c := hostileStepper(t)
		ack, err := s.Step(context.Background(), &b)
		switch {
		case err == nil:
			if int(ack.GetRejected()) > len(b.GetMessages()) {
				t.Fatalf("rejected %d of %d", ack.GetRejected(), len(b.GetMessages()))
			}
		case status.Code(err) != codes.InvalidArgument:
			t.Fatalf("Step = %v, want nil or InvalidArgument", err)
		}
		c.mustRead(ackedKey, "acked")
	})
}

// TestValidateNeverAcceptsAnOverflowingDot: the boundary refuses dot
// counters decoders would refuse.
func TestValidateNeverAcceptsAnOverflowingDot(t *testing.T) {
	m := node.Message{Type: node.MsgForwardResp, From: "b", To: "a", Dot: dvv.Dot{Actor: "b", Counter: dvv.MaxCounter + 1}}
	if err := m.Validate(); !errors.Is(err, node.ErrBadMessage) {
		t.Fatalf("Validate = %v, want ErrBadMessage", err)
	}
}

// rawCodec sends a []byte as the message's encoding, as a hostile peer
// could.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return proto.Unmarshal(data.Materialize(), v.(proto.Message))
}

// TestStreamRejectsHostileFrames: the stream's decoder (peerCodec), through
// a real gRPC connection from a client with the generated code. Each bad
// envelope ends its stream with InvalidArgument after the good message of
// its batch was delivered; a frame that is not a Batch at all ends its
// stream with an error; the node lives on and the key it acknowledged
// still reads back.
func TestStreamRejectsHostileFrames(t *testing.T) {
	c, tr, delivered, client := hostileTarget(t)
	open := func(opts ...grpc.CallOption) (dynagopb.Node_StreamClient, context.CancelFunc) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ctx = metadata.AppendToOutgoingContext(ctx, addresseeKey, "a")
		s, err := client.Stream(ctx, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return s, cancel
	}
	good := &dynagopb.Envelope{Type: uint32(node.MsgReplicaGet), From: []byte("b"), To: []byte("a"), Key: []byte("k"), ReqId: 7}
	for name, e := range hostileEnvelopes() {
		s, cancel := open()
		if err := s.Send(&dynagopb.Batch{Messages: []*dynagopb.Envelope{e, good}}); err != nil {
			t.Fatalf("%s: Send: %v", name, err)
		}
		_, err := s.CloseAndRecv()
		cancel()
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: stream ended with %v, want InvalidArgument", name, err)
		}
		expectOnlyGood(t, name, c, delivered)
	}
	if got, want := tr.Stats().Malformed, uint64(len(hostileEnvelopes())); got != want {
		t.Errorf("Stats().Malformed = %d, want %d", got, want)
	}
	for name, frame := range oddEncodings() {
		if _, _, err := referenceDecode(frame); err == nil {
			continue
		}
		s, cancel := open(grpc.ForceCodecV2(rawCodec{}))
		if err := s.SendMsg(frame); err != nil {
			t.Fatalf("%s: Send: %v", name, err)
		}
		_, err := s.CloseAndRecv()
		cancel()
		if err == nil || status.Code(err) == codes.OK {
			t.Errorf("%s: a frame that is no Batch was accepted", name)
		}
	}
	select {
	case msgs := <-delivered:
		t.Fatalf("undecodable frames delivered %+v", msgs)
	default:
	}
	// The node still takes a good batch.
	s, cancel := open()
	defer cancel()
	if err := s.Send(&dynagopb.Batch{Messages: []*dynagopb.Envelope{good}}); err != nil {
		t.Fatal(err)
	}
	if ack, err := s.CloseAndRecv(); err != nil || ack.GetRejected() != 0 {
		t.Fatalf("good batch: %v, %v", ack, err)
	}
	c.step(<-delivered)
	c.mustRead("k", "acked")
}

// FuzzStreamDeliver is FuzzStep for the stream's decoder: arbitrary bytes
// through peerCodec and deliver, in front of a real core.
func FuzzStreamDeliver(f *testing.F) {
	for _, e := range hostileEnvelopes() {
		buf, err := proto.Marshal(&dynagopb.Batch{Messages: []*dynagopb.Envelope{e}})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(buf)
	}
	for i := range 6 {
		m := fullMessage(i, "b", "a")
		m.Key = []byte("k")
		buf, err := codecBatch([]node.Message{m})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(buf)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, buf []byte) {
		var b inBatch
		if peerCodec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(buf)}, &b) != nil {
			return // the stream ends with gRPC's error
		}
		s, c := hostileStepper(t)
		n := len(b.msgs)
		rejected, err := s.deliver(b.msgs, b.bad)
		switch {
		case err == nil:
			if int(rejected) > n {
				t.Fatalf("rejected %d of %d", rejected, n)
			}
		case status.Code(err) != codes.InvalidArgument:
			t.Fatalf("deliver = %v, want nil or InvalidArgument", err)
		}
		c.mustRead(ackedKey, "acked")
	})
}
