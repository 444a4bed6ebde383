package lab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"
)

// checkSVG asserts that path is a non-trivial SVG document.
func checkSVG(t *testing.T, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("chart: %v", err)
	}
	dec := xml.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("chart %s: no <svg> root element: %v", path, err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local != "svg" {
				t.Fatalf("chart %s: root element is <%s>, want <svg>", path, se.Name.Local)
			}
			break
		}
	}
	// The rest must parse too: a truncated file is not a chart.
	for {
		if _, err := dec.Token(); err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("chart %s: %v", path, err)
			}
			break
		}
	}
	if len(raw) < 1000 {
		t.Fatalf("chart %s: only %d bytes", path, len(raw))
	}
}

// lines decodes the JSON lines of buf into one map per line.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(buf)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("bad JSON line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func testOptions(t *testing.T) (Options, *bytes.Buffer) {
	var buf bytes.Buffer
	o := Options{Out: t.TempDir(), Seed: 3, JSON: &buf}
	if err := o.defaults(); err != nil {
		t.Fatal(err)
	}
	return o, &buf
}

func TestBalanceSim(t *testing.T) {
	o, buf := testOptions(t)
	cfg := balanceConfig{nodes: 8, partitions: []int{64, 256}, rates: []float64{50, 2000}, window: 500 * time.Millisecond,
		windows: 1, keys: 5000, dists: []string{"uniform", "zipfian"}, threshold: 0.15}
	pts, err := balanceSim(context.Background(), o, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 2*2*2 {
		t.Fatalf("got %d points, want 8", len(pts))
	}
	for _, p := range pts {
		if p.Imbalance < 0 || p.Imbalance > 1 || math.IsNaN(p.Imbalance) {
			t.Errorf("%+v: imbalance outside [0,1]", p)
		}
		// Every answered request is load on at least one node, so the
		// busiest node carries at least the mean.
		if p.MaxOverMean < 1 {
			t.Errorf("%+v: busiest node below the mean", p)
		}
		if want := int(p.Rate * p.WindowS); p.Requests < want*9/10 {
			t.Errorf("%+v: %d requests answered, want about %d", p, p.Requests, want)
		}
	}
	// With uniform keys, 1,000 requests per window leave the busiest node
	// close to the mean; 25 leave it far off (sampling noise): the
	// paper's imbalance falling with load.
	for _, p := range pts {
		if p.Dist == "uniform" && p.Rate == 2000 && p.MaxOverMean > 1.5 {
			t.Errorf("Q=%d uniform at 2000/s: busiest node %.2f × the mean", p.Partitions, p.MaxOverMean)
		}
	}
	if got := lines(t, buf); len(got) != len(pts) || got[0]["experiment"] != "balance" {
		t.Fatalf("JSON lines: %v", got)
	}
	path, err := balanceChart(o, pts)
	if err != nil {
		t.Fatal(err)
	}
	checkSVG(t, path)
}

func TestOutOfBalance(t *testing.T) {
	nodes := []string{"a", "b", "c", "d"}
	if f, m := outOfBalance(map[string]int{"a": 10, "b": 10, "c": 10, "d": 10}, nodes, 0.15); f != 0 || m != 1 {
		t.Errorf("even load: %v %v", f, m)
	}
	// Mean 10: a at 13 is 30 % above, b at 11 is 10 % above.
	if f, _ := outOfBalance(map[string]int{"a": 13, "b": 11, "c": 8, "d": 8}, nodes, 0.15); f != 0.25 {
		t.Errorf("one of four above 15 %%: %v", f)
	}
	if f, _ := outOfBalance(map[string]int{}, nodes, 0.15); f != 0 {
		t.Errorf("no load: %v", f)
	}
}

func TestDivergenceSim(t *testing.T) {
	o, _ := testOptions(t)
	// One client, one request at a time, no failures: every read returns
	// the one version the previous write left.
	seq := divergenceConfig{nodes: 5, clients: 1, keys: 5, duration: 2 * time.Second,
		thinkMin: time.Millisecond, thinkMax: 5 * time.Millisecond}
	p, err := divergenceSim(o, seq, false)
	if err != nil {
		t.Fatal(err)
	}
	if p.Reads < 50 || p.Shares[0] != 1 || p.Failed != 0 {
		t.Fatalf("sequential writer: %+v, want every read one version", p)
	}
	// Many clients on few carts, with failures: siblings appear, and the
	// shares still sum to 1.
	busy := divergenceConfig{nodes: 5, clients: 12, keys: 4, duration: 4 * time.Second,
		thinkMin: time.Millisecond, thinkMax: 5 * time.Millisecond}
	for _, failures := range []bool{false, true} {
		p, err := divergenceSim(o, busy, failures)
		if err != nil {
			t.Fatal(err)
		}
		sum := 0.0
		for _, s := range p.Shares {
			sum += s
		}
		if p.Reads == 0 || math.Abs(sum-1) > 1e-9 {
			t.Fatalf("failures=%v: %+v: shares sum to %v", failures, p, sum)
		}
		if p.Shares[0] == 1 {
			t.Errorf("failures=%v: 12 writers on 4 carts never diverged: %+v", failures, p)
		}
		if failures && p.FaultsRun == 0 {
			t.Errorf("no fault injected: %+v", p)
		}
	}
	path, err := divergenceChart(o, []DivergencePoint{p})
	if err != nil {
		t.Fatal(err)
	}
	checkSVG(t, path)
}

func TestCoordinationSim(t *testing.T) {
	o, _ := testOptions(t)
	pts, err := coordinationSim(context.Background(), o, coordinationConfig{nodes: 6, requests: 300, rate: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 4 {
		t.Fatalf("got %d points, want 4", len(pts))
	}
	mean := map[string]float64{}
	for _, p := range pts {
		if p.Errors != 0 || p.Count != 300 || p.P999MS < p.MeanMS || p.MeanMS <= 0 {
			t.Errorf("implausible point %+v", p)
		}
		mean[p.Route+" "+p.Op] = p.MeanMS
	}
	// Client-driven writes skip the forwarding hop that server-driven
	// writes entering outside the preference list pay.
	if mean["client put"] >= mean["server put"] {
		t.Errorf("client-driven put mean %.2f ms not below server-driven %.2f ms", mean["client put"], mean["server put"])
	}
	path, err := coordinationChart(o, pts)
	if err != nil {
		t.Fatal(err)
	}
	checkSVG(t, path)
}

func TestDurabilitySim(t *testing.T) {
	o, _ := testOptions(t)
	pts, err := durabilitySim(context.Background(), o, durabilityConfig{nodes: 5, n: 3, requests: 300, rate: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 6 {
		t.Fatalf("got %d points, want 6", len(pts))
	}
	p50 := map[string]float64{}
	for _, p := range pts {
		if p.Errors != 0 || p.Count != 300 {
			t.Errorf("implausible point %+v", p)
		}
		p50[p.Fsync+string(rune('0'+p.W))] = p.P50MS
	}
	for _, f := range []string{"on", "off"} {
		if !(p50[f+"1"] < p50[f+"2"] && p50[f+"2"] < p50[f+"3"]) {
			t.Errorf("fsync %s: p50 does not grow with W: %v", f, p50)
		}
	}
	if p50["off1"] >= p50["on1"] {
		t.Errorf("W=1: fsync off p50 %.2f ms not below fsync on %.2f ms", p50["off1"], p50["on1"])
	}
	path, err := durabilityChart(o, pts)
	if err != nil {
		t.Fatal(err)
	}
	checkSVG(t, path)
}

func TestRunRejects(t *testing.T) {
	if _, err := Run(context.Background(), "nope", Options{Out: t.TempDir()}); !errors.Is(err, ErrUnknown) {
		t.Errorf("unknown experiment: %v", err)
	}
	if _, err := Run(context.Background(), "balance", Options{}); !errors.Is(err, ErrOptions) {
		t.Errorf("no --out: %v", err)
	}
	for _, bad := range []string{",", " , "} {
		if _, err := ParseTarget(bad); !errors.Is(err, ErrOptions) {
			t.Errorf("ParseTarget(%q): %v", bad, err)
		}
	}
	if tg, err := ParseTarget("127.0.0.1:1, http://x:2"); err != nil || len(tg.Addrs) != 2 || tg.Engine() != "live" {
		t.Errorf("ParseTarget addresses: %+v %v", tg, err)
	}
	if tg, _ := ParseTarget("dev"); tg.Engine() != "dev" {
		t.Errorf("ParseTarget(dev): %+v", tg)
	}
}

func TestRequestsServedSumsEverySeries(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, `# HELP dynago_requests_total Client requests.
# TYPE dynago_requests_total counter
dynago_requests_total{code="ok",op="get"} 12
dynago_requests_total{code="not_found",op="get"} 3
dynago_requests_total{code="ok",op="put"} 5
dynago_requests_total_other 100
dynago_http_requests_total{route="kv"} 40
`)
	}))
	defer srv.Close()
	got, err := requestsServed(context.Background(), srv.Client(), srv.URL)
	if err != nil || got != 20 {
		t.Fatalf("requestsServed = %v, %v; want 20", got, err)
	}
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "dynago_requests_total{op=\"get\"} lots\n")
	}))
	defer bad.Close()
	if _, err := requestsServed(context.Background(), bad.Client(), bad.URL); err == nil {
		t.Fatal("a malformed sample was accepted")
	}
}

// The simulator engine is deterministic: a seed gives the same points, so
// the committed JSON under docs/experiments/sim can be checked by rerunning.
func TestSimulatorRunsAreReproducible(t *testing.T) {
	o, _ := testOptions(t)
	cfg := divergenceConfig{nodes: 5, clients: 6, keys: 4, duration: time.Second, thinkMin: time.Millisecond, thinkMax: 5 * time.Millisecond}
	a, err := divergenceSim(o, cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := divergenceSim(o, cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatalf("same seed, different runs:\n%+v\n%+v", a, b)
	}
	o.Seed++
	if c, err := divergenceSim(o, cfg, true); err != nil || c == a {
		t.Fatalf("another seed gave the same run (%v): %+v", err, c)
	}
}
