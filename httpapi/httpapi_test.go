package httpapi_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dynago/dynago/dvv"
	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/httpapi/httpapitest"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

// server starts the API over a fake backend on a real 127.0.0.1 listener.
func server(t *testing.T, opts httpapi.Options) (*httptest.Server, *httpapitest.Backend) {
	t.Helper()
	b := httpapitest.New()
	return serve(t, b, opts), b
}

func serve(t *testing.T, b httpapi.Backend, opts httpapi.Options) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(httpapi.New(b, opts))
	t.Cleanup(srv.Close)
	return srv
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

// call sends one request; header values are set as given.
func call(t *testing.T, srv *httptest.Server, method, path string, body []byte, header ...string) answer {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

// fields decodes a JSON object body and returns its field names, sorted.
func fields(t *testing.T, a answer) []string {
	t.Helper()
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json (body %s)", ct, a.body)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", a.body, err)
	}
	var names []string
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

func wantError(t *testing.T, a answer, status int, code string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("status = %d, want %d (body %s)", a.status, status, a.body)
	}
	if got := fields(t, a); !slices.Equal(got, []string{"code", "error"}) && code != httpapi.CodeQuorumFailed {
		t.Fatalf("error body fields = %v, want [code error] (body %s)", got, a.body)
	}
	var e struct{ Error, Code string }
	if err := json.Unmarshal(a.body, &e); err != nil {
		t.Fatal(err)
	}
	if e.Code != code || e.Error == "" {
		t.Fatalf("error body = %s, want code %q and a message", a.body, code)
	}
}

func TestPutThenGetOneValue(t *testing.T) {
	srv, b := server(t, httpapi.Options{})
	put := call(t, srv, "PUT", "/kv/greeting", []byte("hello"))
	if put.status != http.StatusNoContent || len(put.body) != 0 {
		t.Fatalf("PUT = %d %q, want 204 and no body", put.status, put.body)
	}
	putCtx := put.header.Get("X-Dynago-Context")
	if _, err := httpapi.DecodeContextHeader([]byte("greeting"), putCtx); err != nil || putCtx == "" {
		t.Fatalf("PUT context header %q: %v", putCtx, err)
	}

	get := call(t, srv, "GET", "/kv/greeting", nil)
	if get.status != http.StatusOK || string(get.body) != "hello" {
		t.Fatalf("GET = %d %q, want 200 hello", get.status, get.body)
	}
	if ct := get.header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("GET Content-Type = %q, want application/octet-stream", ct)
	}
	if got := get.header.Get("X-Dynago-Context"); got != putCtx {
		t.Errorf("GET context = %q, want the PUT's %q", got, putCtx)
	}

	reqs := b.Requests()
	if len(reqs) != 2 || reqs[0].Op != node.OpPut || string(reqs[0].Key) != "greeting" ||
		string(reqs[0].Value) != "hello" || reqs[0].Context != nil || reqs[0].W != 0 ||
		reqs[0].Timeout != node.DefaultConfig().RequestTimeout || reqs[1].Op != node.OpGet || reqs[1].R != 0 {
		t.Fatalf("backend requests = %+v", reqs)
	}
}

func TestPostIsAnAliasOfPut(t *testing.T) {
	srv, _ := server(t, httpapi.Options{})
	if a := call(t, srv, "POST", "/kv/k", []byte("v")); a.status != http.StatusNoContent {
		t.Fatalf("POST = %d %s", a.status, a.body)
	}
	if a := call(t, srv, "GET", "/kv/k", nil); string(a.body) != "v" {
		t.Fatalf("GET after POST = %d %q", a.status, a.body)
	}
}

func TestEmptyValue(t *testing.T) {
	srv, _ := server(t, httpapi.Options{})
	if a := call(t, srv, "PUT", "/kv/k", nil); a.status != http.StatusNoContent {
		t.Fatalf("PUT empty = %d %s", a.status, a.body)
	}
	a := call(t, srv, "GET", "/kv/k", nil)
	if a.status != http.StatusOK || len(a.body) != 0 || a.header.Get("Content-Length") != "0" {
		t.Fatalf("GET empty value = %d %q (Content-Length %q)", a.status, a.body, a.header.Get("Content-Length"))
	}
}

type valuesJSON struct {
	Key      string   `json:"key"`
	Context  string   `json:"context"`
	Siblings [][]byte `json:"siblings"`
}

