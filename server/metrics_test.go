package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/dynago/dynago/fault"
	"github.com/dynago/dynago/internal/testutil"
	"github.com/dynago/dynago/node"
)

// scrape GETs the node's /metrics, as Prometheus does, and parses the text
// exposition.
func scrape(t *testing.T, s *Server) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + s.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return mfs
}

// seriesOf returns the series of family name whose labels include want.
func seriesOf(mfs map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
next:
	for _, m := range mfs[name].GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

// sum adds up the matching series: counter and gauge values, histogram
// sample counts. ok is false when no series matches.
func sum(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (v float64, ok bool) {
	for _, m := range seriesOf(mfs, name, want) {
		ok = true
		switch {
		case m.GetHistogram() != nil:
			v += float64(m.GetHistogram().GetSampleCount())
		case m.GetCounter() != nil:
			v += m.GetCounter().GetValue()
		default:
			v += m.GetGauge().GetValue()
		}
	}
	return v, ok
}

// must returns sum's value and fails the test when the series is absent.
func must(t *testing.T, mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	v, ok := sum(mfs, name, want)
	if !ok {
		t.Fatalf("/metrics has no %s%v", name, want)
	}
	return v
}

// Storage and per-peer series are on /metrics of a node serving writes,
// and every metric the node exports passes Prometheus's naming lint.
func TestStorageAndPeerMetricsAreScraped(t *testing.T) {
	srvs := startCluster(t, 3, nil)
	n1 := srvs[0]
	ctx := context.Background()
	// n1 started before n2 and n3 listened: its first attempts to reach
	// them failed (as in any rolling start) and gRPC waits out a backoff.
	// Once a write went through to both, a healthy cluster fails no more.
	i := 0
	testutil.Eventually(t, 10*time.Second, "n1 has written to n2 and n3", func() bool {
		i++
		n1.Do(ctx, node.Request{Op: node.OpPut, Key: fmt.Appendf(nil, "warm%d", i), Value: []byte("v")})
		mfs := scrape(t, n1)
		for _, peer := range []string{"n2", "n3"} {
			if v, _ := sum(mfs, "dynago_peer_rpc_duration_seconds", map[string]string{"peer": peer, "method": "stream_send"}); v == 0 {
				return false
			}
		}
		return true
	})
	failures, _ := sum(scrape(t, n1), "dynago_peer_rpc_failures_total", nil)
	for i := range 50 {
		if r := n1.Do(ctx, node.Request{Op: node.OpPut, Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")}); r.Code != node.CodeOK {
			t.Fatalf("put: %s %s", r.Code, r.Err)
		}
	}
	mfs := scrape(t, n1)
	for _, name := range []string{"dynago_storage_disk_bytes", "dynago_storage_wal_bytes", "dynago_storage_memtable_bytes", "dynago_storage_wal_written_bytes_total"} {
		if v := must(t, mfs, name, nil); v <= 0 {
			t.Errorf("%s = %v after 50 writes", name, v)
		}
	}
	for _, name := range []string{"dynago_storage_compaction_debt_bytes", "dynago_storage_compactions_in_progress", "dynago_storage_block_cache_hits_total",
		"dynago_storage_block_cache_misses_total", "dynago_storage_block_cache_bytes", "dynago_storage_read_amplification"} {
		must(t, mfs, name, nil)
	}
	// n1 coordinated every write and sent each to n2 and n3 on its stream.
	for _, peer := range []string{"n2", "n3"} {
		if v := must(t, mfs, "dynago_peer_rpc_duration_seconds", map[string]string{"peer": peer, "method": "stream_send"}); v == 0 {
			t.Errorf("no stream write to %s timed", peer)
		}
	}
	if v, _ := sum(mfs, "dynago_peer_rpc_failures_total", nil); v != failures {
		t.Errorf("RPC failures went from %v to %v in a healthy cluster", failures, v)
	}
	problems, err := promtest.GatherAndLint(n1.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// A read that finds a replica without the key, then one with an old
// version, sends each a read repair, and /metrics says which was which.
func TestReadRepairsAreCounted(t *testing.T) {
	// Anti-entropy off (in effect): it must not fix n3 before the reads do.
	srvs := startCluster(t, 3, func(c *Config) { c.Node.AEInterval = time.Hour })
	n1 := srvs[0]
	ctx := context.Background()
	repairs := func(reason string) float64 {
		return must(t, scrape(t, n1), "dynago_read_repairs_total", map[string]string{"reason": reason})
	}
	if repairs("missing") != 0 || repairs("stale") != 0 {
		t.Fatal("read repairs counted before any read")
	}
	warmUp(t, n1)
	// putWithoutN3 writes through n1 while n1 cannot reach n3: W=2 is met
	// by n1 and n2, and n3 keeps what it had.
	putWithoutN3 := func(value string, context []byte) {
		t.Helper()
		if err := n1.SetFaultRules(fault.Rules{Cut: []string{"n3"}}); err != nil {
			t.Fatal(err)
		}
		r := n1.Do(ctx, node.Request{Op: node.OpPut, Key: []byte("k"), Value: []byte(value), Context: context, W: 2})
		if err := n1.SetFaultRules(fault.Rules{}); err != nil {
			t.Fatal(err)
		}
		if r.Code != node.CodeOK {
			t.Fatalf("put: %s %s", r.Code, r.Err)
		}
	}
	get := func() node.Reply {
		t.Helper()
		// R=3: the read waits for n3's answer, so it has it to repair.
		g := n1.Do(ctx, node.Request{Op: node.OpGet, Key: []byte("k"), R: 3})
		if g.Code != node.CodeOK {
			t.Fatalf("get: %s %s", g.Code, g.Err)
		}
		return g
	}

	putWithoutN3("v1", nil)
	if _, found, _ := srvs[2].Local([]byte("k")); found {
		t.Fatal("n3 received the write despite the cut")
	}
	g := get()
	testutil.Eventually(t, 5*time.Second, "a missing-copy repair is counted", func() bool { return repairs("missing") == 1 })
	testutil.Eventually(t, 5*time.Second, "n3 holds the repaired copy", func() bool { _, found, _ := srvs[2].Local([]byte("k")); return found })
	if v := repairs("stale"); v != 0 {
		t.Errorf("stale repairs = %v, want 0", v)
	}

	putWithoutN3("v2", g.Context) // supersedes v1 on n1 and n2 only
	get()
	testutil.Eventually(t, 5*time.Second, "a stale-copy repair is counted", func() bool { return repairs("stale") == 1 })
	if v := repairs("missing"); v != 1 {
		t.Errorf("missing repairs = %v, want still 1", v)
	}
}

// warmUp waits until s can write to every replica (W=3). In these
// gossip-less in-process clusters nothing calls Reconnect: a message sent
// while a peer's first dial is still failing or backing off is lost and
// not resent, so a write made right after start can miss an ack.
func warmUp(t *testing.T, s *Server) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, "a W=3 warm-up write succeeds", func() bool {
		return s.Do(context.Background(), node.Request{Op: node.OpPut, Key: []byte("warm-up"), Value: []byte("x"), W: 3}).Code == node.CodeOK
	})
}

// joinGossip makes every node a gossip member with the first.
func joinGossip(t *testing.T, srvs []*Server) {
	t.Helper()
	for _, s := range srvs[1:] {
		if _, err := s.members.Join([]string{srvs[0].members.Addr()}); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 30*time.Second, "every node sees every other alive", func() bool {
		for _, s := range srvs {
			if len(s.aliveMembers()) != len(srvs) {
				return false
			}
		}
		return true
	})
}

// A leave shows on /metrics as /cluster shows it: in progress with pending
// transfers, then done; the donors count the keys, bytes and partitions
// they pushed; and the node that left drops out of the per-peer series.
func TestHandoffAndDepartedPeerMetrics(t *testing.T) {
	// 16 partitions: a dozen transfers show everything, in seconds under -race.
	// The default preset's failure detector: the lab's flaps on a loaded
	// machine, and a node seen dead stalls the change.
	srvs := startCluster(t, 4, func(c *Config) { c.Node.Partitions = 16 })
	joinGossip(t, srvs)
	n1, n4 := srvs[0], srvs[3]
	ctx := context.Background() // each call is bounded by the node's own timeouts
	for i := range 40 {
		if r := n1.Do(ctx, node.Request{Op: node.OpPut, Key: fmt.Appendf(nil, "key-%03d", i), Value: []byte("value")}); r.Code != node.CodeOK {
			t.Fatalf("put: %s %s", r.Code, r.Err)
		}
	}
	mfs := scrape(t, n1)
	if _, ok := sum(mfs, "dynago_peer_rpc_duration_seconds", map[string]string{"peer": "n4"}); !ok {
		t.Fatal("n1 exports no RPC latency to n4, a replica of some of its writes")
	}
	if must(t, mfs, "dynago_handoff_in_progress", nil) != 0 || must(t, mfs, "dynago_handoff_transfers", map[string]string{"state": "pending"}) != 0 {
		t.Fatal("a handoff shows before any membership change")
	}

	if err := n1.StageLeave(ctx, "n4"); err != nil {
		t.Fatal(err)
	}
	pl, err := n1.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Two trips through the event loop: the commit's state is published
	// by the time the second one runs.
	for range 2 {
		if err := n1.inLoop(ctx, func() {}); err != nil {
			t.Fatal(err)
		}
	}
	mfs = scrape(t, n1)
	total := float64(len(pl.Transfers))
	if must(t, mfs, "dynago_handoff_in_progress", nil) != 1 {
		t.Fatal("dynago_handoff_in_progress is not 1 right after the commit")
	}
	done := must(t, mfs, "dynago_handoff_transfers", map[string]string{"state": "done"})
	pending := must(t, mfs, "dynago_handoff_transfers", map[string]string{"state": "pending"})
	if done+pending != total || pending == 0 {
		t.Fatalf("transfers done %v + pending %v, want %v in all with some pending", done, pending, total)
	}
	if must(t, mfs, "dynago_handoff_no_progress_seconds", nil) < 0 {
		t.Fatal("negative time without progress")
	}
	// n1's own share, by direction; exact while nothing is done yet.
	var wantIn, wantOut float64
	for _, tr := range pl.Transfers {
		if tr.To == "n1" {
			wantIn++
		}
		if tr.From == "n1" {
			wantOut++
		}
	}
	in := must(t, mfs, "dynago_handoff_pending_transfers", map[string]string{"direction": "in"})
	out := must(t, mfs, "dynago_handoff_pending_transfers", map[string]string{"direction": "out"})
	if in > wantIn || out > wantOut || (pending == total && (in != wantIn || out != wantOut)) {
		t.Errorf("n1's pending transfers in %v out %v; the plan gives it in %v out %v", in, out, wantIn, wantOut)
	}

	testutil.Eventually(t, 120*time.Second, "the leave completes on n1", func() bool {
		return must(t, scrape(t, n1), "dynago_handoff_in_progress", nil) == 0
	})
	if n1.Ring().Contains("n4") {
		t.Fatal("n4 still in n1's ring after the handoff")
	}
	mfs = scrape(t, n1)
	for _, state := range []string{"done", "pending"} {
		if v := must(t, mfs, "dynago_handoff_transfers", map[string]string{"state": state}); v != 0 {
			t.Errorf("transfers %s = %v once no change runs", state, v)
		}
	}
	if v := must(t, mfs, "dynago_handoff_no_progress_seconds", nil); v != 0 {
		t.Errorf("no_progress_seconds = %v once no change runs", v)
	}
	// The donors' counters, read as a user sums them across nodes.
	var keys, bytesSent, partitions float64
	testutil.Eventually(t, 5*time.Second, "the donors' counters cover every transfer", func() bool {
		keys, bytesSent, partitions = 0, 0, 0
		for _, s := range srvs {
			m := scrape(t, s)
			keys += must(t, m, "dynago_handoff_keys_sent_total", nil)
			bytesSent += must(t, m, "dynago_handoff_bytes_sent_total", nil)
			partitions += must(t, m, "dynago_handoff_partitions_sent_total", nil)
		}
		return partitions >= total
	})
	if keys == 0 || bytesSent <= keys {
		t.Errorf("handoff sent %v keys in %v bytes", keys, bytesSent)
	}
	if v := must(t, scrape(t, n4), "dynago_handoff_keys_sent_total", nil); v == 0 {
		t.Error("n4 left without pushing a key")
	}
	// n4 left the ring: n1 no longer exports it, and still exports n2.
	mfs = scrape(t, n1)
	for _, name := range []string{"dynago_peer_rpc_duration_seconds", "dynago_peer_rpc_failures_total"} {
		if s := seriesOf(mfs, name, map[string]string{"peer": "n4"}); len(s) != 0 {
			t.Errorf("%s has %d series for n4, which left", name, len(s))
		}
	}
	if _, ok := sum(mfs, "dynago_peer_rpc_duration_seconds", map[string]string{"peer": "n2"}); !ok {
		t.Error("n1 stopped exporting n2")
	}
}

// TestRequestSeriesExistBeforeTheFirstRequest: a freshly started node
// exports its request counters and latency histograms at 0, so that an
// alert or dashboard has series to read before traffic arrives.
func TestRequestSeriesExistBeforeTheFirstRequest(t *testing.T) {
	s := startCluster(t, 1, nil)[0]
	mf := scrape(t, s)
	for _, op := range []string{"get", "put", "delete"} {
		found := false
		for _, m := range mf["dynago_requests_total"].GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["op"] == op && labels["code"] == "ok" && m.GetCounter().GetValue() == 0 {
				found = true
			}
		}
		if !found {
			t.Errorf("no dynago_requests_total{op=%q,code=\"ok\"} 0 before any request", op)
		}
		found = false
		for _, m := range mf["dynago_request_duration_seconds"].GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == op && m.GetHistogram().GetSampleCount() == 0 {
				found = true
			}
		}
		if !found {
			t.Errorf("no empty dynago_request_duration_seconds{op=%q} before any request", op)
		}
	}
}
