package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/httpapi/httpapitest"
	"github.com/dynago/dynago/object"
	"github.com/dynago/dynago/ring"
)

// observed is a backend with a fake event log: events 1..n retained, and
// live events sent by the test on live.
type observed struct {
	*httpapitest.Backend
	retained []httpapi.Event
	live     chan httpapi.Event

	mu        sync.Mutex
	since     []uint64 // Subscribe calls
	cancelled chan struct{}
	cancel    sync.Once
}

func newObserved(n int) *observed {
	o := &observed{Backend: httpapitest.New(), live: make(chan httpapi.Event, 8), cancelled: make(chan struct{})}
	for i := 1; i <= n; i++ {
		o.retained = append(o.retained, event(uint64(i)))
	}
	return o
}

func event(seq uint64) httpapi.Event {
	return httpapi.Event{Seq: seq, At: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Node: "n1", Kind: "member",
		Msg: "n2 is alive", Data: map[string]any{"id": "n2", "status": "alive"}}
}

func (o *observed) Events(since uint64) []httpapi.Event {
	var out []httpapi.Event
	for _, e := range o.retained {
		if e.Seq > since {
			out = append(out, e)
		}
	}
	return out
}

func (o *observed) Subscribe(since uint64) ([]httpapi.Event, <-chan httpapi.Event, func()) {
	o.mu.Lock()
	o.since = append(o.since, since)
	o.mu.Unlock()
	return o.Events(since), o.live, func() { o.cancel.Do(func() { close(o.cancelled) }) }
}

func (o *observed) Stats() httpapi.Stats {
	return httpapi.Stats{Node: "n1", RingVersion: 3, Keys: 7, Hints: map[ring.NodeID]int{"n3": 2},
		AE:         httpapi.AEStats{Exchanges: 4, InSync: 3, KeysRepaired: 1, TreeBuilds: 2},
		Partitions: []httpapi.PartitionStats{{Partition: 0, Replicas: []ring.NodeID{"n1", "n2", "n3"}}}}
}

func (o *observed) History(key []byte) (httpapi.History, bool, error) {
	if string(key) != "k" {
		return httpapi.History{}, false, nil
	}
	var obj object.Object
	obj = object.Update(obj, nil, object.Sibling{Value: []byte("v1"), Timestamp: 1}, "a")
	obj = object.Update(obj, nil, object.Sibling{Value: []byte("v2"), Timestamp: 2}, "a")
	h := httpapi.History{Key: "k", Node: "n1", Partition: 5}
	h.Clock, h.Siblings = httpapi.ObjectHistory(obj)
	return h, true, nil
}

func TestEventsJSONPolling(t *testing.T) {
	srv := serve(t, newObserved(5), httpapi.Options{})
	a := call(t, srv, "GET", "/events?format=json&since=3", nil)
	if a.status != http.StatusOK {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	var body struct{ Events []map[string]json.RawMessage }
	if err := json.Unmarshal(a.body, &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Events) != 2 || string(body.Events[0]["seq"]) != "4" || string(body.Events[1]["seq"]) != "5" {
		t.Fatalf("events since 3 = %s, want seq 4 and 5", a.body)
	}
	var names []string
	for k := range body.Events[0] {
		names = append(names, k)
	}
	slices.Sort(names)
	if want := []string{"at", "data", "kind", "msg", "node", "seq"}; !slices.Equal(names, want) {
		t.Fatalf("event fields = %v, want %v", names, want)
	}
	if at := string(body.Events[0]["at"]); at != `"2026-01-02T03:04:05.000000006Z"` {
		t.Fatalf("at = %s, want RFC 3339 with nanoseconds", at)
	}

	if a := call(t, srv, "GET", "/events?format=json&since=9", nil); string(a.body) != "{\"events\":[]}\n" {
		t.Fatalf("nothing newer = %s, want an empty list", a.body)
	}
	wantError(t, call(t, srv, "GET", "/events?format=json&since=x", nil), http.StatusBadRequest, httpapi.CodeBadParameter)
	wantError(t, call(t, srv, "GET", "/events?format=xml", nil), http.StatusBadRequest, httpapi.CodeBadParameter)
}

// stream opens /events and returns a reader of its lines.
func stream(t *testing.T, url string, header ...string) (*http.Response, *bufio.Reader, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	req, err := http.NewRequestWithContext(ctx, "GET", url+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	return resp, bufio.NewReader(resp.Body), cancel
}

// frame reads one SSE frame (lines up to a blank line).
func frame(t *testing.T, r *bufio.Reader) []string {
	t.Helper()
	var lines []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream after %q: %v", lines, err)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			return lines
		}
		lines = append(lines, line)
	}
}

