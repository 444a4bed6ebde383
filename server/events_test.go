package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/internal/testutil"
	"github.com/dynago/dynago/node"
)

func TestEventBusKeepsReplaysAndDrops(t *testing.T) {
	b := newEventBus("n1")
	for i := range 1500 {
		b.publish("member", "m", i)
	}
	all := b.Events(0)
	if len(all) != eventsKept || all[0].Seq != 501 || all[len(all)-1].Seq != 1500 {
		t.Fatalf("retained %d events, seq %d..%d; want the last %d", len(all), all[0].Seq, all[len(all)-1].Seq, eventsKept)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq != all[i-1].Seq+1 {
			t.Fatalf("events out of order at %d: %d after %d", i, all[i].Seq, all[i-1].Seq)
		}
	}
	if got := b.Events(1490); len(got) != 10 || got[0].Seq != 1491 {
		t.Fatalf("Events(1490) = %d events from %d", len(got), got[0].Seq)
	}

	replay, ch, cancel := b.Subscribe(0)
	if len(replay) != eventsReplay || replay[len(replay)-1].Seq != 1500 {
		t.Fatalf("replay = %d events ending %d, want the last %d", len(replay), replay[len(replay)-1].Seq, eventsReplay)
	}
	if r, _, c := b.Subscribe(1498); len(r) != 2 {
		t.Fatalf("replay after 1498 = %d events, want 2", len(r))
	} else {
		c()
	}
	// Nobody reads ch: publishing must not block, and the excess is counted.
	for i := range subscriberBuf + 10 {
		b.publish("member", "m", i)
	}
	if st := b.stats(); st.Dropped != 10 || st.Subscribers != 1 || st.Published != 1500+subscriberBuf+10 {
		t.Fatalf("stats = %+v, want 10 dropped, 1 subscriber", st)
	}
	if ev := <-ch; ev.Seq != 1501 {
		t.Fatalf("first live event %d, want 1501", ev.Seq)
	}
	cancel()
	cancel()
	_, ch2, _ := b.Subscribe(0)
	b.close()
	for range ch2 {
	}
	if _, ch3, _ := b.Subscribe(0); ch3 != nil {
		if _, open := <-ch3; open {
			t.Fatal("subscribing after close gave an open channel")
		}
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

type traceOut struct {
	Coordinator    string   `json:"coordinator"`
	PreferenceList []string `json:"preference_list"`
	Events         []struct {
		Node string `json:"node"`
		What string `json:"what"`
	} `json:"events"`
}

type requestEvent struct {
	Seq  uint64 `json:"seq"`
	Kind string `json:"kind"`
	Node string `json:"node"`
	Data struct {
		Op    string    `json:"op"`
		Key   string    `json:"key"`
		Code  string    `json:"code"`
		MS    float64   `json:"ms"`
		Trace *traceOut `json:"trace"`
	} `json:"data"`
}

// Under load the log samples requests: at most requestEventsPerSecond a
// second are logged, the rest counted, and the next second logs again.
func TestRequestEventsAreSampledPerSecond(t *testing.T) {
	b := newEventBus("n1")
	sec := time.Unix(1_800_000_000, 0)
	admitted := 0
	for i := range requestEventsPerSecond + 50 {
		if b.admitRequest(sec.Add(time.Duration(i) * time.Millisecond)) {
			admitted++
		}
	}
	if admitted != requestEventsPerSecond || b.stats().RequestsSkipped != 50 {
		t.Fatalf("admitted %d of %d in one second, skipped %d; want %d and 50",
			admitted, requestEventsPerSecond+50, b.stats().RequestsSkipped, requestEventsPerSecond)
	}
	if !b.admitRequest(sec.Add(time.Second)) {
		t.Fatal("the next second logs no request")
	}
}

func TestObservingAPutOverHTTP(t *testing.T) {
	srvs := startCluster(t, 3, nil)
	base := "http://" + srvs[0].HTTPAddr()

	// A stream opened before the put sees it live.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sreq, _ := http.NewRequestWithContext(ctx, "GET", base+"/events", nil)
	sresp, err := http.DefaultClient.Do(sreq)
	if err != nil {
		t.Fatal(err)
	}
	defer sresp.Body.Close()

	req, _ := http.NewRequest("PUT", base+"/kv/watched", strings.NewReader("v1"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT: %s", resp.Status)
	}

	var polled struct{ Events []requestEvent }
	getJSON(t, base+"/events?format=json&since=0", &polled)
	var put *requestEvent
	kinds := map[string]bool{}
	for i, ev := range polled.Events {
		kinds[ev.Kind] = true
		if ev.Kind == "request" && ev.Data.Key == "watched" {
			put = &polled.Events[i]
		}
	}
	if !kinds["ring"] {
		t.Errorf("no ring event among %v", kinds)
	}
	if put == nil {
		t.Fatalf("no request event for the put among %+v", polled.Events)
	}
	if put.Node != "n1" || put.Data.Op != "put" || put.Data.Code != "ok" || put.Data.MS <= 0 || put.Data.Trace == nil ||
		put.Data.Trace.Coordinator == "" || len(put.Data.Trace.PreferenceList) != 3 || len(put.Data.Trace.Events) == 0 {
		t.Fatalf("request event = %+v", put)
	}

	r := bufio.NewReader(sresp.Body)
	for seen := false; !seen; {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended before the put's event: %v", err)
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var ev requestEvent
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				t.Fatal(err)
			}
			seen = ev.Kind == "request" && ev.Data.Key == "watched" && ev.Seq == put.Seq
		}
	}

	// Every replica stores the put once the W-th ack is in; the coordinator
	// stored it before acknowledging.
	var h httpapi.History
	coord := put.Data.Trace.Coordinator
	var at *Server
	for _, s := range srvs {
		if string(s.NodeID()) == coord {
			at = s
		}
	}
	getJSON(t, "http://"+at.HTTPAddr()+"/admin/history/watched", &h)
	if h.Key != "watched" || string(h.Node) != coord || len(h.Siblings) != 1 || string(h.Siblings[0].Value) != "v1" ||
		h.Siblings[0].Dot.Counter == 0 || !strings.HasPrefix(h.Siblings[0].Dot.Actor, coord) ||
		!slices.Equal(h.Clock, []httpapi.Dot{h.Siblings[0].Dot}) {
		t.Fatalf("history at the coordinator = %+v", h)
	}
	if c := (http.Client{Timeout: 10 * time.Second}); true {
		resp, err := c.Get(base + "/admin/history/never-written")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"held":false`) {
			t.Fatalf("history of an unwritten key: %s %s, want 200 with held:false", resp.Status, body)
		}
	}

	var st map[string]json.RawMessage
	getJSON(t, base+"/admin/stats", &st)
	for _, f := range []string{"node", "ring_version", "keys", "hints", "ae", "partitions", "gossip", "handoff", "events"} {
		if _, ok := st[f]; !ok {
			t.Errorf("stats lack %q: %v", f, st)
		}
	}
	var parts []httpapi.PartitionStats
	if err := json.Unmarshal(st["partitions"], &parts); err != nil || len(parts) == 0 || len(parts[0].Replicas) != 3 {
		t.Fatalf("partitions = %s (%v)", st["partitions"], err)
	}
	if string(st["ring_version"]) == "0" {
		t.Fatalf("ring_version 0 on a started cluster")
	}

	// Close must not wait for the open stream.
	start := time.Now()
	srvs[0].Close()
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("Close took %v with an event stream open", d)
	}
}

func TestHintStoredEventNamesPrimaryAndKey(t *testing.T) {
	srvs := startCluster(t, 4, nil)
	key := []byte("hinted")
	rg := srvs[0].Ring()
	pl := rg.PreferenceList(rg.PartitionOf(key))
	byID := map[string]*Server{}
	for _, s := range srvs {
		byID[string(s.NodeID())] = s
	}
	down := byID[string(pl[2])]
	down.Close()
	coord := byID[string(pl[0])]
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if r := coord.Do(ctx, node.Request{Op: node.OpPut, Key: key, Value: []byte("v"), W: 3}); r.Code != node.CodeOK {
		t.Fatalf("put: %s %s", r.Code, r.Err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range srvs {
			if s == down {
				continue
			}
			for _, ev := range s.Events(0) {
				d, ok := ev.Data.(map[string]any)
				if ev.Kind == "hint_stored" && ok && d["key"] == "hinted" && d["for"] == pl[2] {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, s := range srvs {
		if s != down {
			for _, ev := range s.Events(0) {
				t.Logf("%s: %s %s %v", s.NodeID(), ev.Kind, ev.Msg, ev.Data)
			}
		}
	}
	t.Fatalf("no hint_stored event for %s naming %s", key, pl[2])
}

// Every hint a node stores reaches its event log by name, however many
// arrive at once: the log is fed from the core's events, not from a
// bounded list of recent hints compared now and then.
func TestEventBusSeesEveryHint(t *testing.T) {
	srvs := startCluster(t, 4, nil)
	down := srvs[3]
	down.Close()
	live := srvs[:3]
	rg := srvs[0].Ring()
	var keys []string // the keys down is a primary of: each needs a hint
	for i := range 150 {
		k := fmt.Sprintf("burst-%d", i)
		if slices.Contains(rg.PreferenceList(rg.PartitionOf([]byte(k))), down.NodeID()) {
			keys = append(keys, k)
		}
	}
	if len(keys) < 65 {
		t.Fatalf("only %d keys hinted; the test needs more than the old 64-hint window", len(keys))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	work := make(chan string)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				// W=3 with a primary down: a fallback must store a hint.
				if r := srvs[0].Do(ctx, node.Request{Op: node.OpPut, Key: []byte(k), Value: []byte("v"), W: 3}); r.Code != node.CodeOK {
					t.Errorf("put %s: %s %s", k, r.Code, r.Err)
				}
			}
		}()
	}
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		return
	}
	// Each live node's log names as many hints as its core counted, and
	// together they name every key.
	testutil.EventuallyNil(t, 10*time.Second, func() error {
		named := map[string]bool{}
		for _, s := range live {
			count := 0
			for _, ev := range s.Events(0) {
				d, ok := ev.Data.(map[string]any)
				if ev.Kind != "hint_stored" || !ok {
					continue
				}
				if d["for"] != down.NodeID() {
					t.Fatalf("%s: hint_stored for %v, want %s", s.NodeID(), d["for"], down.NodeID())
				}
				count++
				named[d["key"].(string)] = true
			}
			if stored := s.stats().HintsStored; uint64(count) != stored {
				return fmt.Errorf("%s logged %d hint_stored events, its core stored %d hints", s.NodeID(), count, stored)
			}
		}
		var unnamed []string
		for _, k := range keys {
			if !named[k] {
				unnamed = append(unnamed, k)
			}
		}
		if len(unnamed) > 0 {
			return fmt.Errorf("no hint_stored event names %q", unnamed)
		}
		return nil
	})
}
