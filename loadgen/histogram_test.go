package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// exactQuantile is the reference: the value of rank ceil(q*n).
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	rank := max(int(math.Ceil(q*float64(len(sorted)))), 1)
	return sorted[rank-1]
}

func within(got, want time.Duration, rel float64) bool {
	return math.Abs(float64(got-want)) <= rel*float64(want)
}

func TestHistogramQuantilesWithinOnePercent(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var vals []time.Duration
	h := NewHistogram()
	for range 100_000 {
		// Log-normal-ish latencies from ~10µs to seconds, plus small
		// exact values.
		v := time.Duration(math.Exp(r.NormFloat64()*2 + 13))
		if r.IntN(50) == 0 {
			v = time.Duration(r.IntN(300))
		}
		vals = append(vals, v)
		h.Record(v)
	}
	slices.Sort(vals)
	for _, q := range []float64{0, 0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1} {
		got, want := h.Quantile(q), exactQuantile(vals, q)
		if !within(got, want, 0.01) {
			t.Errorf("Quantile(%v) = %v, exact %v: more than 1%% off", q, got, want)
		}
	}
	if h.Max() != vals[len(vals)-1] || h.Min() != vals[0] {
		t.Errorf("min, max = %v, %v, want %v, %v", h.Min(), h.Max(), vals[0], vals[len(vals)-1])
	}
	if h.Count() != uint64(len(vals)) {
		t.Errorf("count = %d, want %d", h.Count(), len(vals))
	}
}

func TestHistogramMeanStd(t *testing.T) {
	h := NewHistogram()
	// 2, 4, 4, 4, 5, 5, 7, 9 ms: mean 5ms, population std 2ms.
	for _, ms := range []int{2, 4, 4, 4, 5, 5, 7, 9} {
		h.Record(time.Duration(ms) * time.Millisecond)
	}
	if h.Mean() != 5*time.Millisecond || h.Std() != 2*time.Millisecond {
		t.Fatalf("mean, std = %v, %v, want 5ms, 2ms", h.Mean(), h.Std())
	}
	empty := NewHistogram()
	if empty.Mean() != 0 || empty.Std() != 0 || empty.Quantile(0.5) != 0 || empty.Max() != 0 {
		t.Fatal("an empty histogram must report zeros")
	}
}

func TestHistogramMergeEqualsRecordingTogether(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	all, parts := NewHistogram(), []*Histogram{NewHistogram(), NewHistogram(), NewHistogram()}
	for i := range 30_000 {
		// Each part has its own range, so merging must combine unlike
		// octaves and means.
		v := time.Duration(r.IntN(1000*(i%3+1)*(i%3+1))) * time.Microsecond
		all.Record(v)
		parts[i%3].Record(v)
	}
	merged := NewHistogram()
	merged.Merge(NewHistogram()) // merging an empty one changes nothing
	for _, p := range parts {
		merged.Merge(p)
	}
	if merged.Count() != all.Count() || merged.Min() != all.Min() || merged.Max() != all.Max() {
		t.Fatalf("merged count/min/max = %d/%v/%v, want %d/%v/%v",
			merged.Count(), merged.Min(), merged.Max(), all.Count(), all.Min(), all.Max())
	}
	for _, q := range []float64{0.5, 0.99, 0.999} {
		if merged.Quantile(q) != all.Quantile(q) {
			t.Errorf("merged Quantile(%v) = %v, want %v", q, merged.Quantile(q), all.Quantile(q))
		}
	}
	if !within(merged.Mean(), all.Mean(), 1e-9) || !within(merged.Std(), all.Std(), 1e-9) {
		t.Errorf("merged mean, std = %v, %v, want %v, %v", merged.Mean(), merged.Std(), all.Mean(), all.Std())
	}
}

func TestHistogramExtremeValues(t *testing.T) {
	h := NewHistogram()
	h.Record(-5)
	h.Record(math.MaxInt64)
	if h.Quantile(0) != 0 || h.Quantile(1) != math.MaxInt64 {
		t.Fatalf("quantiles = %v, %v, want 0 and MaxInt64", h.Quantile(0), h.Quantile(1))
	}
}

func TestHistogramBinsCoverEveryValueOnce(t *testing.T) {
	h := NewHistogram()
	vals := []time.Duration{900 * time.Microsecond, time.Millisecond, time.Millisecond, 3 * time.Millisecond, 40 * time.Millisecond}
	for _, v := range vals {
		h.Record(v)
	}
	bins := h.Bins(4)
	var total uint64
	for i, b := range bins {
		total += b.Count
		if i > 0 && b.UpTo <= bins[i-1].UpTo {
			t.Fatalf("bins not increasing: %v", bins)
		}
	}
	if total != uint64(len(vals)) {
		t.Fatalf("bins hold %d values, recorded %d: %v", total, len(vals), bins)
	}
	if first, last := bins[0], bins[len(bins)-1]; first.Count == 0 || last.Count != 1 || last.UpTo < 40*time.Millisecond || last.UpTo > 48*time.Millisecond {
		t.Fatalf("first %v last %v: want the min in the first bin and 40ms alone in a last bin ending within 2^(1/4) of it", first, last)
	}
	// 1ms twice lands in one bin, and a bin that holds it ends at or after 1ms.
	for _, b := range bins {
		if b.UpTo >= time.Millisecond {
			if b.Count < 2 {
				t.Fatalf("the bin ending at %v holds %d values; 1ms was recorded twice: %v", b.UpTo, b.Count, bins)
			}
			break
		}
	}
	if NewHistogram().Bins(4) != nil {
		t.Fatal("empty histogram has bins")
	}
}
