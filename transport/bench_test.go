package transport

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

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
	ping := node.Message{Type: node.MsgReplicaGet, From: "a", To: "b", Key: []byte("key")}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for i := range b.N {
		ping.ReqID = uint64(i)
		tx.Send(ping)
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
