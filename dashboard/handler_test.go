package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynago/dynago/api"
)

// fakeControl is a Controller over httptest servers standing in for nodes.
type fakeControl struct {
	mu    sync.Mutex
	nodes []NodeInfo
	calls []string
	err   error
	ctxOK bool // the last call's context had a deadline
}

func (f *fakeControl) Nodes() []NodeInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]NodeInfo(nil), f.nodes...)
}

func (f *fakeControl) record(ctx context.Context, call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, f.ctxOK = ctx.Deadline()
	f.calls = append(f.calls, call)
	return f.err
}

func (f *fakeControl) Kill(ctx context.Context, id string) error { return f.record(ctx, "kill "+id) }
func (f *fakeControl) Restart(ctx context.Context, id string) error {
	return f.record(ctx, "restart "+id)
}
func (f *fakeControl) Wipe(ctx context.Context, id string) error { return f.record(ctx, "wipe "+id) }
func (f *fakeControl) AddNode(ctx context.Context) (NodeInfo, error) {
	if err := f.record(ctx, "add"); err != nil {
		return NodeInfo{}, err
	}
	n := NodeInfo{ID: "n9", Index: 9, HTTPAddr: "127.0.0.1:1", Running: true}
	f.mu.Lock()
	f.nodes = append(f.nodes, n)
	f.mu.Unlock()
	return n, nil
}

func (f *fakeControl) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func addrOf(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

func do(t *testing.T, h http.Handler, method, target string, body io.Reader, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, body)
	// As a browser on the dev machine would send it (httptest's default,
	// example.com, is a name the dev dashboard refuses).
	req.Host = "127.0.0.1:9100"
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestStaticFilesAndContentTypes(t *testing.T) {
	h := DevHandler(&fakeControl{})
	for _, tc := range []struct{ path, ctype, contains string }{
		{"/", "text/html; charset=utf-8", `id="console-send"`},
		{"/index.html", "text/html; charset=utf-8", `<script type="module" src="app.js">`},
		{"/app.js", "text/javascript; charset=utf-8", `new EventSource("api/events")`},
		{"/app.css", "text/css; charset=utf-8", ":focus-visible"},
	} {
		rec := do(t, h, "GET", tc.path, nil, nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: status %d", tc.path, rec.Code)
		}
		if got := rec.Header().Get("Content-Type"); got != tc.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.ctype)
		}
		if !strings.Contains(rec.Body.String(), tc.contains) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
	}
	if rec := do(t, h, "GET", "/missing.js", nil, nil); rec.Code != http.StatusNotFound {
		t.Errorf("GET /missing.js: status %d, want 404", rec.Code)
	}
	if rec := do(t, h, "POST", "/", nil, nil); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: status %d, want 405", rec.Code)
	}
}

// The browser tests find elements by these IDs; renaming one breaks them.
func TestPageHasSpecElementIDs(t *testing.T) {
	rec := do(t, DevHandler(&fakeControl{}), "GET", "/", nil, nil)
	for _, id := range []string{"status", "nodes", "console-key", "console-value", "console-r", "console-w",
		"console-op", "console-send", "console-result", "trace", "console-local", "ring", "ring-key",
		"events", "events-filter", "errors"} {
		if !strings.Contains(rec.Body.String(), `id="`+id+`"`) {
			t.Errorf("index.html has no element #%s", id)
		}
	}
}

func TestDevConfigAndNodeList(t *testing.T) {
	ctl := &fakeControl{nodes: []NodeInfo{{ID: "n1", Index: 1, HTTPAddr: "127.0.0.1:9101", PID: 42, Running: true}, {ID: "n2", Index: 2}}}
	h := DevHandler(ctl)
	var cfg Config
	rec := do(t, h, "GET", "/api/config", nil, nil)
	if err := json.Unmarshal(rec.Body.Bytes(), &cfg); err != nil || rec.Code != 200 {
		t.Fatalf("config: %d %v", rec.Code, err)
	}
	if cfg.Mode != "dev" || !cfg.Control || strings.Join(cfg.Nodes, ",") != "n1,n2" {
		t.Errorf("config = %+v", cfg)
	}
	rec = do(t, h, "GET", "/api/nodes", nil, nil)
	var raw []map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw) != 2 || raw[0]["id"] != "n1" || raw[0]["http_addr"] != "127.0.0.1:9101" || raw[0]["pid"] != 42.0 || raw[0]["running"] != true {
		t.Errorf("nodes = %v", raw)
	}
	for _, k := range []string{"id", "index", "http_addr", "rpc_addr", "gossip_addr", "pid", "running"} {
		if _, ok := raw[1][k]; !ok {
			t.Errorf("node JSON lacks %q", k)
		}
	}
}