func decodeValues(t *testing.T, a answer) valuesJSON {
	t.Helper()
	if got := fields(t, a); !slices.Equal(got, []string{"context", "key", "siblings"}) {
		t.Fatalf("fields = %v, want [context key siblings]", got)
	}
	var v valuesJSON
	if err := json.Unmarshal(a.body, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSiblingsAnswerMultipleChoices(t *testing.T) {
	srv, _ := server(t, httpapi.Options{})
	call(t, srv, "PUT", "/kv/cart", []byte("milk"))
	call(t, srv, "PUT", "/kv/cart", []byte("eggs")) // blind: concurrent with milk

	a := call(t, srv, "GET", "/kv/cart", nil)
	if a.status != http.StatusMultipleChoices {
		t.Fatalf("GET = %d %s, want 300", a.status, a.body)
	}
	v := decodeValues(t, a)
	got := []string{string(v.Siblings[0]), string(v.Siblings[1])}
	slices.Sort(got)
	if v.Key != "cart" || len(v.Siblings) != 2 || !slices.Equal(got, []string{"eggs", "milk"}) {
		t.Fatalf("300 body = %s", a.body)
	}
	// Siblings are standard base64 in the raw JSON.
	if !bytes.Contains(a.body, []byte(`"`+base64.StdEncoding.EncodeToString([]byte("milk"))+`"`)) {
		t.Errorf("body %s does not hold milk in standard base64", a.body)
	}
	if v.Context == "" || v.Context != a.header.Get("X-Dynago-Context") {
		t.Errorf("JSON context %q, header %q: want equal and non-empty", v.Context, a.header.Get("X-Dynago-Context"))
	}

	// With Accept: application/json, the same body answers 200.
	j := call(t, srv, "GET", "/kv/cart", nil, "Accept", "text/plain, application/json")
	if j.status != http.StatusOK || !bytes.Equal(j.body, a.body) {
		t.Fatalf("GET Accept JSON = %d %s, want 200 and the 300 body", j.status, j.body)
	}

	// Writing with the context read supersedes both siblings.
	call(t, srv, "PUT", "/kv/cart", []byte("milk,eggs"), "X-Dynago-Context", v.Context)
	if a := call(t, srv, "GET", "/kv/cart", nil); a.status != http.StatusOK || string(a.body) != "milk,eggs" {
		t.Fatalf("GET after resolving = %d %q", a.status, a.body)
	}
}

func TestGetOneValueAsJSON(t *testing.T) {
	srv, _ := server(t, httpapi.Options{})
	call(t, srv, "PUT", "/kv/k", []byte("v"))
	a := call(t, srv, "GET", "/kv/k", nil, "Accept", "application/json")
	if a.status != http.StatusOK {
		t.Fatalf("GET = %d %s", a.status, a.body)
	}
	v := decodeValues(t, a)
	if v.Key != "k" || len(v.Siblings) != 1 || string(v.Siblings[0]) != "v" || v.Context != a.header.Get("X-Dynago-Context") {
		t.Fatalf("body = %s", a.body)
	}
}

func TestNotFound(t *testing.T) {
	srv, _ := server(t, httpapi.Options{})
	a := call(t, srv, "GET", "/kv/never", nil)
	wantError(t, a, http.StatusNotFound, httpapi.CodeNotFound)
	if h, ok := a.header["X-Dynago-Context"]; ok {
		t.Errorf("404 of a never-written key has a context header %q", h)
	}

	put := call(t, srv, "PUT", "/kv/gone", []byte("v"))
	del := call(t, srv, "DELETE", "/kv/gone", nil, "X-Dynago-Context", put.header.Get("X-Dynago-Context"))
	if del.status != http.StatusNoContent || len(del.body) != 0 {
		t.Fatalf("DELETE = %d %s", del.status, del.body)
	}
	a = call(t, srv, "GET", "/kv/gone", nil)
	wantError(t, a, http.StatusNotFound, httpapi.CodeNotFound)
	tomb := a.header.Get("X-Dynago-Context")
	if tomb == "" || tomb == put.header.Get("X-Dynago-Context") {
		t.Fatalf("404 of a deleted key: context header %q, want the tombstone's", tomb)
	}
	// Writing with the tombstone's context brings the key back, without
	// the deleted value as a sibling.
	call(t, srv, "PUT", "/kv/gone", []byte("back"), "X-Dynago-Context", tomb)
	if a := call(t, srv, "GET", "/kv/gone", nil); a.status != http.StatusOK || string(a.body) != "back" {
		t.Fatalf("GET after re-put = %d %q", a.status, a.body)
	}
}

func TestBlindDeleteLeavesValuesAsSiblings(t *testing.T) {
	srv, _ := server(t, httpapi.Options{})
	call(t, srv, "PUT", "/kv/k", []byte("v"))
	if a := call(t, srv, "DELETE", "/kv/k", nil); a.status != http.StatusNoContent {
		t.Fatalf("DELETE = %d %s", a.status, a.body)
	}
	if a := call(t, srv, "GET", "/kv/k", nil); a.status != http.StatusOK || string(a.body) != "v" {
		t.Fatalf("GET after a blind delete = %d %q, want the concurrent value", a.status, a.body)
	}
}

func TestQuorumFailed(t *testing.T) {
	srv, b := server(t, httpapi.Options{})
	for _, tc := range []struct {
		method string
		acks   int
		want   string
	}{
		{"PUT", 1, `{"error":"only 1 of 2","code":"quorum_failed","acks":1,"required":2}` + "\n"},
		{"GET", 0, `{"error":"only 0 of 2","code":"quorum_failed","acks":0,"required":2}` + "\n"},
		{"DELETE", 1, `{"error":"only 1 of 2","code":"quorum_failed","acks":1,"required":2}` + "\n"},
	} {
		b.Fail(node.Reply{Code: node.CodeQuorumFailed, Acks: tc.acks, Required: 2, Err: fmt.Sprintf("only %d of 2", tc.acks)})
		a := call(t, srv, tc.method, "/kv/k", []byte("v"))
		if a.status != http.StatusServiceUnavailable || string(a.body) != tc.want {
			t.Errorf("%s quorum failure = %d %s, want 503 %s", tc.method, a.status, a.body, tc.want)
		}
		if got := fields(t, a); !slices.Equal(got, []string{"acks", "code", "error", "required"}) {
			t.Errorf("%s fields = %v", tc.method, got)
		}
	}
}

func TestBackendFailures(t *testing.T) {
	srv, b := server(t, httpapi.Options{})
	for _, tc := range []struct {
		code   node.Code
		status int
		want   string
	}{
		{node.CodeUnavailable, http.StatusServiceUnavailable, httpapi.CodeUnavailable},
		{node.CodeInternal, http.StatusInternalServerError, httpapi.CodeInternal},
		{node.CodeBadRequest, http.StatusBadRequest, httpapi.CodeBadRequest},
		{node.CodeBadQuorum, http.StatusBadRequest, httpapi.CodeBadParameter},
		{node.CodeOverloaded, http.StatusServiceUnavailable, httpapi.CodeOverloaded},
	} {
		for _, method := range []string{"PUT", "GET", "DELETE"} {
			b.Fail(node.Reply{Code: tc.code, Err: "boom"})
			a := call(t, srv, method, "/kv/k", []byte("v"))
			wantError(t, a, tc.status, tc.want)
			// Only a shed request says when to come back: nothing was done.
			if ra := a.header.Get("Retry-After"); (tc.code == node.CodeOverloaded) != (ra == "1") {
				t.Errorf("%s %s: Retry-After %q", method, tc.want, ra)
			}
		}
	}
}

func TestBadRequestsNeverReachTheBackend(t *testing.T) {
	srv, b := server(t, httpapi.Options{MaxValueSize: 16})
	long := strings.Repeat("k", node.DefaultConfig().MaxKeySize+1)
	garbage := base64.RawURLEncoding.EncodeToString([]byte("not a context"))
	type req struct {
		method, path string
		header       []string
		body         []byte
	}
	for _, tc := range []struct {
		name   string
		req    req
		status int
		code   string
	}{
		{"get key too long", req{"GET", "/kv/" + long, nil, nil}, 400, httpapi.CodeBadKey},
		{"put key too long", req{"PUT", "/kv/" + long, nil, []byte("v")}, 400, httpapi.CodeBadKey},
		{"delete key too long", req{"DELETE", "/kv/" + long, nil, nil}, 400, httpapi.CodeBadKey},
		{"placement key too long", req{"GET", "/kv/" + long + "/placement", nil, nil}, 400, httpapi.CodeBadKey},
		{"local key too long", req{"GET", "/admin/local/" + long, nil, nil}, 400, httpapi.CodeBadKey},
		{"get empty key", req{"GET", "/kv/", nil, nil}, 400, httpapi.CodeBadKey},
		{"put empty key", req{"PUT", "/kv/", nil, []byte("v")}, 400, httpapi.CodeBadKey},
		{"delete empty key", req{"DELETE", "/kv/", nil, nil}, 400, httpapi.CodeBadKey},
		{"local empty key", req{"GET", "/admin/local/", nil, nil}, 400, httpapi.CodeBadKey},
		{"key of two segments", req{"PUT", "/kv/a/b", nil, []byte("v")}, 400, httpapi.CodeBadKey},
		{"trailing slash", req{"GET", "/kv/a/", nil, nil}, 400, httpapi.CodeBadKey},
		{"placement trailing slash", req{"GET", "/kv/a/placement/", nil, nil}, 400, httpapi.CodeBadKey},
		{"below placement", req{"GET", "/kv/a/placement/x", nil, nil}, 400, httpapi.CodeBadKey},
		{"local key of two segments", req{"GET", "/admin/local/a/b", nil, nil}, 400, httpapi.CodeBadKey},
		{"value over limit", req{"PUT", "/kv/k", nil, bytes.Repeat([]byte("x"), 17)}, 413, httpapi.CodeTooLarge},
		{"w zero", req{"PUT", "/kv/k?w=0", nil, []byte("v")}, 400, httpapi.CodeBadParameter},
		{"w not a number", req{"PUT", "/kv/k?w=abc", nil, []byte("v")}, 400, httpapi.CodeBadParameter},
		{"w empty", req{"PUT", "/kv/k?w=", nil, []byte("v")}, 400, httpapi.CodeBadParameter},
		{"r zero", req{"GET", "/kv/k?r=0", nil, nil}, 400, httpapi.CodeBadParameter},
		{"r not a number", req{"GET", "/kv/k?r=abc", nil, nil}, 400, httpapi.CodeBadParameter},
		{"r negative", req{"GET", "/kv/k?r=-1", nil, nil}, 400, httpapi.CodeBadParameter},
		{"timeout zero", req{"GET", "/kv/k?timeout=0", nil, nil}, 400, httpapi.CodeBadParameter},
		{"timeout negative", req{"PUT", "/kv/k?timeout=-5", nil, []byte("v")}, 400, httpapi.CodeBadParameter},
		{"timeout not a number", req{"DELETE", "/kv/k?timeout=abc", nil, nil}, 400, httpapi.CodeBadParameter},
		{"timeout fractional", req{"GET", "/kv/k?timeout=1.5", nil, nil}, 400, httpapi.CodeBadParameter},
		{"trace not a bool", req{"GET", "/kv/k?trace=yes", nil, nil}, 400, httpapi.CodeBadParameter},
		{"malformed query", req{"PUT", "/kv/k?w=%zz", nil, []byte("v")}, 400, httpapi.CodeBadParameter},
		{"context not base64", req{"PUT", "/kv/k", []string{"X-Dynago-Context", "!!not base64!!"}, []byte("v")}, 400, httpapi.CodeBadContext},
		{"context base64 of garbage", req{"PUT", "/kv/k", []string{"X-Dynago-Context", garbage}, []byte("v")}, 400, httpapi.CodeBadContext},
		{"delete context garbage", req{"DELETE", "/kv/k", []string{"X-Dynago-Context", garbage}, nil}, 400, httpapi.CodeBadContext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := call(t, srv, tc.req.method, tc.req.path, tc.req.body, tc.req.header...)
			wantError(t, a, tc.status, tc.code)
		})
	}
	if reqs := b.Requests(); len(reqs) != 0 {
		t.Fatalf("rejected requests reached the backend: %+v", reqs)
	}
	if a := call(t, srv, "GET", "/kv/k", nil); a.status != http.StatusNotFound {
		t.Fatalf("GET after rejected writes = %d %s, want 404: nothing was stored", a.status, a.body)
	}
}

// TestQuorumAboveNIsTheNodes: the HTTP layer checks only that r and w are
// positive integers; whether they are within 1..N is the node's to say
// (node.CodeBadQuorum), and the answer is the same 400 bad_parameter the
// edge gives for w=0, with nothing stored.
func TestQuorumAboveNIsTheNodes(t *testing.T) {
	srv, b := server(t, httpapi.Options{})
	type req struct {
		method, path string
		header       []string
		body         []byte
	}
	for _, tc := range []req{
		{"PUT", "/kv/k?w=4", nil, []byte("v")},
		{"DELETE", "/kv/k?w=4", nil, nil},
		{"GET", "/kv/k?r=4", nil, nil},
		{"PUT", "/kv/k?w=99999999999", nil, []byte("v")},
	} {
		wantError(t, call(t, srv, tc.method, tc.path, tc.body, tc.header...), http.StatusBadRequest, httpapi.CodeBadParameter)
	}
	if reqs := b.Requests(); len(reqs) != 4 || reqs[0].W != 4 || reqs[2].R != 4 {
		t.Fatalf("the backend saw %+v; want the four requests with their quorums", reqs)
	}
	if a := call(t, srv, "GET", "/kv/k", nil); a.status != http.StatusNotFound {
		t.Fatalf("GET after refused writes = %d %s, want 404", a.status, a.body)
	}
}

func TestLimitsAreInclusive(t *testing.T) {
	srv, b := server(t, httpapi.Options{MaxValueSize: 16, MaxKeySize: 8})
	if a := call(t, srv, "PUT", "/kv/"+strings.Repeat("k", 8), bytes.Repeat([]byte("x"), 16)); a.status != http.StatusNoContent {
		t.Fatalf("PUT at both limits = %d %s", a.status, a.body)
	}
	wantError(t, call(t, srv, "PUT", "/kv/"+strings.Repeat("k", 9), []byte("v")), 400, httpapi.CodeBadKey)
	if n := len(b.Requests()); n != 1 {
		t.Fatalf("backend saw %d requests, want 1", n)
	}
}

// endlessBody is a request body without Content-Length that never ends.
type endlessBody struct{ read int }

func (e *endlessBody) Read(p []byte) (int, error) {
	clear(p)
	e.read += len(p)
	return len(p), nil
}

func (e *endlessBody) Close() error { return nil }

func TestOversizedBodyIsNotBuffered(t *testing.T) {
	b := httpapitest.New()
	h := httpapi.New(b, httpapi.Options{MaxValueSize: 1 << 10})
	body := &endlessBody{}
	req := httptest.NewRequest("PUT", "/kv/k", nil)
	req.Body, req.ContentLength = body, -1
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status = %d %s, want 413", rec.Code, rec.Body)
	}
	// One byte past the limit tells an oversized body from one at the limit.
	if body.read > 1<<10+1 {
		t.Fatalf("handler read %d bytes of an endless body with a 1 KiB limit", body.read)
	}
	if len(b.Requests()) != 0 {
		t.Fatal("oversized put reached the backend")
	}

	// A declared Content-Length over the limit is refused unread.
	srv := serve(t, b, httpapi.Options{MaxValueSize: 16})
	req, _ = http.NewRequest("PUT", srv.URL+"/kv/k", &endlessBody{})
	req.ContentLength = 1 << 30
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("declared 1 GiB body: status %d, want 413", resp.StatusCode)
	}
}

