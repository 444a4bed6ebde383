// Package httpserver_test measures what the HTTP server library costs a
// node, for issue #11's "a cheaper HTTP path (valyala/fasthttp is one
// candidate; measure it)". It lives in the bench module so that fasthttp,
// which only this comparison uses, stays out of the main module's go.mod.
//
// Three servers answer the same kv GET and PUT over loopback TCP, each in
// front of a backend that returns canned replies (no cluster, no disk):
//
//   - httpapi: the node's real handler (httpapi.New) on net/http;
//   - nethttp: a minimal kv handler on net/http;
//   - fasthttp: the same minimal handler on fasthttp.
//
// nethttp against fasthttp is the library's own cost, since the handlers do
// the same work; httpapi against nethttp is what dynago's handler adds
// (routing, validation, metrics, sessions). The load is a fixed set of raw
// keep-alive TCP connections sending prebuilt requests, the same for all
// three, so differences in the process's CPU per request are the server's.
package httpserver_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/httpapi/httpapitest"
	"github.com/dynago/dynago/internal/testutil"
	"github.com/dynago/dynago/node"
)

const benchKey = "bench-key"

var benchValue = bytes.Repeat([]byte("v"), 100)

// canned answers every get and put with the reply the in-memory backend
// gave the first of its kind, so that the backend's bookkeeping stays out
// of the figures.
type canned struct {
	*httpapitest.Backend
	get, put node.Reply
}

func newCanned(tb testing.TB) *canned {
	be := httpapitest.New()
	c := &canned{Backend: be}
	c.put = be.Do(context.Background(), node.Request{Op: node.OpPut, Key: []byte(benchKey), Value: benchValue})
	c.get = be.Do(context.Background(), node.Request{Op: node.OpGet, Key: []byte(benchKey)})
	if c.put.Code != node.CodeOK || c.get.Code != node.CodeOK || len(c.get.Siblings) != 1 {
		tb.Fatalf("canned replies: put %v, get %v with %d siblings", c.put.Code, c.get.Code, len(c.get.Siblings))
	}
	return c
}

func (c *canned) Do(_ context.Context, req node.Request) node.Reply {
	if req.Op == node.OpGet {
		return c.get
	}
	return c.put
}

// The minimal handlers do on either library what a kv request needs at
// least: take the key from the path, read a put's body whole, call the
// backend, and write the value with its context header, or 204.

func netMinimal(be httpapi.Backend) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := strings.CutPrefix(r.URL.Path, "/kv/")
		if !ok || key == "" {
			http.Error(w, "no such route", http.StatusNotFound)
			return
		}
		switch r.Method {
		case http.MethodGet:
			rep := be.Do(r.Context(), node.Request{Op: node.OpGet, Key: []byte(key)})
			if rep.Code != node.CodeOK || len(rep.Siblings) != 1 {
				http.Error(w, "not one value", http.StatusInternalServerError)
				return
			}
			v := rep.Siblings[0].Value
			h := w.Header()
			h.Set(httpapi.ContextHeader, httpapi.EncodeContextHeader([]byte(key), rep.Context))
			h.Set("Content-Type", "application/octet-stream")
			h.Set("Content-Length", strconv.Itoa(len(v)))
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(v)
		case http.MethodPut:
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			rep := be.Do(r.Context(), node.Request{Op: node.OpPut, Key: []byte(key), Value: body})
			if rep.Code != node.CodeOK {
				http.Error(w, rep.Err, http.StatusInternalServerError)
				return
			}
			w.Header().Set(httpapi.ContextHeader, httpapi.EncodeContextHeader([]byte(key), rep.Context))
			w.WriteHeader(http.StatusNoContent)
		default:
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	})
}

func fastMinimal(be httpapi.Backend) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		path := ctx.Path()
		if !bytes.HasPrefix(path, []byte("/kv/")) || len(path) == len("/kv/") {
			ctx.Error("no such route", fasthttp.StatusNotFound)
			return
		}
		// fasthttp reuses the request's buffers after the handler returns:
		// the key and the body are copied, as a node that keeps them must.
		key := bytes.Clone(path[len("/kv/"):])
		switch {
		case ctx.IsGet():
			rep := be.Do(ctx, node.Request{Op: node.OpGet, Key: key})
			if rep.Code != node.CodeOK || len(rep.Siblings) != 1 {
				ctx.Error("not one value", fasthttp.StatusInternalServerError)
				return
			}
			ctx.Response.Header.Set(httpapi.ContextHeader, httpapi.EncodeContextHeader(key, rep.Context))
			ctx.SetContentType("application/octet-stream")
			ctx.SetStatusCode(fasthttp.StatusOK)
			ctx.SetBody(rep.Siblings[0].Value)
		case ctx.IsPut():
			rep := be.Do(ctx, node.Request{Op: node.OpPut, Key: key, Value: bytes.Clone(ctx.PostBody())})
			if rep.Code != node.CodeOK {
				ctx.Error(rep.Err, fasthttp.StatusInternalServerError)
				return
			}
			ctx.Response.Header.Set(httpapi.ContextHeader, httpapi.EncodeContextHeader(key, rep.Context))
			ctx.SetStatusCode(fasthttp.StatusNoContent)
		default:
			ctx.Error("method not allowed", fasthttp.StatusMethodNotAllowed)
		}
	}
}

// server is one of the three, listening on a loopback address.
type server struct {
	name string
	addr string
	stop func()
}