func TestDevControlActions(t *testing.T) {
	ctl := &fakeControl{nodes: []NodeInfo{{ID: "n1", Index: 1}}}
	h := DevHandler(ctl)
	for _, what := range []string{"kill", "restart", "wipe"} {
		rec := do(t, h, "POST", "/api/nodes/n1/"+what, nil, nil)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"id":"n1"`) {
			t.Errorf("%s: %d %s", what, rec.Code, rec.Body)
		}
		if !ctl.ctxOK {
			t.Errorf("%s ran without a deadline", what)
		}
	}
	if got := strings.Join(ctl.Calls(), ","); got != "kill n1,restart n1,wipe n1" {
		t.Errorf("calls = %s", got)
	}
	if rec := do(t, h, "POST", "/api/nodes/n7/kill", nil, nil); rec.Code != http.StatusNotFound {
		t.Errorf("kill of unknown node: %d", rec.Code)
	}
	if rec := do(t, h, "GET", "/api/nodes/n1/kill", nil, nil); rec.Code == http.StatusOK || len(ctl.Calls()) != 3 {
		t.Errorf("GET kill: %d, calls %v; only POST may kill", rec.Code, ctl.Calls())
	}
	rec := do(t, h, "POST", "/api/nodes", nil, nil)
	if rec.Code != http.StatusCreated || !strings.Contains(rec.Body.String(), `"id":"n9"`) {
		t.Errorf("add: %d %s", rec.Code, rec.Body)
	}

	ctl.err = context.DeadlineExceeded
	if rec := do(t, h, "POST", "/api/nodes/n1/restart", nil, nil); rec.Code != http.StatusGatewayTimeout {
		t.Errorf("restart past deadline: %d, want 504", rec.Code)
	}
	ctl.err = errors.New("boom")
	rec = do(t, h, "POST", "/api/nodes/n1/wipe", nil, nil)
	var e api.Error
	if json.Unmarshal(rec.Body.Bytes(), &e); rec.Code != 500 || e.Code != "internal" || e.Error != "boom" {
		t.Errorf("failed wipe: %d %s", rec.Code, rec.Body)
	}
}

func TestCrossOriginWritesRefused(t *testing.T) {
	ctl := &fakeControl{nodes: []NodeInfo{{ID: "n1"}}}
	h := DevHandler(ctl)
	for _, hdr := range []map[string]string{{"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}} {
		if rec := do(t, h, "POST", "/api/nodes/n1/kill", nil, hdr); rec.Code != http.StatusForbidden {
			t.Errorf("kill with %v: %d, want 403", hdr, rec.Code)
		}
	}
	if len(ctl.Calls()) != 0 {
		t.Fatalf("a cross-origin request reached the controller: %v", ctl.Calls())
	}
	// DNS rebinding: a page at rebind.example, its name re-pointed at
	// 127.0.0.1, is same-origin to the browser; its Host gives it away,
	// for reads as for writes.
	rebind := map[string]string{"Host": "rebind.example:9100", "Origin": "http://rebind.example:9100", "Sec-Fetch-Site": "same-origin"}
	if rec := do(t, h, "POST", "/api/nodes/n1/kill", nil, rebind); rec.Code != http.StatusForbidden {
		t.Errorf("kill through a rebound name: %d, want 403", rec.Code)
	}
	if rec := do(t, h, "GET", "/api/nodes", nil, map[string]string{"Host": "rebind.example:9100"}); rec.Code != http.StatusForbidden {
		t.Errorf("read through a rebound name: %d, want 403", rec.Code)
	}
	if len(ctl.Calls()) != 0 {
		t.Fatalf("a rebound request reached the controller: %v", ctl.Calls())
	}
	// The page itself, same-origin on an IP address or localhost.
	for _, host := range []string{"127.0.0.1:9100", "localhost:9100", "[::1]:9100"} {
		if rec := do(t, h, "POST", "/api/nodes/n1/kill", nil, map[string]string{"Host": host, "Origin": "http://" + host, "Sec-Fetch-Site": "same-origin"}); rec.Code != 200 {
			t.Errorf("same-origin kill at %s: %d", host, rec.Code)
		}
	}
}

func TestProxyPassesRequestsThrough(t *testing.T) {
	type seen struct{ method, path, query, body, ctx string }
	got := make(chan seen, 1)
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, string(b), r.Header.Get("X-Dynago-Context")}
		w.Header().Set("X-Dynago-Context", "ctx2")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusMultipleChoices)
		io.WriteString(w, `{"siblings":[]}`)
	}))
	defer node.Close()
	h := DevHandler(&fakeControl{nodes: []NodeInfo{{ID: "n1", HTTPAddr: addrOf(node)}}})
	rec := do(t, h, "PUT", "/api/node/n1/kv/a%2Fb?trace=1&w=3", strings.NewReader("hello"), map[string]string{"X-Dynago-Context": "ctx1"})
	if rec.Code != http.StatusMultipleChoices || rec.Header().Get("X-Dynago-Context") != "ctx2" || rec.Body.String() != `{"siblings":[]}` {
		t.Errorf("answer: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	s := <-got
	want := seen{"PUT", "/kv/a%2Fb", "trace=1&w=3", "hello", "ctx1"}
	if s != want {
		t.Errorf("node saw %+v, want %+v", s, want)
	}

	if rec := do(t, h, "GET", "/api/node/n5/cluster", nil, nil); rec.Code != http.StatusNotFound {
		t.Errorf("unknown node: %d", rec.Code)
	}
	node.Close()
	rec = do(t, h, "GET", "/api/node/n1/cluster", nil, nil)
	if rec.Code != http.StatusBadGateway || !strings.Contains(rec.Body.String(), "node_unreachable") {
		t.Errorf("dead node: %d %s", rec.Code, rec.Body)
	}
}

// sseNode is a fake node whose /events sends one frame per connection
// (id = connection number) and then holds the stream open until the test
// ends, recording the Last-Event-ID of each connection.
type sseNode struct {
	*httptest.Server
	id       string
	mu       sync.Mutex
	lastIDs  []string
	closeOne chan struct{} // a receive ends the current stream
}

func newSSENode(t *testing.T, id string) *sseNode {
	n := &sseNode{id: id, closeOne: make(chan struct{}, 1)}
	done := make(chan struct{})
	n.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/events" {
			http.NotFound(w, r)
			return
		}
		n.mu.Lock()
		n.lastIDs = append(n.lastIDs, r.Header.Get("Last-Event-ID"))
		seq := len(n.lastIDs)
		n.mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, ": hello\n\n")
		b, _ := json.Marshal(map[string]any{"seq": seq, "node": id, "kind": "member", "msg": "m"})
		io.WriteString(w, "id: "+itoa(seq)+"\nevent: member\ndata: "+string(b)+"\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-done:
		case <-n.closeOne:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(done); n.Close() })
	return n
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func (n *sseNode) LastIDs() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.lastIDs...)
}

// readFrames reads SSE frames from body until want returns true or the
// deadline passes.
func readFrames(t *testing.T, body io.Reader, want func(event, data string) bool) {
	t.Helper()
	found := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(body)
		var ev string
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				ev = v
			}
			if v, ok := strings.CutPrefix(line, "data: "); ok && want(ev, v) {
				close(found)
				return
			}
		}
	}()
	select {
	case <-found:
	case <-time.After(5 * time.Second):
		t.Fatal("expected frames did not arrive within 5s (buffered?)")
	}
}

func TestProxyStreamsEvents(t *testing.T) {
	node := newSSENode(t, "n1")
	srv := httptest.NewServer(DevHandler(&fakeControl{nodes: []NodeInfo{{ID: "n1", HTTPAddr: addrOf(node.Server)}}}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/node/n1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	// The node holds the stream open: the frame can only arrive if the
	// proxy flushes it rather than waiting for the body to end.
	readFrames(t, resp.Body, func(ev, data string) bool { return ev == "member" && strings.Contains(data, `"node":"n1"`) })
}

func TestMergedEventsFromEveryNode(t *testing.T) {
	n1, n2 := newSSENode(t, "n1"), newSSENode(t, "n2")
	srv := httptest.NewServer(DevHandler(&fakeControl{nodes: []NodeInfo{
		{ID: "n1", HTTPAddr: addrOf(n1.Server)}, {ID: "n2", HTTPAddr: addrOf(n2.Server)}}}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	body := bufio.NewReader(resp.Body)
	seen := map[string]bool{}
	readFrames(t, body, func(ev, data string) bool {
		var d struct {
			Node string
			Open bool
		}
		json.Unmarshal([]byte(data), &d)
		seen[ev+" "+d.Node] = true
		return seen["member n1"] && seen["member n2"] && seen["upstream n1"] && seen["upstream n2"]
	})

	// A stream that breaks is resumed with Last-Event-ID, so the node
	// replays only what the page has not seen.
	n1.closeOne <- struct{}{}
	readFrames(t, body, func(ev, data string) bool {
		return ev == "member" && strings.Contains(data, `"seq":2`) && strings.Contains(data, `"n1"`)
	})
	if ids := n1.LastIDs(); len(ids) != 2 || ids[0] != "" || ids[1] != "1" {
		t.Errorf("Last-Event-ID per connection = %q, want [\"\" \"1\"]", ids)
	}
}

func TestNodeHosting(t *testing.T) {
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "node2 "+r.URL.Path)
	}))
	defer node.Close()
	peers := func() []Peer { return []Peer{{ID: "n1", HTTPAddr: "127.0.0.1:1"}, {ID: "n2", HTTPAddr: addrOf(node)}} }
	mux := http.NewServeMux()
	mux.Handle(NodePrefix+"/", NodeHandler("n1", peers))
	mux.Handle(NodePrefix, NodeHandler("n1", peers))

	if rec := do(t, mux, "GET", "/dashboard", nil, nil); rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/dashboard/" {
		t.Errorf("GET /dashboard: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	rec := do(t, mux, "GET", "/dashboard/", nil, nil)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `id="nodes"`) {
		t.Errorf("GET /dashboard/: %d", rec.Code)
	}
	if rec := do(t, mux, "GET", "/dashboard/app.js", nil, nil); rec.Header().Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Errorf("app.js type %q", rec.Header().Get("Content-Type"))
	}
	var cfg map[string]any
	rec = do(t, mux, "GET", "/dashboard/api/config", nil, nil)
	json.Unmarshal(rec.Body.Bytes(), &cfg)
	if cfg["mode"] != "node" || cfg["control"] != false || cfg["self"] != "n1" {
		t.Errorf("config = %v", cfg)
	}
	rec = do(t, mux, "GET", "/dashboard/api/node/n2/cluster", nil, nil)
	if rec.Code != 200 || rec.Body.String() != "node2 /cluster" {
		t.Errorf("proxy to peer: %d %q", rec.Code, rec.Body)
	}
	// No process control on a node.
	if rec := do(t, mux, "POST", "/dashboard/api/nodes/n2/kill", nil, nil); rec.Code != http.StatusNotFound {
		t.Errorf("kill on a node: %d, want 404", rec.Code)
	}
}

// TestProxyReachesNodesWhoseIDsNeedEscaping: the page escapes node IDs with
// JavaScript's encodeURIComponent, which differs from Go's PathEscape.
func TestProxyReachesNodesWhoseIDsNeedEscaping(t *testing.T) {
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.EscapedPath()) }))
	defer node.Close()
	for _, c := range []struct{ id, js string }{{"db:1", "db%3A1"}, {"n!1", "n!1"}, {"a+b", "a%2Bb"}, {"n1", "n1"}} {
		peers := func() []Peer { return []Peer{{ID: c.id, HTTPAddr: addrOf(node)}} }
		rec := do(t, NodeHandler("x", peers), "GET", "/dashboard/api/node/"+c.js+"/kv/a%2Fb", nil, nil)
		if rec.Code != 200 || rec.Body.String() != "/kv/a%2Fb" {
			t.Errorf("id %q as the page encodes it (%s): %d %q", c.id, c.js, rec.Code, rec.Body)
		}
	}
	// Another node's ID, or a path without one, reaches nothing.
	peers := func() []Peer { return []Peer{{ID: "n1", HTTPAddr: addrOf(node)}} }
	for _, path := range []string{"/dashboard/api/node/n2/kv/x", "/dashboard/api/node/n1"} {
		if rec := do(t, NodeHandler("x", peers), "GET", path, nil, nil); rec.Code == 200 {
			t.Errorf("GET %s: 200, want an error", path)
		}
	}
}