func TestParametersReachTheBackend(t *testing.T) {
	srv, b := server(t, httpapi.Options{DefaultTimeout: 2 * time.Second, MaxTimeout: 10 * time.Second})
	call(t, srv, "PUT", "/kv/k?w=1&timeout=250", []byte("v"))
	call(t, srv, "GET", "/kv/k?r=3&timeout=99999999999999999", nil)
	call(t, srv, "DELETE", "/kv/k?w=3", nil)
	call(t, srv, "GET", "/kv/k", nil)
	reqs := b.Requests()
	want := []struct {
		op      node.Op
		r, w    int
		timeout time.Duration
	}{
		{node.OpPut, 0, 1, 250 * time.Millisecond},
		{node.OpGet, 3, 0, 10 * time.Second}, // capped at MaxTimeout
		{node.OpDelete, 0, 3, 2 * time.Second},
		{node.OpGet, 0, 0, 2 * time.Second},
	}
	if len(reqs) != len(want) {
		t.Fatalf("backend saw %d requests, want %d", len(reqs), len(want))
	}
	for i, w := range want {
		got := reqs[i]
		if got.Op != w.op || got.R != w.r || got.W != w.w || got.Timeout != w.timeout {
			t.Errorf("request %d = op %v r %d w %d timeout %v, want %+v", i, got.Op, got.R, got.W, got.Timeout, w)
		}
	}
}

