package transport

import (
	"bytes"
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynago/dynago/internal/testutil"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

var benchModes = []Mode{ModeUnary, ModeStream}

// BenchmarkSendRoundTrip measures one-way throughput between two transports
// on loopback: b.N replica puts from a to b, timed until b has received them
// all. The sender keeps at most half a queue outstanding, so nothing is
// dropped and the rate is what the transport sustains, not what Send
// accepts.
func BenchmarkSendRoundTrip(b *testing.B) {
	for _, mode := range benchModes {
		for _, size := range []int{64, 1024, 16 << 10} {
			b.Run(fmt.Sprintf("%v/object=%dB", mode, size), func(b *testing.B) {
				benchThroughput(b, env{mode}, size)
			})
		}
	}
}

func benchThroughput(b *testing.B, e env, size int) {
	window := make(chan struct{}, DefaultQueueSize/2)
	var got atomic.Int64
	done := make(chan struct{})
	target := int64(b.N)
	rx := e.start(b, "b", func(msgs []node.Message) {
		for range msgs {
			<-window
		}
		if got.Add(int64(len(msgs))) == target {
			close(done)
		}
	}, nil)
	tx := e.start(b, "a", func([]node.Message) {}, func(c *Config) {
		c.Peers = map[ring.NodeID]string{"b": rx.Addr()}
	})
	m := node.Message{
		Type:   node.MsgReplicaPut,
		From:   "a",
		To:     "b",
		Key:    bytes.Repeat([]byte("k"), 16),
		Object: bytes.Repeat([]byte("o"), size),
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for i := range b.N {
		window <- struct{}{}
		m.ReqID = uint64(i)
		tx.Send(m)
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Fatalf("received %d of %d messages", got.Load(), b.N)
	}
	b.StopTimer()
	reportCPU(b, cpu)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if st := tx.Stats().Total; st.Dropped+st.Failed != 0 {
		b.Fatalf("stats %+v: the benchmark must not lose messages", st)
	}
}

// BenchmarkPingPong measures the round-trip latency of one message: a sends
// a replica get to b, b's handler answers, a waits for the answer before
// sending the next. ns/op is the round trip.
func BenchmarkPingPong(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode.String(), func(b *testing.B) { benchPingPong(b, env{mode}) })
	}
}

func benchPingPong(b *testing.B, e env) {
	pong := make(chan struct{}, 1)
	var rx *Transport
	rx = e.start(b, "b", func(msgs []node.Message) {
		for _, m := range msgs {
			rx.Send(node.Message{Type: node.MsgReplicaGetResp, From: "b", To: m.From, ReqID: m.ReqID})
		}
	}, nil)
	tx := e.start(b, "a", func(msgs []node.Message) {
		for range msgs {
			pong <- struct{}{}
		}
	}, func(c *Config) { c.Peers = map[ring.NodeID]string{"b": rx.Addr()} })
	rx.SetPeers(map[ring.NodeID]string{"a": tx.Addr()})
	pingPong(b, tx.Send, pong)
}

// pingPong is the measured part of a ping-pong benchmark: b.N replica gets
// from a to b through send, each sent once pong has signalled the answer
// to the last, and the process CPU per round trip.
func pingPong(b *testing.B, send func(node.Message), pong <-chan struct{}) {
	ping := node.Message{Type: node.MsgReplicaGet, From: "a", To: "b", Key: []byte("key")}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for i := range b.N {
		ping.ReqID = uint64(i)
		send(ping)
		select {
		case <-pong:
		case <-time.After(10 * time.Second):
			b.Fatalf("no answer to ping %d", i)
		}
	}
	b.StopTimer()
	reportCPU(b, cpu)
}

// reportCPU reports the process CPU time used since start, per operation:
// both transports' work, sender and receiver.
func reportCPU(b *testing.B, start time.Duration) {
	if start == 0 {
		return
	}
	b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkFanOut measures Dynamo's request pattern on the stream
// transport: a coordinator c asks two replicas p1 and p2 (a replica get
// each) and each answers at once (a replica get answer carrying a 100-byte
// object). One op is one such round: four one-way messages. inflight=1 is
// one client, every round waiting for the last; inflight=32 keeps 32
// rounds outstanding, as many clients do, so batches can form. cpu-µs/op
// and cpu-µs/msg are process CPU (user + system, all three transports) per
// round and per message; allocs/op counts all three too.
func BenchmarkFanOut(b *testing.B) {
	for _, inflight := range []int{1, 32} {
		b.Run(fmt.Sprintf("inflight=%d", inflight), func(b *testing.B) {
			benchFanOut(b, env{ModeStream}, inflight)
		})
	}
}

func benchFanOut(b *testing.B, e env, inflight int) {
	object := bytes.Repeat([]byte("o"), 100)
	key := bytes.Repeat([]byte("k"), 16)
	replicas := []ring.NodeID{"p1", "p2"}
	addrs := map[ring.NodeID]string{}
	trs := map[ring.NodeID]*Transport{}
	for _, id := range replicas {
		var tr *Transport
		tr = e.start(b, id, func(msgs []node.Message) {
			for _, m := range msgs {
				tr.Send(node.Message{Type: node.MsgReplicaGetResp, From: id, To: m.From, ReqID: m.ReqID, Key: m.Key, Found: true, Object: object})
			}
		}, nil)
		trs[id], addrs[id] = tr, tr.Addr()
	}
	const warmUp = math.MaxUint64
	answers := make([]atomic.Int32, b.N)
	var issued, finished atomic.Int64
	done := make(chan struct{})
	var c *Transport
	ask := func() {
		i := issued.Add(1) - 1
		if i >= int64(b.N) {
			return
		}
		for _, to := range replicas {
			c.Send(node.Message{Type: node.MsgReplicaGet, From: "c", To: to, ReqID: uint64(i), Key: key})
		}
	}
	c = e.start(b, "c", func(msgs []node.Message) {
		for _, m := range msgs {
			if m.ReqID == warmUp {
				continue
			}
			if answers[m.ReqID].Add(1) != int32(len(replicas)) {
				continue
			}
			ask()
			if finished.Add(1) == int64(b.N) {
				close(done)
			}
		}
	}, func(cfg *Config) { cfg.Peers = addrs })
	addrs["c"] = c.Addr()
	for _, tr := range trs {
		tr.SetPeers(addrs)
	}
	// Open every stream, both ways, before timing.
	for _, to := range replicas {
		c.Send(node.Message{Type: node.MsgReplicaGet, From: "c", To: to, ReqID: warmUp, Key: key})
	}
	testutil.Eventually(b, 10*time.Second, "every stream open", func() bool {
		return c.Stats().Total.Received == uint64(len(replicas))
	})
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for range min(inflight, b.N) {
		ask()
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Fatalf("finished %d of %d rounds", finished.Load(), b.N)
	}
	b.StopTimer()
	if cpu != 0 {
		perOp := float64(processCPU()-cpu) / float64(b.N) / 1e3
		b.ReportMetric(perOp, "cpu-µs/op")
		b.ReportMetric(perOp/4, "cpu-µs/msg")
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rounds/s")
}