func TestEventsStreamReplaysAfterLastEventIDThenGoesLive(t *testing.T) {
	o := newObserved(5)
	srv := serve(t, o, httpapi.Options{})
	resp, r, cancel := stream(t, srv.URL, "Last-Event-ID", "3")
	for h, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	for _, seq := range []string{"4", "5"} {
		f := frame(t, r)
		if len(f) != 3 || f[0] != "id: "+seq || f[1] != "event: member" || !strings.HasPrefix(f[2], "data: {") {
			t.Fatalf("frame = %q, want id %s, event member, data", f, seq)
		}
		var ev httpapi.Event
		if err := json.Unmarshal([]byte(strings.TrimPrefix(f[2], "data: ")), &ev); err != nil || ev.Seq != 4 && ev.Seq != 5 || ev.Node != "n1" {
			t.Fatalf("data %q: %+v %v", f[2], ev, err)
		}
	}
	o.live <- event(6)
	if f := frame(t, r); len(f) != 3 || f[0] != "id: 6" {
		t.Fatalf("live frame = %q, want id 6", f)
	}
	o.mu.Lock()
	since := slices.Clone(o.since)
	o.mu.Unlock()
	if !slices.Equal(since, []uint64{3}) {
		t.Fatalf("Subscribe since = %v, want [3]", since)
	}
	cancel() // the client goes away: the subscription must be released
	select {
	case <-o.cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("subscription not cancelled after the client went away")
	}
}

func TestEventsStreamHeartbeatAndEnd(t *testing.T) {
	o := newObserved(0)
	srv := serve(t, o, httpapi.Options{EventHeartbeat: 10 * time.Millisecond})
	_, r, _ := stream(t, srv.URL)
	if f := frame(t, r); len(f) != 1 || f[0] != ": heartbeat" {
		t.Fatalf("idle stream sent %q, want a heartbeat comment", f)
	}
	close(o.live) // the node shuts down
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := r.ReadString('\n'); err != nil {
			return // ended
		}
	}
	t.Fatal("stream did not end when the node closed it")
}

func TestObserverEndpointsNeedAnObserver(t *testing.T) {
	srv, _ := server(t, httpapi.Options{})
	for _, path := range []string{"/events", "/events?format=json", "/admin/stats", "/admin/history/k"} {
		wantError(t, call(t, srv, "GET", path, nil), http.StatusNotFound, httpapi.CodeNotFound)
	}
}

func TestAdminStats(t *testing.T) {
	srv := serve(t, newObserved(0), httpapi.Options{})
	a := call(t, srv, "GET", "/admin/stats", nil)
	if a.status != http.StatusOK {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	want := []string{"ae", "events", "gossip", "handoff", "hint_bytes", "hints", "hints_refused", "keys", "node", "partitions", "ring_version"}
	if got := fields(t, a); !slices.Equal(got, want) {
		t.Fatalf("fields = %v, want %v", got, want)
	}
	var st struct {
		Hints      map[string]int
		AE         map[string]uint64
		Partitions []map[string]json.RawMessage
		Gossip     []any
	}
	if err := json.Unmarshal(a.body, &st); err != nil {
		t.Fatal(err)
	}
	if st.Hints["n3"] != 2 || st.AE["in_sync"] != 3 || st.AE["keys_repaired"] != 1 || st.Gossip == nil {
		t.Fatalf("stats = %s", a.body)
	}
	if len(st.Partitions) != 1 || string(st.Partitions[0]["last_exchange"]) != "null" || string(st.Partitions[0]["replicas"]) != `["n1","n2","n3"]` {
		t.Fatalf("partitions = %s", a.body)
	}
}

func TestAdminHistoryGivesEachSiblingItsDot(t *testing.T) {
	srv := serve(t, newObserved(0), httpapi.Options{})
	none := call(t, srv, "GET", "/admin/history/other", nil)
	if none.status != http.StatusOK || !strings.Contains(string(none.body), `"held":false`) || !strings.Contains(string(none.body), `"siblings":[]`) {
		t.Fatalf("key held nowhere: status %d: %s; want 200 with held:false", none.status, none.body)
	}
	a := call(t, srv, "GET", "/admin/history/k", nil)
	if a.status != http.StatusOK {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	if got, want := fields(t, a), []string{"clock", "held", "hints", "key", "node", "partition", "siblings"}; !slices.Equal(got, want) {
		t.Fatalf("fields = %v, want %v", got, want)
	}
	var h httpapi.History
	if err := json.Unmarshal(a.body, &h); err != nil {
		t.Fatal(err)
	}
	// Two blind writes coordinated by actor a: siblings a:2 (v2) and a:1 (v1).
	if !slices.Equal(h.Clock, []httpapi.Dot{{Actor: "a", Counter: 2}}) {
		t.Fatalf("clock = %+v, want a:2", h.Clock)
	}
	got := map[string]httpapi.Dot{}
	for _, s := range h.Siblings {
		got[string(s.Value)] = s.Dot
	}
	if len(h.Siblings) != 2 || got["v2"] != (httpapi.Dot{Actor: "a", Counter: 2}) || got["v1"] != (httpapi.Dot{Actor: "a", Counter: 1}) {
		t.Fatalf("siblings = %+v, want v2 at a:2 and v1 at a:1", h.Siblings)
	}
	if !strings.Contains(string(a.body), `"value":"djI="`) {
		t.Fatalf("values are not base64: %s", a.body)
	}
}
