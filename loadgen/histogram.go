package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// Histogram records durations in log-linear buckets, HDR-style: values
// below 256ns are exact, and every power of two above is split into 128
// equal buckets, so a reported value is within 1/256 (0.4%) of the true
// one. Octaves are allocated when first used, so a histogram of typical
// latencies (a few octaves) costs a few KiB however wide the range.
//
// A Histogram is not safe for concurrent use: each worker records into its
// own and they are merged at the end, which keeps recording free of
// contention.
type Histogram struct {
	octaves [maxOctave + 1]*[subBuckets * 2]uint64
	n       uint64
	mean    float64 // running mean and sum of squared deviations (Welford),
	m2      float64 // mergeable without the cancellation of sum/sum-of-squares
	min     int64
	max     int64
}

const (
	subBits    = 7
	subBuckets = 1 << subBits // buckets per octave above the exact range
	exactLimit = subBuckets * 2
	// maxOctave covers every positive int64.
	maxOctave = 63 - subBits
)

// NewHistogram returns an empty Histogram.
func NewHistogram() *Histogram { return &Histogram{} }

// locate returns the octave and the bucket within it of v >= 0. Octave 0
// holds 0..255 exactly; octave o > 0 holds [128<<o, 256<<o) in buckets of
// width 1<<o.
func locate(v int64) (octave, bucket int) {
	if v < exactLimit {
		return 0, int(v)
	}
	o := bits.Len64(uint64(v)) - (subBits + 1)
	return o, int(v>>o) - subBuckets
}

// bounds returns the lowest value of a bucket and its width.
func bounds(octave, bucket int) (low, width int64) {
	if octave == 0 {
		return int64(bucket), 1
	}
	return int64(bucket+subBuckets) << octave, 1 << octave
}

// Record adds one duration. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	o, b := locate(v)
	if h.octaves[o] == nil {
		h.octaves[o] = new([subBuckets * 2]uint64)
	}
	h.octaves[o][b]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	delta := float64(v) - h.mean
	h.mean += delta / float64(h.n)
	h.m2 += delta * (float64(v) - h.mean)
}

// Merge adds every value recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, oct := range o.octaves {
		if oct == nil {
			continue
		}
		if h.octaves[i] == nil {
			h.octaves[i] = new([subBuckets * 2]uint64)
		}
		for j, c := range oct {
			h.octaves[i][j] += c
		}
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	// Chan et al.'s parallel combination of Welford's accumulators.
	n := float64(h.n + o.n)
	delta := o.mean - h.mean
	h.m2 += o.m2 + delta*delta*float64(h.n)*float64(o.n)/n
	h.mean += delta * float64(o.n) / n
	h.n += o.n
}

// Count returns the number of values recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Mean returns the exact mean, 0 when empty.
func (h *Histogram) Mean() time.Duration { return time.Duration(math.Round(h.mean)) }

// Std returns the exact population standard deviation, 0 when empty.
func (h *Histogram) Std() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(math.Round(math.Sqrt(h.m2 / float64(h.n))))
}

// Min and Max return the exact extremes, 0 when empty.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Max returns the largest value recorded, 0 when empty.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Quantile returns the value at quantile q in [0, 1]: the recorded value of
// rank ceil(q*Count) (the smallest for q = 0), within the histogram's
// 0.4% resolution, and never outside [Min, Max]. It is 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := max(uint64(math.Ceil(q*float64(h.n))), 1)
	switch {
	case rank >= h.n:
		return time.Duration(h.max) // known exactly
	case rank == 1:
		return time.Duration(h.min)
	}
	var seen uint64
	for o, oct := range h.octaves {
		if oct == nil {
			continue
		}
		for b, c := range oct {
			seen += c
			if seen >= rank {
				low, width := bounds(o, b)
				mid := low + (width-1)/2
				return time.Duration(min(max(mid, h.min), h.max))
			}
		}
	}
	return time.Duration(h.max)
}

// Bin is one bar of a coarse latency histogram: Count values fell in
// (previous bin's UpTo, UpTo].
type Bin struct {
	UpTo  time.Duration
	Count uint64
}

// Bins returns the distribution in bins that grow geometrically, perOctave
// of them per power of two, from the bin holding Min to the one holding
// Max, empty bins between included so that a chart of them has a true
// x-axis. Latencies spread over orders of magnitude; equal-width bins would
// put the body in one bar and the tail in hundreds of empty ones. It is
// nil when empty.
func (h *Histogram) Bins(perOctave int) []Bin {
	if h.n == 0 {
		return nil
	}
	perOctave = max(perOctave, 1)
	// Bin i holds (2^((i-1)/perOctave), 2^(i/perOctave)] nanoseconds.
	index := func(v int64) int {
		if v <= 1 {
			return 0
		}
		return int(math.Ceil(math.Log2(float64(v)) * float64(perOctave)))
	}
	lo, hi := index(h.min), index(h.max)
	counts := make([]uint64, hi-lo+1)
	for o, oct := range h.octaves {
		if oct == nil {
			continue
		}
		for b, c := range oct {
			if c == 0 {
				continue
			}
			low, width := bounds(o, b)
			mid := min(max(low+(width-1)/2, h.min), h.max)
			counts[index(mid)-lo] += c
		}
	}
	out := make([]Bin, len(counts))
	for i, c := range counts {
		up := math.Exp2(float64(lo+i) / float64(perOctave))
		out[i] = Bin{UpTo: time.Duration(math.Round(up)), Count: c}
	}
	return out
}