func TestKeysArePercentDecodedPathSegments(t *testing.T) {
	srv, b := server(t, httpapi.Options{})
	for _, tc := range []struct{ path, key string }{
		{"/kv/a%2Fb", "a/b"},
		{"/kv/%2F", "/"},
		{"/kv/%2f%2F", "//"},
		{"/kv/%2E%2E", ".."},
		{"/kv/%2E", "."},
		{"/kv/with%20space", "with space"},
		{"/kv/%00%FF", "\x00\xff"},
		{"/kv/caf%C3%A9", "café"},
	} {
		if a := call(t, srv, "PUT", tc.path, []byte(tc.key)); a.status != http.StatusNoContent {
			t.Fatalf("PUT %s = %d %s", tc.path, a.status, a.body)
		}
		reqs := b.Requests()
		if got := string(reqs[len(reqs)-1].Key); got != tc.key {
			t.Errorf("PUT %s stored key %q, want %q", tc.path, got, tc.key)
		}
		if a := call(t, srv, "GET", tc.path, nil); string(a.body) != tc.key {
			t.Errorf("GET %s = %d %q", tc.path, a.status, a.body)
		}
		var keyed struct{ Key string }
		for _, path := range []string{tc.path + "/placement", "/admin/local/" + strings.TrimPrefix(tc.path, "/kv/")} {
			a := call(t, srv, "GET", path, nil)
			// JSON strings are UTF-8: other bytes come back as U+FFFD.
			if err := json.Unmarshal(a.body, &keyed); err != nil || a.status != http.StatusOK || keyed.Key != strings.ToValidUTF8(tc.key, "\uFFFD") {
				t.Errorf("GET %s = %d %s, want key %q", path, a.status, a.body, tc.key)
			}
		}
	}
}

