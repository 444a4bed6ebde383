package httpapi_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/dynago/dynago/dvv"
	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/httpapi/httpapitest"
	"github.com/dynago/dynago/node"
)

// token builds a key-bound context token by hand, as a hostile client
// would: any counters, bound to key.
func token(key string, vv dvv.VV) string {
	var tag [4]byte
	binary.LittleEndian.PutUint32(tag[:], uint32(xxhash.Sum64String(key)))
	return base64.RawURLEncoding.EncodeToString(append(dvv.EncodeContext(vv), tag[:]...))
}

func mustGet(t *testing.T, srv interface{ Client() *http.Client }, url, want string) {
	t.Helper()
	resp, err := srv.Client().Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != want {
		t.Fatalf("GET %s = %d %q, want 200 %q", url, resp.StatusCode, body, want)
	}
}

// TestContextOfAnotherKeyIsRefused: key B's context replayed on key A used
// to supersede A's acknowledged value silently (204). Now it is 400
// bad_context, and A keeps its value.
func TestContextOfAnotherKeyIsRefused(t *testing.T) {
	srv, _ := server(t, httpapi.Options{})
	call(t, srv, "PUT", "/kv/a", []byte("value of a"))
	b := call(t, srv, "PUT", "/kv/b", []byte("value of b"))
	bctx := b.header.Get(httpapi.ContextHeader)
	for _, method := range []string{"PUT", "DELETE"} {
		a := call(t, srv, method, "/kv/a", []byte("stale"), httpapi.ContextHeader, bctx)
		wantError(t, a, http.StatusBadRequest, httpapi.CodeBadContext)
	}
	mustGet(t, srv, srv.URL+"/kv/a", "value of a")
	// Two contexts in one request: refused, not one picked at random.
	actx := call(t, srv, "GET", "/kv/a", nil).header.Get(httpapi.ContextHeader)
	req, _ := http.NewRequest("PUT", srv.URL+"/kv/a", strings.NewReader("two"))
	req.Header.Add(httpapi.ContextHeader, actx)
	req.Header.Add(httpapi.ContextHeader, actx)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("PUT with two contexts = %d, want 400", resp.StatusCode)
	}
	// The context of b still works for b.
	if got := call(t, srv, "PUT", "/kv/b", []byte("b2"), httpapi.ContextHeader, bctx); got.status != http.StatusNoContent {
		t.Fatalf("PUT b with its own context = %d %s", got.status, got.body)
	}
}

// TestOverflowingCountersChangeNothing: a counter beyond what decoders
// accept is refused; the largest accepted one is taken without making the
// key unreadable or unwritable.
func TestOverflowingCountersChangeNothing(t *testing.T) {
	srv, _ := server(t, httpapi.Options{})
	call(t, srv, "PUT", "/kv/k", []byte("v1"))
	// 2^63 and 2^64-1 as raw varints (EncodeContext would encode them too,
	// but nothing may accept them).
	for _, c := range []uint64{1 << 63, ^uint64(0)} {
		a := call(t, srv, "PUT", "/kv/k", []byte("x"), httpapi.ContextHeader, token("k", dvv.VV{{Actor: "n1", Counter: c}}))
		wantError(t, a, http.StatusBadRequest, httpapi.CodeBadContext)
	}
	mustGet(t, srv, srv.URL+"/kv/k", "v1")
	a := call(t, srv, "PUT", "/kv/k", []byte("v2"), httpapi.ContextHeader, token("k", dvv.VV{{Actor: "n1", Counter: dvv.MaxCounter}}))
	if a.status != http.StatusNoContent {
		t.Fatalf("PUT with counter MaxCounter = %d %s", a.status, a.body)
	}
	mustGet(t, srv, srv.URL+"/kv/k", "v2")
	// Its context is accepted back, and so is a blind write.
	a = call(t, srv, "PUT", "/kv/k", []byte("v3"), httpapi.ContextHeader, a.header.Get(httpapi.ContextHeader))
	if a.status != http.StatusNoContent {
		t.Fatalf("contextual PUT after it = %d %s", a.status, a.body)
	}
	mustGet(t, srv, srv.URL+"/kv/k", "v3")
}

func TestOversizedContextIsRefused(t *testing.T) {
	srv, _ := server(t, httpapi.Options{})
	var vv dvv.VV
	for i := range 3000 {
		vv = append(vv, dvv.Dot{Actor: fmt.Sprintf("actor-%05d", i), Counter: 1})
	}
	tok := token("k", vv)
	if len(tok) <= httpapi.MaxContextHeaderSize {
		t.Fatalf("test token of %d characters is not oversized", len(tok))
	}
	wantError(t, call(t, srv, "PUT", "/kv/k", []byte("v"), httpapi.ContextHeader, tok), http.StatusBadRequest, httpapi.CodeBadContext)
}

