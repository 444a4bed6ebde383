package transport

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/dynago/dynago/dvv"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/proto/dynagopb"
	"github.com/dynago/dynago/ring"
)

// fullMessage returns a message with every field set to a value that depends
// on i, including an error text and IDs that are not valid UTF-8.
func fullMessage(i int, from, to ring.NodeID) node.Message {
	return node.Message{
		Type:      node.MsgType(1 + i%6),
		From:      from,
		To:        to,
		ReqID:     uint64(i) + 1<<40,
		Key:       fmt.Appendf(nil, "key-%d", i),
		Object:    []byte{0, byte(i), byte(i >> 8), 0xff, 0},
		Value:     fmt.Appendf(nil, "value-%d-\x00\xfe", i),
		Context:   dvv.EncodeContext(dvv.VV{{Actor: fmt.Sprintf("n%d", i), Counter: uint64(i) + 1}}),
		Delete:    true,
		Replace:   true,
		W:         1 + i%5,
		Timeout:   time.Duration(i+1)*time.Millisecond + 7,
		Found:     true,
		Err:       fmt.Sprintf("replica failed on key \xff\xfe %d", i),
		Code:      node.Code(1 + i%5),
		Acks:      2 + i%3,
		Required:  3,
		Repair:    true,
		LazySync:  true,
		Hint:      "n\xc3\x28-primary", // invalid UTF-8 on purpose
		Dot:       dvv.Dot{Actor: fmt.Sprintf("n%d:0000beef\xff", i), Counter: uint64(i)*3 + 1},
		Partition: 1 + i%64,
		Levels:    []uint32{0, 1, uint32(i % 7)},
		Indexes:   []uint32{0, uint32(i % 2), uint32(i)},
		Hashes:    [][]uint64{{1, 1<<64 - 1}, {uint64(i) * 0x9e3779b97f4a7c15}},
		Buckets:   []uint32{uint32(i), 1 << 31},
		Keys:      [][]byte{fmt.Appendf(nil, "k-%d", i), {0, 0xff}},
		Versions:  []uint64{uint64(i) ^ 0xdeadbeefcafef00d, 0},
		Trace:     []node.TraceEvent{{At: time.Duration(i) * time.Microsecond, Node: "n\xff2", What: "ack", Note: "hint for n3"}},
	}
}

// wire sends m through toEnvelope, the protobuf encoding and fromEnvelope.
func wire(t testing.TB, m node.Message) node.Message {
	t.Helper()
	buf, err := proto.Marshal(&dynagopb.Batch{Messages: []*dynagopb.Envelope{envelopeOf(&m)}})
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var b dynagopb.Batch
	if err := proto.Unmarshal(buf, &b); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	if len(b.Messages) != 1 {
		t.Fatalf("got %d envelopes, want 1", len(b.Messages))
	}
	got, err := fromEnvelope(b.Messages[0])
	if err != nil {
		t.Fatalf("fromEnvelope: %v", err)
	}
	return got
}

func TestEnvelopeRoundTripKeepsEveryField(t *testing.T) {
	m := fullMessage(1234, "n1", "n2")
	// Guard the fixture: a field added to node.Message but not to the
	// fixture (and so perhaps not to the mapping) must fail this test.
	v := reflect.ValueOf(m)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("fixture leaves node.Message.%s zero; set it (and map it in convert.go)", v.Type().Field(i).Name)
		}
	}
	if got := wire(t, m); !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip changed the message\n got %+v\nwant %+v", got, m)
	}
}

func TestEnvelopeRoundTripKeepsNilAndEmptyApart(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
	}{{"nil", nil}, {"empty", []byte{}}} {
		t.Run(tc.name, func(t *testing.T) {
			m := node.Message{Type: node.MsgForward, From: "a", To: "b", Key: tc.b, Object: tc.b, Value: tc.b, Context: tc.b}
			got := wire(t, m)
			for name, b := range map[string][]byte{"Key": got.Key, "Object": got.Object, "Value": got.Value, "Context": got.Context} {
				if (b == nil) != (tc.b == nil) || len(b) != 0 {
					t.Errorf("%s = %#v after round trip, want %#v", name, b, tc.b)
				}
			}
		})
	}
}

func TestEnvelopeRoundTripKeepsEmptyHashLists(t *testing.T) {
	// The core pairs Hashes[i] with Levels[i]: an empty child list must
	// keep its place.
	m := node.Message{Type: node.MsgAETreeResp, Levels: []uint32{1, 2, 3}, Indexes: []uint32{0, 0, 0},
		Hashes: [][]uint64{{}, nil, {7}}}
	got := wire(t, m)
	if len(got.Hashes) != 3 || len(got.Hashes[0]) != 0 || len(got.Hashes[1]) != 0 || !reflect.DeepEqual(got.Hashes[2], []uint64{7}) {
		t.Fatalf("Hashes = %#v after round trip, want 3 lists of lengths 0, 0, 1", got.Hashes)
	}
}

func TestEnvelopeRoundTripZeroMessage(t *testing.T) {
	if got := wire(t, node.Message{}); !reflect.DeepEqual(got, node.Message{}) {
		t.Fatalf("zero message came back as %+v", got)
	}
}

func TestFromEnvelopeRejectsOutOfRangeValues(t *testing.T) {
	for name, e := range map[string]*dynagopb.Envelope{
		"type": {Type: 256 + uint32(node.MsgForward)},
		"code": {Type: uint32(node.MsgForwardResp), Code: 300},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := fromEnvelope(e); err == nil {
				t.Fatalf("fromEnvelope(%v) accepted an out-of-range value", e)
			}
		})
	}
}

// FuzzEnvelope feeds arbitrary bytes to the receiving side's decoder: it must
// not panic, and whatever it accepts must survive another round trip intact.
func FuzzEnvelope(f *testing.F) {
	for i := range 3 {
		m := fullMessage(i, "n1", "n2")
		buf, err := proto.Marshal(envelopeOf(&m))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(buf)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, buf []byte) {
		var e dynagopb.Envelope
		if proto.Unmarshal(buf, &e) != nil {
			return
		}
		m, err := fromEnvelope(&e)
		if err != nil {
			return
		}
		// The boundary's check must not panic either, and what it
		// accepts must stay within the bounds the core relies on.
		if m.Validate() == nil && (m.Partition < 0 || m.W < 0 || m.Timeout < 0 || len(m.Levels) != len(m.Indexes)) {
			t.Fatalf("Validate accepted an out-of-range message %+v", m)
		}
		if got := wire(t, m); !reflect.DeepEqual(got, m) {
			t.Fatalf("second round trip changed the message\n got %+v\nwant %+v", got, m)
		}
	})
}

// envelopeOf returns m's envelope.
func envelopeOf(m *node.Message) *dynagopb.Envelope {
	e := new(dynagopb.Envelope)
	toEnvelope(e, m)
	return e
}