// TestMalformedPercentEncoding pins net/http's behaviour for a request line
// that does not parse: a text/plain 400 from the server itself, after
// which the node still serves.
func TestMalformedPercentEncoding(t *testing.T) {
	srv, b := server(t, httpapi.Options{})
	conn, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET /kv/%zz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("malformed request line: status %d, want 400", resp.StatusCode)
	}
	if len(b.Requests()) != 0 {
		t.Fatal("malformed request reached the backend")
	}
	if a := call(t, srv, "GET", "/healthz", nil); a.status != http.StatusOK {
		t.Fatalf("healthz after a malformed request = %d", a.status)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	srv, _ := server(t, httpapi.Options{})
	for _, tc := range []struct{ method, path, allow string }{
		{"PATCH", "/kv/k", "GET, HEAD, PUT, POST, DELETE"},
		{"PUT", "/kv/k/placement", "GET, HEAD"},
		{"POST", "/cluster", "GET, HEAD"},
		{"DELETE", "/admin/local/k", "GET, HEAD"},
		{"PUT", "/healthz", "GET, HEAD"},
		{"POST", "/metrics", "GET, HEAD"},
	} {
		a := call(t, srv, tc.method, tc.path, nil)
		wantError(t, a, http.StatusMethodNotAllowed, httpapi.CodeMethodNotAllowed)
		if got := a.header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow = %q, want %q", tc.method, tc.path, got, tc.allow)
		}
	}
}

