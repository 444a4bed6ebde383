package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/dynago/dynago/devcluster"
	"github.com/dynago/dynago/dvv"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/proto/dynagopb"
)

// bodyTimeout is the server's body read timeout (httpapi.DefaultBodyTimeout).
const bodyTimeout = 10 * time.Second

// watch records every HTTP answer of a test, to assert that none was a 5xx.
type watch struct {
	mu  sync.Mutex
	bad []string
}

func (w *watch) call(t *testing.T, method, url string, body []byte, header map[string]string) response {
	t.Helper()
	r := call(t, method, url, body, header)
	if r.Status >= 500 {
		w.mu.Lock()
		w.bad = append(w.bad, fmt.Sprintf("%s %s = %d %s", method, url, r.Status, r.Body))
		w.mu.Unlock()
	}
	return r
}

// forge rewrites a context token: same key binding, counters replaced by
// f's. Tokens are opaque to clients; a hostile one does not care.
func forge(t *testing.T, token string, f func(dvv.VV) dvv.VV) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) < 5 {
		t.Fatalf("token %q: %v", token, err)
	}
	ctx, tag := raw[:len(raw)-4], raw[len(raw)-4:]
	vv, err := dvv.DecodeContext(ctx)
	if err != nil {
		t.Fatalf("token %q: %v", token, err)
	}
	return base64.RawURLEncoding.EncodeToString(append(dvv.EncodeContext(f(vv)), tag...))
}

// rawVarintToken is a context with one dot whose counter is c, encoded by
// hand (EncodeContext would encode it as well; nothing may accept it).
func rawVarintToken(t *testing.T, token string, c uint64) string {
	t.Helper()
	raw, _ := base64.RawURLEncoding.DecodeString(token)
	tag := raw[len(raw)-4:]
	b := []byte{1, 1, 2, 'n', '1'}
	for c >= 0x80 {
		b = append(b, byte(c)|0x80)
		c >>= 7
	}
	b = append(b, byte(c))
	return base64.RawURLEncoding.EncodeToString(append(b, tag...))
}