// TestEmptyValueIsAnEmptyString: the JSON form of an empty value is "",
// never null.
func TestEmptyValueIsAnEmptyString(t *testing.T) {
	srv, _ := server(t, httpapi.Options{})
	call(t, srv, "PUT", "/kv/k", []byte{})
	a := call(t, srv, "GET", "/kv/k", nil, "Accept", "application/json")
	if a.status != http.StatusOK || !bytes.Contains(a.body, []byte(`"siblings":[""]`)) {
		t.Fatalf("GET = %d %s, want siblings [\"\"]", a.status, a.body)
	}
	call(t, srv, "PUT", "/kv/k", []byte("x")) // a blind write: two siblings
	a = call(t, srv, "GET", "/kv/k", nil)
	var body struct{ Siblings []*string }
	if err := json.Unmarshal(a.body, &body); err != nil || a.status != http.StatusMultipleChoices || len(body.Siblings) != 2 {
		t.Fatalf("GET = %d %s, %v", a.status, a.body, err)
	}
	for _, s := range body.Siblings {
		if s == nil {
			t.Fatalf("a sibling is null: %s", a.body)
		}
	}
}

// TestSiblingLimitsReachTheClient: the coordinator's soft warning becomes
// the X-Dynago-Siblings header and a metric; its refusal becomes 409
// too_many_siblings.
func TestSiblingLimitsReachTheClient(t *testing.T) {
	srv, b := server(t, httpapi.Options{})
	b.Fail(node.Reply{Code: node.CodeOK, Context: dvv.EncodeContext(dvv.VV{{Actor: "n1", Counter: 30}}),
		Trace: &node.Trace{Events: []node.TraceEvent{{What: node.SiblingsEvent, Note: "30"}}}})
	a := call(t, srv, "PUT", "/kv/k", []byte("v"))
	if a.status != http.StatusNoContent || a.header.Get(httpapi.SiblingsHeader) != "30" {
		t.Fatalf("PUT = %d, %s %q; want 204 with 30", a.status, httpapi.SiblingsHeader, a.header.Get(httpapi.SiblingsHeader))
	}
	if m := call(t, srv, "GET", "/metrics", nil); !bytes.Contains(m.body, []byte("dynago_sibling_warnings_total 1")) {
		t.Errorf("no sibling warning counted:\n%s", m.body)
	}
	a = call(t, srv, "PUT", "/kv/k", []byte("v"))
	if a.header.Get(httpapi.SiblingsHeader) != "" {
		t.Errorf("a write below the limit carries %s", httpapi.SiblingsHeader)
	}
	b.Fail(node.Reply{Code: node.CodeTooManySiblings, Err: "would leave 101 siblings"})
	wantError(t, call(t, srv, "PUT", "/kv/k", []byte("v")), http.StatusConflict, httpapi.CodeTooManySiblings)
}

// TestStalledBodyIsCut: a PUT that declares a body and stops sending it
// gets 408 and its connection closed once BodyTimeout passed, while an
// event stream (no body) outlives BodyTimeout many times over.
func TestStalledBodyIsCut(t *testing.T) {
	const timeout = 300 * time.Millisecond
	o := newObserved(0)
	srv := serve(t, o, httpapi.Options{BodyTimeout: timeout, EventHeartbeat: 50 * time.Millisecond})
	_, events, _ := stream(t, srv.URL)

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "PUT /kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part")
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	body, _ := io.ReadAll(resp.Body) // ends when the server closes
	took := time.Since(start)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), httpapi.CodeBodyTimeout) {
		t.Fatalf("stalled body: %d %s, want 408 %s", resp.StatusCode, body, httpapi.CodeBodyTimeout)
	}
	if took < timeout || took > timeout+5*time.Second {
		t.Fatalf("stalled body answered after %v, want about %v", took, timeout)
	}
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("the connection of a stalled body was kept open")
	}
	// The stream, older than the timeout by now, still delivers.
	time.Sleep(2 * timeout)
	if f := frame(t, events); len(f) != 1 || f[0] != ": heartbeat" {
		t.Fatalf("event stream after %v: %q, want a heartbeat", 3*timeout, f)
	}
	// A put whose body arrives on time, through the same server, works.
	if a := call(t, srv, "PUT", "/kv/k", []byte("v")); a.status != http.StatusNoContent {
		t.Fatalf("normal PUT = %d %s", a.status, a.body)
	}
}