func startAll(tb testing.TB) []server {
	be := newCanned(tb)
	var out []server
	for _, s := range []struct {
		name  string
		serve func(net.Listener) (stop func())
	}{
		{"httpapi", func(ln net.Listener) func() {
			srv := &http.Server{Handler: httpapi.New(be, httpapi.Options{})}
			go srv.Serve(ln)
			return func() { srv.Close() }
		}},
		{"nethttp", func(ln net.Listener) func() {
			srv := &http.Server{Handler: netMinimal(be)}
			go srv.Serve(ln)
			return func() { srv.Close() }
		}},
		{"fasthttp", func(ln net.Listener) func() {
			srv := &fasthttp.Server{Handler: fastMinimal(be)}
			go srv.Serve(ln)
			return func() { srv.Shutdown() }
		}},
	} {
		ln, err := net.Listen("tcp", testutil.FreeAddr(tb))
		if err != nil {
			tb.Fatal(err)
		}
		stop := s.serve(ln)
		tb.Cleanup(stop)
		out = append(out, server{name: s.name, addr: ln.Addr().String(), stop: stop})
	}
	return out
}

// requests are the two requests of the load, as dynago bench's Go client
// sends them (less its Accept: application/json, which only the real
// handler would honour).
func requests(addr string) (get, put []byte) {
	get = []byte("GET /kv/" + benchKey + " HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: bench\r\n\r\n")
	put = []byte("PUT /kv/" + benchKey + " HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: bench\r\n" +
		"Content-Type: application/octet-stream\r\nContent-Length: " + strconv.Itoa(len(benchValue)) + "\r\n\r\n" + string(benchValue))
	return get, put
}

// readResponse reads one HTTP/1.1 response with a Content-Length (or none,
// for a 204) from br and returns its status, discarding the rest. It is the
// load's reader, cheaper than http.ReadResponse (no header map, no body
// reader) so that the load's share of the CPU figure stays small; the
// answers' correctness is TestServersAnswerAlike's, with net/http's parser.
func readResponse(br *bufio.Reader) (status int, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	f := bytes.Fields(line)
	if len(f) < 2 {
		return 0, fmt.Errorf("status line %q", line)
	}
	if status, err = strconv.Atoi(string(f[1])); err != nil {
		return 0, fmt.Errorf("status line %q", line)
	}
	length := 0
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		h := bytes.TrimRight(line, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, fmt.Errorf("header line %q", h)
		}
		if bytes.EqualFold(name, []byte("Content-Length")) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(value))); err != nil {
				return 0, fmt.Errorf("content-length %q", value)
			}
		}
	}
	_, err = br.Discard(length)
	return status, err
}

// TestServersAnswerAlike checks that the three servers of the benchmark
// give the load the same answers, so that comparing their costs compares
// like with like: the value and its context for a get, 204 for a put.
func TestServersAnswerAlike(t *testing.T) {
	want := newCanned(t)
	wantCtx := httpapi.EncodeContextHeader([]byte(benchKey), want.get.Context)
	for _, s := range startAll(t) {
		conn, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(conn)
		get, put := requests(s.addr)
		for i := range 3 { // several on one connection: keep-alive works
			if _, err := conn.Write(get); err != nil {
				t.Fatal(err)
			}
			r, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s: get %d: %v", s.name, i, err)
			}
			body, err := io.ReadAll(r.Body)
			if err != nil {
				t.Fatalf("%s: get %d: body: %v", s.name, i, err)
			}
			if ctx := r.Header.Get(httpapi.ContextHeader); r.StatusCode != http.StatusOK || !bytes.Equal(body, benchValue) || ctx != wantCtx {
				t.Fatalf("%s: get %d = %d, body %q, context %q; want 200, the value, context %q", s.name, i, r.StatusCode, body, ctx, wantCtx)
			}
			if _, err := conn.Write(put); err != nil {
				t.Fatal(err)
			}
			if r, err = http.ReadResponse(br, nil); err != nil {
				t.Fatalf("%s: put %d: %v", s.name, i, err)
			}
			r.Body.Close()
			if ctx := r.Header.Get(httpapi.ContextHeader); r.StatusCode != http.StatusNoContent || ctx == "" {
				t.Fatalf("%s: put %d = %d with context %q; want 204 with a context", s.name, i, r.StatusCode, ctx)
			}
		}
	}
}

// BenchmarkHTTPServer sends b.N requests over 32 keep-alive connections to
// each server and reports the process's CPU time per request (getrusage:
// the load and the server together, the load the same for all three).
//
//	cd bench && go test -run '^$' -bench HTTPServer -benchtime 100000x -count 3 ./httpserver/
func BenchmarkHTTPServer(b *testing.B) {
	const conns = 32
	for _, s := range startAll(b) {
		get, put := requests(s.addr)
		for _, op := range []struct {
			name string
			req  []byte
			want int
		}{{"get", get, http.StatusOK}, {"put", put, http.StatusNoContent}} {
			b.Run(s.name+"/"+op.name, func(b *testing.B) {
				cs := make([]net.Conn, conns)
				for i := range cs {
					c, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
					if err != nil {
						b.Fatal(err)
					}
					defer c.Close()
					cs[i] = c
				}
				var next atomic.Int64
				var wg sync.WaitGroup
				errs := make([]error, conns)
				cpu0 := cpuTime(b)
				b.ResetTimer()
				for i, c := range cs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						c.SetDeadline(time.Now().Add(5 * time.Minute))
						br := bufio.NewReaderSize(c, 4096)
						for next.Add(1) <= int64(b.N) {
							if _, err := c.Write(op.req); err != nil {
								errs[i] = err
								return
							}
							status, err := readResponse(br)
							if err == nil && status != op.want {
								err = fmt.Errorf("status %d, want %d", status, op.want)
							}
							if err != nil {
								errs[i] = err
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				if err := errors.Join(errs...); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
			})
		}
	}
}

// cpuTime is the process's user and system time so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
