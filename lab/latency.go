package lab

import (
	"errors"
	"sync"
	"time"

	"github.com/dynago/dynago/loadgen"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

// Latency is the summary of one measured series that the latency
// experiments (coordination, durability-latency) report; its fields are
// inlined in their JSON points.
type Latency struct {
	Count  uint64  `json:"count"`
	Errors int     `json:"errors"`
	MeanMS float64 `json:"mean_ms"`
	P50MS  float64 `json:"p50_ms"`
	P99MS  float64 `json:"p99_ms"`
	P999MS float64 `json:"p999_ms"`
	MaxMS  float64 `json:"max_ms"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// tally collects one series: the latencies of the requests that succeeded,
// the count of those that failed and the first failure's message. It is
// safe for an open loop's concurrent requests.
type tally struct {
	mu    sync.Mutex
	h     *loadgen.Histogram
	errs  int
	first string
}

func newTally() *tally { return &tally{h: loadgen.NewHistogram()} }

func (t *tally) record(lat time.Duration, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		if t.errs++; t.first == "" {
			t.first = err.Error()
		}
		return
	}
	t.h.Record(lat)
}

// timed runs one live request and records its wall-clock latency.
func (t *tally) timed(f func() error) {
	t0 := time.Now()
	err := f()
	t.record(time.Since(t0), err)
}

func (t *tally) latency() Latency {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.h
	return Latency{Count: h.Count(), Errors: t.errs, MeanMS: ms(h.Mean()), P50MS: ms(h.Quantile(0.5)),
		P99MS: ms(h.Quantile(0.99)), P999MS: ms(h.Quantile(0.999)), MaxMS: ms(h.Max())}
}

// paced runs n simulated requests at rate per second from now, each
// chosen by req(i) when it is due, and waits for every answer; t records
// their latencies in virtual time, a reply other than ok as a failure.
func (d *driver) paced(t *tally, n int, rate float64, req func(i int) (ring.NodeID, node.Request)) error {
	start := d.c.Now()
	for i := range n {
		d.c.At(start+time.Duration(float64(i)/rate*float64(time.Second)), func() {
			via, r := req(i)
			d.submit(via, r, func(rep node.Reply, lat time.Duration) {
				var err error
				if rep.Code != node.CodeOK {
					err = errors.New(rep.Code.String())
				}
				t.record(lat, err)
			})
		})
	}
	d.runTo(start + time.Duration(float64(n)/rate*float64(time.Second)))
	return d.drain(30 * time.Second)
}