func TestUnknownRoute(t *testing.T) {
	srv, _ := server(t, httpapi.Options{})
	wantError(t, call(t, srv, "GET", "/nope", nil), http.StatusNotFound, httpapi.CodeNotFound)
}

func TestPlacement(t *testing.T) {
	srv, b := server(t, httpapi.Options{})
	a := call(t, srv, "GET", "/kv/a%2Fb/placement", nil)
	if a.status != http.StatusOK {
		t.Fatalf("placement = %d %s", a.status, a.body)
	}
	if got := fields(t, a); !slices.Equal(got, []string{"fallbacks", "key", "partition", "preference_list"}) {
		t.Fatalf("fields = %v", got)
	}
	var p struct {
		Key            string        `json:"key"`
		Partition      int           `json:"partition"`
		PreferenceList []ring.NodeID `json:"preference_list"`
		Fallbacks      []ring.NodeID `json:"fallbacks"`
	}
	if err := json.Unmarshal(a.body, &p); err != nil {
		t.Fatal(err)
	}
	rg := b.Ring()
	part := rg.PartitionOf([]byte("a/b"))
	if p.Key != "a/b" || p.Partition != part ||
		!slices.Equal(p.PreferenceList, rg.PreferenceList(part)) || !slices.Equal(p.Fallbacks, rg.Fallbacks(part)) ||
		len(p.PreferenceList) != httpapitest.N || len(p.Fallbacks) != 1 {
		t.Fatalf("placement = %+v", p)
	}
	if len(b.Requests()) != 0 {
		t.Fatal("placement went through Do; it must only read the ring")
	}
}

func TestCluster(t *testing.T) {
	srv, b := server(t, httpapi.Options{})
	b.SetStatus("n3", "suspect")
	a := call(t, srv, "GET", "/cluster", nil)
	if a.status != http.StatusOK {
		t.Fatalf("cluster = %d %s", a.status, a.body)
	}
	if got := fields(t, a); !slices.Equal(got, []string{"n", "node", "nodes", "partitions", "r", "ring_version", "w"}) {
		t.Fatalf("fields = %v", got)
	}
	var c struct {
		Node        string `json:"node"`
		N, R, W     int
		Partitions  int              `json:"partitions"`
		RingVersion uint64           `json:"ring_version"`
		Nodes       []map[string]any `json:"nodes"`
	}
	if err := json.Unmarshal(a.body, &c); err != nil {
		t.Fatal(err)
	}
	if c.Node != "n1" || c.N != 3 || c.R != 2 || c.W != 2 || c.Partitions != httpapitest.Partitions || c.RingVersion != 1 || len(c.Nodes) != 4 {
		t.Fatalf("cluster = %s", a.body)
	}
	total := 0.0
	for i, n := range c.Nodes {
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range n {
				if !yield(k) {
					return
				}
			}
		})
		// The build is there for members that gossip one (n4 does not:
		// an older node), and absent otherwise.
		want := []string{"commit", "http_addr", "id", "partitions", "status", "version"}
		if n["id"] == "n4" {
			want = []string{"http_addr", "id", "partitions", "status"}
		} else if n["version"] != "v1.2.0" || n["commit"] != "0123456789abcdef" {
			t.Errorf("node %v: version %v commit %v", n["id"], n["version"], n["commit"])
		}
		if !slices.Equal(keys, want) {
			t.Fatalf("node fields = %v, want %v", keys, want)
		}
		id := ring.NodeID(n["id"].(string))
		wantStatus := "alive"
		if id == "n3" {
			wantStatus = "suspect"
		}
		if id != ring.NodeID("n"+string(rune('1'+i))) || n["status"] != wantStatus ||
			n["partitions"].(float64) != float64(b.Ring().PartitionCounts()[id]) ||
			n["http_addr"] != "127.0.0.1:910"+string(rune('1'+i)) {
			t.Errorf("node %d = %v", i, n)
		}
		total += n["partitions"].(float64)
	}
	if total != httpapitest.Partitions {
		t.Errorf("partition counts sum to %v, want %d", total, httpapitest.Partitions)
	}
}

