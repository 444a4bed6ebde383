package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Target executes one operation. It is the extension point for how
// requests reach the cluster (ClientTarget enters at a random node; a
// client-side router would be another Target). Do must be safe for
// concurrent use. A nil error is success; an error wrapping ErrNotFound is
// a successful read of a missing or deleted key; any other error is a
// failure.
type Target interface {
	Do(ctx context.Context, op Op, key string, value []byte) error
}

// Config describes a run. Exactly one of Duration and Ops bounds it.
type Config struct {
	Mix       Mix
	Keys      int  // number of distinct keys, bench-0..bench-(Keys-1); >= 1
	Dist      Dist // how keys are drawn
	ValueSize int  // bytes per put, >= 0
	Seed      uint64

	// Concurrency is the number of closed-loop workers, and of preload
	// workers; >= 1.
	Concurrency int
	// Rate > 0 selects the open loop: operations per second issued on a
	// fixed schedule. 0 is the closed loop.
	Rate float64
	// MaxOutstanding bounds the requests in flight in the open loop; >= 1
	// when Rate > 0.
	MaxOutstanding int

	Duration time.Duration // stop issuing after this long; 0 = bounded by Ops
	Ops      int64         // stop after this many operations; 0 = bounded by Duration

	// Preload puts every key once through the Target before measuring,
	// so that gets find values and deletes find something to delete.
	Preload bool

	// Progress, when set, is called from its own goroutine about every
	// ProgressEvery while measuring, and once at the end.
	Progress      func(Progress)
	ProgressEvery time.Duration // default 200ms
}

// Progress is the state of a running measurement.
type Progress struct {
	Done    int64         // operations completed
	Elapsed time.Duration // since measuring started
}

func (c *Config) validate() error {
	switch {
	case c.Mix.total() <= 0:
		return fmt.Errorf("%w: the mix has no operation", ErrConfig)
	case c.Keys < 1:
		return fmt.Errorf("%w: keys must be >= 1, got %d", ErrConfig, c.Keys)
	case c.ValueSize < 0:
		return fmt.Errorf("%w: value size must be >= 0, got %d", ErrConfig, c.ValueSize)
	case c.Concurrency < 1:
		return fmt.Errorf("%w: concurrency must be >= 1, got %d", ErrConfig, c.Concurrency)
	case c.Rate < 0:
		return fmt.Errorf("%w: rate must be >= 0, got %v", ErrConfig, c.Rate)
	case c.Rate > 0 && c.MaxOutstanding < 1:
		return fmt.Errorf("%w: max outstanding must be >= 1, got %d", ErrConfig, c.MaxOutstanding)
	case c.Duration < 0 || c.Ops < 0:
		return fmt.Errorf("%w: duration and ops must be positive", ErrConfig)
	case (c.Duration > 0) == (c.Ops > 0):
		return fmt.Errorf("%w: give exactly one of duration and ops", ErrConfig)
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = 200 * time.Millisecond
	}
	return nil
}

// Summary is the outcome of one operation type.
type Summary struct {
	Op       Op
	Count    uint64 // completed requests: successes, not-founds and errors
	Errors   uint64
	NotFound uint64 // successful reads of a missing or deleted key
	// Latency of successful requests (not-founds included).
	Mean, Std, P50, P99, P999, Max time.Duration
	OpsPerSec                      float64 // successful requests per second of the run
	FirstError                     string  // the first error seen, to tell what failed
	Latency                        *Histogram
}

// Result is the outcome of a run.
type Result struct {
	Elapsed time.Duration // from the first request to the last answer
	// ClientCPU is the CPU time (user and system) the load generator's
	// process spent while measuring, preload excluded; 0 where the OS does
	// not report it. ClientCPU ÷ the requests issued is what the load
	// generator itself costs per request, to be subtracted from a
	// machine-wide CPU per operation when both share a machine.
	ClientCPU time.Duration
	// Ops has one Summary per operation with a positive weight in the
	// mix, in Op order.
	Ops []Summary
	// Interrupted is set when the context ended the run early; requests
	// cut short by it are not counted.
	Interrupted bool
}

// recorder is one worker's private tally, merged when the run ends.
type recorder struct {
	lat      [numOps]*Histogram
	errs     [numOps]uint64
	notFound [numOps]uint64
	firstErr [numOps]string
}

func newRecorder() *recorder {
	r := &recorder{}
	for i := range r.lat {
		r.lat[i] = NewHistogram()
	}
	return r
}

// do runs one operation and records it with its latency measured from
// start. It reports false when the run's context cut the request short.
func (r *recorder) do(ctx context.Context, t Target, op Op, key string, value []byte, start time.Time) bool {
	err := t.Do(ctx, op, key, value)
	lat := time.Since(start)
	switch {
	case err == nil:
		r.lat[op].Record(lat)
	case errors.Is(err, ErrNotFound):
		r.lat[op].Record(lat)
		r.notFound[op]++
	case ctx.Err() != nil:
		return false
	default:
		r.errs[op]++
		if r.firstErr[op] == "" {
			r.firstErr[op] = err.Error()
		}
	}
	return true
}

