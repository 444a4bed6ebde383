package transport

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/dynago/dynago/internal/testutil"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

// scrape serves reg as /metrics does and parses the text exposition, as
// Prometheus would.
func scrape(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytesReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	return mfs
}

// series returns the metrics of family name whose labels include want.
func series(mfs map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
	mf := mfs[name]
	if mf == nil {
		return nil
	}
next:
	for _, m := range mf.GetMetric() {
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

// observations sums the sample counts (histograms) or values (counters) of
// the matching series.
func observations(mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var n float64
	for _, m := range series(mfs, name, want) {
		if h := m.GetHistogram(); h != nil {
			n += float64(h.GetSampleCount())
		} else {
			n += m.GetCounter().GetValue()
		}
	}
	return n
}

// Per-peer latency is recorded for every call that went through, failures
// are counted per peer with their code, and a peer's series end when it is
// removed.
func TestPeerRPCMetrics(t *testing.T) {
	forEachMode(t, func(t *testing.T, e env) {
		reg := prometheus.NewRegistry()
		m := NewMetrics(nil)
		reg.MustRegister(m)
		sb := newSink()
		b := e.start(t, "b", sb.handle, nil)
		down := downAddr(t, e)
		a := e.start(t, "a", func([]node.Message) {}, func(c *Config) {
			c.Metrics = m
			c.PingInterval = 20 * time.Millisecond
			c.CallTimeout = 2 * time.Second
			c.Peers = map[ring.NodeID]string{"b": b.Addr(), "gone": down}
		})
		for i := range 50 {
			a.Send(fullMessage(i, "a", "b"))
		}
		sb.wait(t, 50, 10*time.Second)
		method := MethodStep
		if e.mode == ModeStream {
			method = MethodStreamSend
		}
		b1 := map[string]string{"peer": "b", "method": method}
		testutil.Eventually(t, 10*time.Second, "latency of calls to b recorded", func() bool {
			return observations(scrape(t, reg), "dynago_peer_rpc_duration_seconds", b1) > 0
		})
		if e.mode == ModeStream {
			// Stream writes have no answer: the pinger measures round trips.
			testutil.Eventually(t, 10*time.Second, "a ping round trip to b", func() bool {
				mfs := scrape(t, reg)
				return observations(mfs, "dynago_peer_rpc_duration_seconds", map[string]string{"peer": "b", "method": MethodPing}) > 0 &&
					observations(mfs, "dynago_peer_rpc_duration_seconds", map[string]string{"peer": "b", "method": MethodStreamOpen}) >= 1
			})
		}
		if n := observations(scrape(t, reg), "dynago_peer_rpc_failures_total", map[string]string{"peer": "b"}); n != 0 {
			t.Fatalf("%v failures counted for a healthy peer", n)
		}

		// A peer that refuses connections: its calls fail as Unavailable.
		a.Send(fullMessage(0, "a", "gone"))
		testutil.Eventually(t, 10*time.Second, "a failure to the down peer counted", func() bool {
			return observations(scrape(t, reg), "dynago_peer_rpc_failures_total", map[string]string{"peer": "gone", "code": "Unavailable"}) > 0
		})
		if n := observations(scrape(t, reg), "dynago_peer_rpc_duration_seconds", map[string]string{"peer": "gone"}); n != 0 {
			t.Fatalf("latency recorded for %v calls to a peer that is down", n)
		}

		// Removing the peers ends their series; b, still a peer, keeps its own.
		a.SetPeers(map[ring.NodeID]string{"b": b.Addr()})
		mfs := scrape(t, reg)
		for _, name := range []string{"dynago_peer_rpc_duration_seconds", "dynago_peer_rpc_failures_total"} {
			if s := series(mfs, name, map[string]string{"peer": "gone"}); len(s) != 0 {
				t.Errorf("%s still has %d series for a removed peer", name, len(s))
			}
		}
		if observations(mfs, "dynago_peer_rpc_duration_seconds", b1) == 0 {
			t.Error("removing another peer dropped b's series")
		}
	})
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// The daemon exports only the peers its include function names (the ring's
// members): a node that left drops out, and comes back with its counts.
func TestPeerMetricsExportOnlyIncludedPeers(t *testing.T) {
	inRing := map[ring.NodeID]bool{"b": true}
	m := NewMetrics(func(id ring.NodeID) bool { return inRing[id] })
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	m.observe("b", MethodPing, time.Millisecond, nil)
	m.observe("c", MethodPing, time.Millisecond, nil)
	m.observe("c", MethodStreamSend, 0, errors.New("boom"))
	mfs := scrape(t, reg)
	if observations(mfs, "dynago_peer_rpc_duration_seconds", map[string]string{"peer": "b"}) != 1 {
		t.Error("b, a member, is not exported")
	}
	for _, name := range []string{"dynago_peer_rpc_duration_seconds", "dynago_peer_rpc_failures_total"} {
		if s := series(mfs, name, map[string]string{"peer": "c"}); len(s) != 0 {
			t.Errorf("%s exports c, which is not a member", name)
		}
	}
	inRing["c"] = true
	mfs = scrape(t, reg)
	if observations(mfs, "dynago_peer_rpc_failures_total", map[string]string{"peer": "c", "code": "Unknown"}) != 1 {
		t.Error("c, a member again, is not exported with its count")
	}
}