func TestAdminLocal(t *testing.T) {
	srv, b := server(t, httpapi.Options{})
	wantError(t, call(t, srv, "GET", "/admin/local/k", nil), http.StatusNotFound, httpapi.CodeNotFound)

	call(t, srv, "PUT", "/kv/k", []byte("v1"))
	call(t, srv, "DELETE", "/kv/k", nil) // blind: a tombstone beside v1
	b.AddHint("k", "n3")
	a := call(t, srv, "GET", "/admin/local/k", nil)
	if a.status != http.StatusOK {
		t.Fatalf("local = %d %s", a.status, a.body)
	}
	if got := fields(t, a); !slices.Equal(got, []string{"context", "hints", "key", "node", "siblings"}) {
		t.Fatalf("fields = %v", got)
	}
	var l struct {
		Key      string `json:"key"`
		Node     string `json:"node"`
		Context  string `json:"context"`
		Siblings []struct {
			Value   *string `json:"value"`
			Deleted bool    `json:"deleted"`
		} `json:"siblings"`
		Hints []map[string]string `json:"hints"`
	}
	if err := json.Unmarshal(a.body, &l); err != nil {
		t.Fatal(err)
	}
	if l.Key != "k" || l.Node != "n1" || len(l.Siblings) != 2 || len(l.Hints) != 1 || l.Hints[0]["for"] != "n3" {
		t.Fatalf("local = %s", a.body)
	}
	if _, err := httpapi.DecodeContextHeader([]byte("k"), l.Context); err != nil || l.Context == "" {
		t.Fatalf("local context %q: %v", l.Context, err)
	}
	var values []string
	deleted := 0
	for _, s := range l.Siblings {
		if s.Value == nil {
			t.Fatalf("sibling value is null: %s", a.body)
		}
		if s.Deleted {
			deleted++
			continue
		}
		v, err := base64.StdEncoding.DecodeString(*s.Value)
		if err != nil {
			t.Fatal(err)
		}
		values = append(values, string(v))
	}
	if deleted != 1 || !slices.Equal(values, []string{"v1"}) {
		t.Fatalf("siblings = %s, want v1 and one tombstone", a.body)
	}

	// Hints alone are something the node holds.
	b.AddHint("only-hint", "n2")
	if a := call(t, srv, "GET", "/admin/local/only-hint", nil); a.status != http.StatusOK {
		t.Fatalf("local of a hinted key = %d %s", a.status, a.body)
	}
}

// brokenLocal is a backend whose storage fails on Local.
type brokenLocal struct{ *httpapitest.Backend }

var errDisk = errors.New("disk on fire")

func (brokenLocal) Local([]byte) (httpapi.Local, bool, error) { return httpapi.Local{}, false, errDisk }

func TestAdminLocalStorageError(t *testing.T) {
	srv := serve(t, brokenLocal{httpapitest.New()}, httpapi.Options{})
	wantError(t, call(t, srv, "GET", "/admin/local/k", nil), http.StatusInternalServerError, httpapi.CodeInternal)
}

func TestHealthz(t *testing.T) {
	srv, _ := server(t, httpapi.Options{})
	a := call(t, srv, "GET", "/healthz", nil)
	if a.status != http.StatusOK || string(a.body) != `{"status":"ok","node":"n1"}`+"\n" {
		t.Fatalf("healthz = %d %s", a.status, a.body)
	}
}