// Run preloads if asked, then runs the workload against t and returns what
// it measured. When ctx ends first, Run returns what was measured so far
// with Result.Interrupted set; the error is only for a bad Config or a
// failed preload.
func Run(ctx context.Context, c Config, t Target) (*Result, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	value := make([]byte, c.ValueSize)
	vr := rand.New(rand.NewPCG(c.Seed, ^uint64(0)))
	for i := range value {
		// Printable, so that a value read back with the CLI is readable.
		value[i] = 'a' + byte(vr.IntN(26))
	}
	if c.Preload {
		if err := preload(ctx, &c, t, value); err != nil {
			return nil, err
		}
	}

	var done atomic.Int64
	cpu0 := processCPU()
	start := time.Now()
	stopProgress := func() {}
	if c.Progress != nil {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			tick := time.NewTicker(c.ProgressEvery)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					c.Progress(Progress{Done: done.Load(), Elapsed: time.Since(start)})
				}
			}
		})
		stopProgress = func() { close(stop); wg.Wait() }
	}

	var recs []*recorder
	if c.Rate > 0 {
		recs = openLoop(ctx, &c, t, value, start, &done)
	} else {
		recs = closedLoop(ctx, &c, t, value, start, &done)
	}
	elapsed := time.Since(start)
	stopProgress()
	if c.Progress != nil {
		c.Progress(Progress{Done: done.Load(), Elapsed: elapsed})
	}
	res := summarize(&c, recs, elapsed, ctx.Err() != nil)
	if cpu0 > 0 {
		res.ClientCPU = processCPU() - cpu0
	}
	return res, nil
}

// ClientCPUPerOp is ClientCPU divided by the requests issued (every
// operation's Count), 0 when either is unknown.
func (r *Result) ClientCPUPerOp() time.Duration {
	var n uint64
	for _, s := range r.Ops {
		n += s.Count
	}
	if n == 0 || r.ClientCPU <= 0 {
		return 0
	}
	return r.ClientCPU / time.Duration(n)
}

func closedLoop(ctx context.Context, c *Config, t Target, value []byte, start time.Time, done *atomic.Int64) []*recorder {
	deadline := start.Add(c.Duration)
	var claimed atomic.Int64
	recs := make([]*recorder, c.Concurrency)
	var wg sync.WaitGroup
	for w := range recs {
		rec := newRecorder()
		recs[w] = rec
		gen := newGenerator(c, uint64(w)+1)
		wg.Go(func() {
			for ctx.Err() == nil {
				if c.Ops > 0 && claimed.Add(1) > c.Ops {
					return
				}
				now := time.Now()
				if c.Duration > 0 && !now.Before(deadline) {
					return
				}
				op, key := gen.next()
				if rec.do(ctx, t, op, key, value, now) {
					done.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return recs
}

// job is one open-loop request: what to do and when it was due.
type job struct {
	op  Op
	key string
	due time.Time
}

func openLoop(ctx context.Context, c *Config, t Target, value []byte, start time.Time, done *atomic.Int64) []*recorder {
	jobs := make(chan job)
	recs := make([]*recorder, c.MaxOutstanding)
	var wg sync.WaitGroup
	for w := range recs {
		rec := newRecorder()
		recs[w] = rec
		wg.Go(func() {
			for j := range jobs {
				// Latency from the due time, not from now: the wait for a
				// free worker is the server's slowness too.
				if rec.do(ctx, t, j.op, j.key, value, j.due) {
					done.Add(1)
				}
			}
		})
	}
	schedule(ctx, c, start, jobs)
	close(jobs)
	wg.Wait()
	return recs
}

// schedule sends request i, due at start + i/Rate, to jobs. Due times come
// from i alone, never from when the previous send went through, so a
// stalled server cannot push the schedule back: late requests go out at
// once, still carrying their original due time.
func schedule(ctx context.Context, c *Config, start time.Time, jobs chan<- job) {
	gen := newGenerator(c, 0)
	interval := float64(time.Second) / c.Rate
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for i := int64(0); c.Ops == 0 || i < c.Ops; i++ {
		offset := time.Duration(float64(i) * interval)
		if c.Duration > 0 && offset >= c.Duration {
			return
		}
		due := start.Add(offset)
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		op, key := gen.next()
		select {
		case <-ctx.Done():
			return
		case jobs <- job{op: op, key: key, due: due}:
		}
	}
}

// preload puts every key once, Concurrency at a time, and fails on the
// first error: measuring a cluster that cannot take the writes would
// measure nothing useful.
func preload(ctx context.Context, c *Config, t Target, value []byte) error {
	var next atomic.Int64
	errs := make(chan error, c.Concurrency)
	var wg sync.WaitGroup
	for range c.Concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				k := int(next.Add(1) - 1)
				if k >= c.Keys {
					return
				}
				if err := t.Do(ctx, OpPut, Key(k), value); err != nil {
					errs <- fmt.Errorf("loadgen: preload of %s: %w", Key(k), err)
					next.Store(int64(c.Keys)) // stop the other workers
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}

func summarize(c *Config, recs []*recorder, elapsed time.Duration, interrupted bool) *Result {
	res := &Result{Elapsed: elapsed, Interrupted: interrupted}
	for op := range numOps {
		if c.Mix[op] <= 0 {
			continue
		}
		h := NewHistogram()
		s := Summary{Op: op}
		for _, r := range recs {
			h.Merge(r.lat[op])
			s.Errors += r.errs[op]
			s.NotFound += r.notFound[op]
			if s.FirstError == "" {
				s.FirstError = r.firstErr[op]
			}
		}
		s.Count = h.Count() + s.Errors
		s.Mean, s.Std, s.Max = h.Mean(), h.Std(), h.Max()
		s.P50, s.P99, s.P999 = h.Quantile(0.5), h.Quantile(0.99), h.Quantile(0.999)
		if elapsed > 0 {
			s.OpsPerSec = float64(h.Count()) / elapsed.Seconds()
		}
		s.Latency = h
		res.Ops = append(res.Ops, s)
	}
	return res
}