// TestHostileInputChangesNothing: on a running cluster with acknowledged
// keys, send what a hostile or broken peer or client would: RPC frames
// with out-of-range fields, random bytes on the RPC and gossip ports (TCP
// and UDP), half-sent requests, contexts with overflowing counters and
// contexts of other keys. No node may die, no request may get a 5xx, every
// acknowledged key must read back, and a stalled body must be cut.
func TestHostileInputChangesNothing(t *testing.T) {
	c := startCluster(t, devcluster.Config{Nodes: 3})
	w := &watch{}
	rng := rand.New(rand.NewPCG(8, 8))

	// Acknowledged first.
	acked := map[string]string{}
	tokens := map[string]string{}
	for i := range 24 {
		key, val := fmt.Sprintf("acked-%02d", i), fmt.Sprintf("value-%d", i)
		n := c.Nodes[i%len(c.Nodes)]
		r := w.call(t, "PUT", "http://"+n.HTTPAddr+"/kv/"+key, []byte(val), nil)
		if r.Status != http.StatusNoContent {
			t.Fatalf("PUT %s = %d %s", key, r.Status, r.Body)
		}
		acked[key], tokens[key] = val, r.context()
	}

	// Stalled half-requests, one per node, running while the rest goes on:
	// a body declared and never sent, and headers never finished.
	type cut struct {
		what string
		took time.Duration
		err  error
	}
	cuts := make(chan cut, 2*len(c.Nodes))
	for _, n := range c.Nodes {
		for _, half := range []string{
			"PUT /kv/stalled HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly this much",
			"GET /kv/acked-00 HTTP/1.1\r\nHost: x\r\nX-Slow: ",
		} {
			go func() {
				what := n.ID + " " + strings.Fields(half)[0]
				conn, err := net.Dial("tcp", n.HTTPAddr)
				if err != nil {
					cuts <- cut{what, 0, err}
					return
				}
				defer conn.Close()
				start := time.Now()
				_, _ = io.WriteString(conn, half)
				_ = conn.SetReadDeadline(time.Now().Add(3 * bodyTimeout))
				_, err = io.Copy(io.Discard, conn) // returns when the server closes
				cuts <- cut{what, time.Since(start), err}
			}()
		}
	}

	// RPC frames with out-of-range fields, through the generated client.
	bad := []*dynagopb.Envelope{
		{Type: uint32(node.MsgReap), Partition: 1_000_000, Keys: [][]byte{[]byte("acked-00")}, Versions: []uint64{1}},
		{Type: uint32(node.MsgReap), Partition: -1, Keys: [][]byte{[]byte("acked-00")}, Versions: []uint64{1}},
		{Type: uint32(node.MsgReapQuery), Partition: math.MaxInt64},
		{Type: uint32(node.MsgAETreeReq), Partition: 1 << 20, Levels: []uint32{math.MaxUint32}, Indexes: []uint32{}},
		{Type: 250},
		{Type: uint32(node.MsgForwardResp), Code: 99},
		{Type: uint32(node.MsgForward), Key: []byte("acked-00"), W: -1, TimeoutNs: -5},
		{Type: uint32(node.MsgForward), Key: []byte("acked-01"), W: 1, Context: []byte{1, 1, 2, 'n', '1', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{Type: uint32(node.MsgForwardResp), DotCounter: math.MaxUint64},
		{Type: uint32(node.MsgReplicaPut), Key: []byte{}, Object: []byte("junk")},
	}
	for _, n := range c.Nodes {
		conn, err := grpc.NewClient(n.RPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		client := dynagopb.NewNodeClient(conn)
		for i, e := range bad {
			e.From, e.To = []byte("n-hostile"), []byte(n.ID)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := client.Step(ctx, &dynagopb.Batch{Messages: []*dynagopb.Envelope{e}})
			cancel()
			if status.Code(err) != codes.InvalidArgument {
				t.Errorf("%s: frame %d: Step = %v, want InvalidArgument", n.ID, i, err)
			}
		}
		conn.Close()
	}

	// Random bytes on the RPC port and on the gossip port, TCP and UDP.
	junk := func(size int) []byte {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	for _, n := range c.Nodes {
		for _, addr := range []string{n.RPCAddr, n.GossipAddr} {
			for _, size := range []int{1, 64, 4096, 65536} {
				conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					t.Fatalf("%s: %v", addr, err)
				}
				_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
				_, _ = conn.Write(junk(size))
				conn.Close()
			}
		}
		// An HTTP/2 preface, then garbage frames.
		if conn, err := net.DialTimeout("tcp", n.RPCAddr, 5*time.Second); err == nil {
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = conn.Write(append([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), junk(2048)...))
			conn.Close()
		}
		uconn, err := net.Dial("udp", n.GossipAddr)
		if err != nil {
			t.Fatal(err)
		}
		for range 50 {
			_, _ = uconn.Write(junk(1 + rng.IntN(1400)))
		}
		uconn.Close()
	}

	// Contexts with overflowing counters, on keys of their own: a forged
	// context may supersede what it names (the client claims to have seen
	// it), but it must never make a key unreadable or unwritable.
	for i, n := range c.Nodes {
		key := fmt.Sprintf("forged-%d", i)
		url := "http://" + n.HTTPAddr + "/kv/" + key
		r := w.call(t, "PUT", url, []byte("first"), nil)
		if r.Status != http.StatusNoContent {
			t.Fatalf("PUT %s = %d", key, r.Status)
		}
		tok := r.context()
		for _, c := range []uint64{1 << 63, math.MaxUint64} {
			if r := w.call(t, "PUT", url, []byte("x"), map[string]string{"X-Dynago-Context": rawVarintToken(t, tok, c)}); r.Status != http.StatusBadRequest {
				t.Errorf("PUT %s with counter %d = %d %s, want 400", key, c, r.Status, r.Body)
			}
		}
		maxed := forge(t, tok, func(vv dvv.VV) dvv.VV {
			for i := range vv {
				vv[i].Counter = dvv.MaxCounter
			}
			return vv
		})
		r = w.call(t, "PUT", url, []byte("second"), map[string]string{"X-Dynago-Context": maxed})
		if r.Status != http.StatusNoContent {
			t.Errorf("PUT %s with counters at the maximum = %d %s", key, r.Status, r.Body)
		}
		// Through every node: it reads back (R+W > N: the last write),
		// and a write with the context read supersedes it.
		want := "second"
		for _, m := range c.Nodes {
			r := w.call(t, "GET", "http://"+m.HTTPAddr+"/kv/"+key, nil, nil)
			if r.Status != http.StatusOK || string(r.Body) != want {
				t.Errorf("GET %s via %s after the forged context = %d %q, want 200 %q", key, m.ID, r.Status, r.Body, want)
				continue
			}
			want = "after-" + m.ID
			if r := w.call(t, "PUT", "http://"+m.HTTPAddr+"/kv/"+key, []byte(want), map[string]string{"X-Dynago-Context": r.context()}); r.Status != http.StatusNoContent {
				t.Errorf("contextual PUT %s via %s = %d %s", key, m.ID, r.Status, r.Body)
			}
		}
	}

	// Another key's context on an acknowledged key: refused, nothing
	// superseded.
	for i := range 6 {
		a, b := fmt.Sprintf("acked-%02d", i), fmt.Sprintf("acked-%02d", i+6)
		for _, method := range []string{"PUT", "DELETE"} {
			r := w.call(t, method, "http://"+c.Nodes[i%len(c.Nodes)].HTTPAddr+"/kv/"+a, []byte("replayed"), map[string]string{"X-Dynago-Context": tokens[b]})
			if r.Status != http.StatusBadRequest || r.errorCode(t) != "bad_context" {
				t.Errorf("%s %s with the context of %s = %d %s, want 400 bad_context", method, a, b, r.Status, r.Body)
			}
		}
	}

	// The stalled connections were closed by the servers within their
	// timeouts (a little slack for a loaded machine).
	for range 2 * len(c.Nodes) {
		select {
		case k := <-cuts:
			if k.err != nil {
				t.Errorf("%s: the server did not close the stalled connection: %v (after %v)", k.what, k.err, k.took)
			} else if k.took > bodyTimeout+5*time.Second {
				t.Errorf("%s: stalled connection closed after %v, want within %v", k.what, k.took, bodyTimeout)
			}
		case <-time.After(4 * bodyTimeout):
			t.Fatal("a stalled connection is still open")
		}
	}

	// No node died; every acknowledged key reads back through every node.
	for _, n := range c.Nodes {
		if !n.Running() {
			t.Fatalf("%s died", n.ID)
		}
		if r := w.call(t, "GET", "http://"+n.HTTPAddr+"/healthz", nil, nil); r.Status != http.StatusOK {
			t.Fatalf("%s /healthz = %d", n.ID, r.Status)
		}
		for key, val := range acked {
			r := w.call(t, "GET", "http://"+n.HTTPAddr+"/kv/"+key, nil, nil)
			if r.Status != http.StatusOK || string(r.Body) != val {
				t.Errorf("GET %s via %s = %d %q, want %q", key, n.ID, r.Status, r.Body, val)
			}
		}
	}
	// The nodes counted what they refused.
	m := w.call(t, "GET", "http://"+c.Nodes[0].HTTPAddr+"/metrics", nil, nil)
	if !strings.Contains(string(m.Body), "dynago_transport_malformed_total") {
		t.Errorf("no dynago_transport_malformed_total metric")
	} else if line := metricLine(string(m.Body), "dynago_transport_malformed_total"); strings.HasSuffix(line, " 0") {
		t.Errorf("malformed frames not counted: %q", line)
	}
	if len(w.bad) > 0 {
		t.Errorf("5xx answers:\n%s", strings.Join(w.bad, "\n"))
	}
}

func metricLine(body, name string) string {
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), name+" ") {
			return sc.Text()
		}
	}
	return ""
}