func TestTrace(t *testing.T) {
	srv, _ := server(t, httpapi.Options{})
	type traced struct {
		Context string `json:"context"`
		Trace   struct {
			Coordinator    string   `json:"coordinator"`
			Partition      *int     `json:"partition"`
			PreferenceList []string `json:"preference_list"`
			Events         []struct {
				AtMS float64 `json:"at_ms"`
				Node string  `json:"node"`
				What string  `json:"what"`
			} `json:"events"`
		} `json:"trace"`
	}
	check := func(name string, a answer, status int, wantFields []string) traced {
		t.Helper()
		if a.status != status {
			t.Fatalf("%s = %d %s, want %d", name, a.status, a.body, status)
		}
		if got := fields(t, a); !slices.Equal(got, wantFields) {
			t.Fatalf("%s fields = %v, want %v", name, got, wantFields)
		}
		var tr traced
		if err := json.Unmarshal(a.body, &tr); err != nil {
			t.Fatal(err)
		}
		if tr.Trace.Coordinator != "n1" || tr.Trace.Partition == nil || len(tr.Trace.PreferenceList) != 3 ||
			len(tr.Trace.Events) != 6 || tr.Trace.Events[1].What != "ack" || tr.Trace.Events[1].AtMS != 1 {
			t.Fatalf("%s trace = %s", name, a.body)
		}
		return tr
	}
	put := check("traced PUT", call(t, srv, "PUT", "/kv/k?trace=1", []byte("v")), http.StatusOK, []string{"context", "trace"})
	if put.Context == "" {
		t.Fatal("traced PUT has no context")
	}
	check("traced GET", call(t, srv, "GET", "/kv/k?trace=1", nil), http.StatusOK, []string{"context", "key", "siblings", "trace"})
	check("traced DELETE", call(t, srv, "DELETE", "/kv/k?trace=true", nil, "X-Dynago-Context", put.Context),
		http.StatusOK, []string{"context", "trace"})
	check("traced 404", call(t, srv, "GET", "/kv/k?trace=1", nil), http.StatusNotFound, []string{"code", "error", "trace"})
	// trace=0 is the untraced answer.
	if a := call(t, srv, "PUT", "/kv/k?trace=0", []byte("v")); a.status != http.StatusNoContent {
		t.Fatalf("PUT trace=0 = %d %s", a.status, a.body)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv, _ := server(t, httpapi.Options{Registry: reg})
	call(t, srv, "PUT", "/kv/k", []byte("v"))
	call(t, srv, "PUT", "/kv/k?w=9", []byte("v"))
	call(t, srv, "GET", "/kv/k", nil)
	a := call(t, srv, "GET", "/metrics", nil)
	if a.status != http.StatusOK || !strings.HasPrefix(a.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics = %d %q", a.status, a.header.Get("Content-Type"))
	}
	for _, want := range []string{
		`dynago_http_requests_total{code="204",route="kv_put"} 1`,
		`dynago_http_requests_total{code="400",route="kv_put"} 1`,
		`dynago_http_requests_total{code="200",route="kv_get"} 1`,
		`dynago_http_request_duration_seconds_bucket{route="kv_put",le="0.0001"}`,
		`dynago_http_request_duration_seconds_bucket{route="kv_put",le="10"}`,
		`dynago_http_request_duration_seconds_count{route="kv_get"} 1`,
	} {
		if !bytes.Contains(a.body, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// A second handler on the same registry (a rebuilt node API) counts
	// into the same series instead of panicking.
	srv2 := serve(t, httpapitest.New(), httpapi.Options{Registry: reg})
	call(t, srv2, "PUT", "/kv/k", []byte("v"))
	a = call(t, srv2, "GET", "/metrics", nil)
	if !bytes.Contains(a.body, []byte(`dynago_http_requests_total{code="204",route="kv_put"} 2`)) {
		t.Errorf("second handler did not count into the shared series:\n%s", a.body)
	}
}

func TestContextHeaderRoundTrip(t *testing.T) {
	key := []byte("k")
	raw := dvv.EncodeContext(dvv.VV{{Actor: "n1", Counter: 3}, {Actor: "n2", Counter: 1}})
	token := httpapi.EncodeContextHeader(key, raw)
	if strings.ContainsAny(token, "=+/") {
		t.Fatalf("token %q is not unpadded base64url", token)
	}
	for _, s := range []string{token, token + strings.Repeat("=", (4-len(token)%4)%4)} {
		got, err := httpapi.DecodeContextHeader(key, s)
		if err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("DecodeContextHeader(%q) = %x, %v; want %x", s, got, err, raw)
		}
	}
	if got, err := httpapi.DecodeContextHeader(key, ""); got != nil || err != nil {
		t.Fatalf("empty header = %x, %v; want no context", got, err)
	}
	for _, bad := range []string{"!!", base64.RawURLEncoding.EncodeToString([]byte{9, 9, 9}),
		base64.RawURLEncoding.EncodeToString(raw), // no key binding
		strings.Repeat("A", httpapi.MaxContextHeaderSize+4)} {
		if _, err := httpapi.DecodeContextHeader(key, bad); !errors.Is(err, httpapi.ErrBadContext) {
			t.Errorf("DecodeContextHeader(%.40q) = %v, want ErrBadContext", bad, err)
		}
	}
	// Another key's context is refused, and says so.
	if _, err := httpapi.DecodeContextHeader([]byte("other"), token); !errors.Is(err, httpapi.ErrContextKey) {
		t.Errorf("another key's context: %v, want ErrContextKey", err)
	}
}

func FuzzDecodeContextHeader(f *testing.F) {
	f.Add("k", httpapi.EncodeContextHeader([]byte("k"), dvv.EncodeContext(dvv.VV{{Actor: "n1", Counter: 1}})))
	f.Add("k", httpapi.EncodeContextHeader([]byte("k"), dvv.EncodeContext(dvv.VV{{Actor: "n1", Counter: dvv.MaxCounter}})))
	f.Add("k", "AQ")
	f.Add("", "====")
	f.Fuzz(func(t *testing.T, key, s string) {
		b, err := httpapi.DecodeContextHeader([]byte(key), s)
		if err != nil {
			if !errors.Is(err, httpapi.ErrBadContext) {
				t.Fatalf("error %v does not wrap ErrBadContext", err)
			}
			return
		}
		if len(b) > 0 {
			if _, err := dvv.DecodeContext(b); err != nil {
				t.Fatalf("accepted %q whose context does not decode: %v", s, err)
			}
		}
		again, err := httpapi.DecodeContextHeader([]byte(key), httpapi.EncodeContextHeader([]byte(key), b))
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted %q but its re-encoding does not decode to the same bytes: %v", s, err)
		}
	})
}