// TestLargestContextFitsTheHeaderLimit: the core's cap on a key's context
// and the API's cap on a context token agree, so that a node never hands
// out a context it would refuse back.
func TestLargestContextFitsTheHeaderLimit(t *testing.T) {
	for name, c := range map[string]node.Config{"default": node.DefaultConfig(), "lab": node.LabConfig()} {
		if n := base64.RawURLEncoding.EncodedLen(c.MaxContextSize + 4); n > httpapi.MaxContextHeaderSize {
			t.Fatalf("%s preset: a context of MaxContextSize %d bytes is a %d-character token, above MaxContextHeaderSize %d", name, c.MaxContextSize, n, httpapi.MaxContextHeaderSize)
		}
	}
}

// fuzzRoutes are the routes FuzzHandlers aims at; %s is the key. /events is
// left out: it streams until the client leaves.
var fuzzRoutes = []string{"/kv/%s", "/kv/%s/placement", "/admin/local/%s", "/admin/history/%s",
	"/cluster", "/ring", "/healthz", "/admin/stats", "/admin/plan", "/admin/faults", "/admin/defaults", "/%s"}

var fuzzMethods = []string{"GET", "PUT", "POST", "DELETE", "HEAD", "PATCH"}

// FuzzHandlers sends arbitrary requests (method, route, key, query,
// context header, body) to the HTTP API of an in-memory node that
// acknowledged a key first: no request may get a 5xx, and the
// acknowledged key must read back unchanged after it.
func FuzzHandlers(f *testing.F) {
	f.Add(uint8(1), uint8(0), "k", "", "", uint8(0), []byte("v"))
	f.Add(uint8(1), uint8(0), "k", "w=1&timeout=5", "", uint8(1), []byte("v"))
	f.Add(uint8(3), uint8(0), "k", "", "AQEBYQE", uint8(2), []byte{})
	f.Add(uint8(1), uint8(0), "k", "", "\x01\x01\x02n1\xff\xff\xff\xff\xff\xff\xff\xff\x7f", uint8(2), []byte("x"))
	f.Add(uint8(0), uint8(0), "k", "r=9&trace=1", "", uint8(0), []byte(nil))
	f.Add(uint8(0), uint8(0), "k", "%zz", "", uint8(0), []byte(nil))
	f.Add(uint8(1), uint8(9), "", "", "", uint8(0), []byte(`{"cut":["n2"]}`))
	f.Add(uint8(1), uint8(10), "", "", "", uint8(0), []byte(`{"r":1}`))
	f.Fuzz(func(t *testing.T, method, route uint8, key, query, ctx string, ctxMode uint8, body []byte) {
		h := httpapi.New(httpapitest.New(), httpapi.Options{})
		do := func(method, target, ctx string, body []byte) *httptest.ResponseRecorder {
			req, err := http.NewRequest(method, "http://node"+target, bytes.NewReader(body))
			if err != nil {
				return nil
			}
			if ctx != "" {
				req.Header.Set(httpapi.ContextHeader, ctx)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec
		}
		put := do("PUT", "/kv/acked", "", []byte("acked value"))
		if put.Code != http.StatusNoContent {
			t.Fatalf("setup PUT = %d", put.Code)
		}
		if key == "acked" {
			key = "not-acked"
		}
		path := fuzzRoutes[int(route)%len(fuzzRoutes)]
		if strings.Contains(path, "%s") {
			path = fmt.Sprintf(path, url.PathEscape(key))
		}
		switch ctxMode % 3 {
		case 1: // the acknowledged key's context, replayed on another key
			ctx = put.Header().Get(httpapi.ContextHeader)
		case 2: // the fuzzer's bytes as a context, correctly bound to the key
			var tag [4]byte
			binary.LittleEndian.PutUint32(tag[:], uint32(xxhash.Sum64String(key)))
			ctx = base64.RawURLEncoding.EncodeToString(append([]byte(ctx), tag[:]...))
		}
		target := path
		if query != "" {
			target += "?" + query
		}
		if rec := do(fuzzMethods[int(method)%len(fuzzMethods)], target, ctx, body); rec != nil && rec.Code >= 500 {
			t.Fatalf("%s %s (context %q) = %d %s", fuzzMethods[int(method)%len(fuzzMethods)], target, ctx, rec.Code, rec.Body)
		}
		got := do("GET", "/kv/acked", "", nil)
		if got.Code != http.StatusOK || got.Body.String() != "acked value" {
			t.Fatalf("acknowledged key now reads %d %q", got.Code, got.Body)
		}
	})
}
