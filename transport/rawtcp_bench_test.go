package transport

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"slices"
	"testing"

	"github.com/dynago/dynago/node"
)

// BenchmarkPingPongRawTCP is BenchmarkPingPong/stream without gRPC: the
// floor a lighter peer protocol could reach with this package's own
// structure. Each direction has its own connection, as the streams do; Send
// pushes onto the same bounded queue, a sender goroutine takes a batch,
// encodes it with the stream's codec (outBatch) into one length-prefixed
// frame and writes it; the receiver reads frames on the connection's
// goroutine, decodes them (inBatch) and calls the handler there. What it
// leaves out is what gRPC adds between the two: its writer goroutine
// (loopy), the HTTP/2 framing and flow control, and its reader goroutine
// handing each message to the stream's. It is a measurement for deciding
// on the transport, not a transport: no TLS, no reconnects, no deadlines.
func BenchmarkPingPongRawTCP(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	pair := func() (out, in net.Conn) {
		out, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		if in, err = ln.Accept(); err != nil {
			b.Fatal(err)
		}
		return out, in
	}
	abOut, abIn := pair()
	baOut, baIn := pair()
	toB, toA := newQueue(8192), newQueue(8192)
	done := make(chan struct{})
	defer func() {
		close(done)
		for _, c := range []net.Conn{abOut, abIn, baOut, baIn} {
			_ = c.Close()
		}
	}()
	go rawSender(toB, abOut, done)
	go rawSender(toA, baOut, done)
	pong := make(chan struct{}, 1)
	go rawReceiver(abIn, func(msgs []node.Message) {
		for _, m := range msgs {
			toA.push(node.Message{Type: node.MsgReplicaGetResp, From: "b", To: m.From, ReqID: m.ReqID})
		}
	})
	go rawReceiver(baIn, func(msgs []node.Message) {
		for range msgs {
			pong <- struct{}{}
		}
	})
	pingPong(b, func(m node.Message) { toB.push(m) }, pong)
}

// rawSender writes q's batches to c, one frame each, until done.
func rawSender(q *queue, c net.Conn, done <-chan struct{}) {
	w := bufio.NewWriterSize(c, 64<<10)
	var scratch []node.Message
	var batch outBatch
	var buf []byte
	for {
		select {
		case <-done:
			return
		case <-q.ready:
		}
		for {
			scratch = q.take(scratch[:0], DefaultMaxBatch, DefaultMaxBatchBytes)
			if len(scratch) == 0 {
				break
			}
			batch.msgs = scratch
			if _, err := batch.size(); err != nil {
				return
			}
			buf = binary.LittleEndian.AppendUint32(buf[:0], 0)
			buf = batch.appendTo(buf)
			binary.LittleEndian.PutUint32(buf, uint32(len(buf)-4))
			if _, err := w.Write(buf); err != nil {
				return
			}
			clear(scratch)
		}
		if w.Flush() != nil {
			return
		}
	}
}

// rawReceiver decodes c's frames and hands each batch to h, on its own
// goroutine, until c closes.
func rawReceiver(c net.Conn, h func([]node.Message)) {
	r := bufio.NewReaderSize(c, 64<<10)
	var hdr [4]byte
	var buf []byte
	var in inBatch
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		buf = slices.Grow(buf[:0], int(binary.LittleEndian.Uint32(hdr[:])))[:binary.LittleEndian.Uint32(hdr[:])]
		if _, err := io.ReadFull(r, buf); err != nil {
			return
		}
		if err := in.decode(buf); err != nil {
			return
		}
		h(in.msgs)
	}
}
