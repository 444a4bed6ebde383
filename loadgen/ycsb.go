package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynago/dynago/client"
)

// YCSB core workloads (Cooper et al., "Benchmarking Cloud Serving Systems
// with YCSB", SoCC 2010), reimplemented from the CoreWorkload of
// brianfrankcooper/YCSB so that dynago can be measured the way other
// stores are without depending on the Java tool or its Go port.
//
// What is faithful to YCSB: key names ("user" + FNV-64 of the insert
// sequence number, YCSB's "hashed" insert order), the operation
// proportions of workloads A-F, the scrambled zipfian request distribution
// (constant 0.99, zeta precomputed over 10^10 items, then hashed onto the
// records), the "latest" distribution (a zipfian over the distance from the
// most recently acknowledged insert), inserts that extend the keyspace and
// become readable only once acknowledged, and the measurement of a
// read-modify-write as READ, UPDATE and READ-MODIFY-WRITE at once.
//
// What differs, on purpose: latencies cover successful answers only (and
// not-found reads), as everywhere in this package, so failures cannot make
// a broken cluster look fast; an UPDATE is a blind write (YCSB's update
// does not read), which dynago keeps as a sibling of what is stored; and
// workload E is refused (ErrYCSBUnsupported) because dynago has no range
// scans and faking them would measure something else.

// ErrYCSBUnsupported marks a YCSB workload dynago cannot run.
var ErrYCSBUnsupported = errors.New("loadgen: YCSB workload not supported by dynago")

// YCSBOp is one of YCSB's operations, named as YCSB reports them.
type YCSBOp int

// The operations, in the order results are reported.
const (
	YCSBRead YCSBOp = iota
	YCSBUpdate
	YCSBInsert
	YCSBScan
	YCSBReadModifyWrite
	numYCSBOps
)

var ycsbOpNames = [numYCSBOps]string{"READ", "UPDATE", "INSERT", "SCAN", "READ-MODIFY-WRITE"}

func (o YCSBOp) String() string {
	if o < 0 || o >= numYCSBOps {
		return "YCSBOp(" + strconv.Itoa(int(o)) + ")"
	}
	return ycsbOpNames[o]
}

// YCSBDist is a YCSB request distribution: how the key of a read, update
// or read-modify-write is chosen.
type YCSBDist int

const (
	// YCSBZipfian is YCSB's "zipfian": the scrambled zipfian, whose hot
	// records are spread over the keyspace rather than clustered.
	YCSBZipfian YCSBDist = iota
	// YCSBLatest is YCSB's "latest": recently inserted records are the
	// hottest.
	YCSBLatest
)

func (d YCSBDist) String() string {
	if d == YCSBLatest {
		return "latest"
	}
	return "zipfian"
}

// YCSBWorkload is a YCSB CoreWorkload: operation proportions (they need not
// add up to 1) and a request distribution.
type YCSBWorkload struct {
	Name string
	// Proportions indexed by YCSBOp.
	Proportion [numYCSBOps]float64
	Dist       YCSBDist
}

// Supported returns nil when dynago can run w, and an error wrapping
// ErrYCSBUnsupported saying why not otherwise.
func (w YCSBWorkload) Supported() error {
	if w.Proportion[YCSBScan] > 0 {
		return fmt.Errorf("%w: workload %s is %.0f%% SCAN and dynago has no range scans (keys are hashed onto the ring)",
			ErrYCSBUnsupported, w.Name, 100*w.Proportion[YCSBScan]/w.total())
	}
	return nil
}

func (w YCSBWorkload) total() float64 {
	var t float64
	for _, p := range w.Proportion {
		t += p
	}
	return t
}

// String describes w as "read=0.5,update=0.5 zipfian".
func (w YCSBWorkload) String() string {
	var parts []string
	for op, p := range w.Proportion {
		if p > 0 {
			parts = append(parts, fmt.Sprintf("%s=%g", strings.ToLower(YCSBOp(op).String()), p))
		}
	}
	return strings.Join(parts, ",") + " " + w.Dist.String()
}

// YCSBWorkloadNames are the core workloads, in the order "all" runs them.
var YCSBWorkloadNames = []string{"a", "b", "c", "d", "e", "f"}

// YCSBCoreWorkload returns core workload a, b, c, d, e or f (case does not
// matter), with the proportions of YCSB's workloads/workload[a-f] files.
func YCSBCoreWorkload(name string) (YCSBWorkload, error) {
	w := YCSBWorkload{Name: strings.ToLower(name)}
	p := &w.Proportion
	switch w.Name {
	case "a": // update heavy: a session store recording recent actions
		p[YCSBRead], p[YCSBUpdate] = 0.5, 0.5
	case "b": // read mostly: photo tagging
		p[YCSBRead], p[YCSBUpdate] = 0.95, 0.05
	case "c": // read only: a user profile cache
		p[YCSBRead] = 1
	case "d": // read latest: user status updates
		p[YCSBRead], p[YCSBInsert] = 0.95, 0.05
		w.Dist = YCSBLatest
	case "e": // short ranges: threaded conversations
		p[YCSBScan], p[YCSBInsert] = 0.95, 0.05
	case "f": // read-modify-write: a user database
		p[YCSBRead], p[YCSBReadModifyWrite] = 0.5, 0.5
	default:
		return YCSBWorkload{}, fmt.Errorf("%w: YCSB workload %q (want a, b, c, d, e or f)", ErrConfig, name)
	}
	return w, nil
}

// chooseOp draws an operation with the workload's proportions from u in
// [0, 1), as YCSB's DiscreteGenerator does.
func (w YCSBWorkload) chooseOp(u float64) YCSBOp {
	x := u * w.total()
	last := YCSBRead
	for op, p := range w.Proportion {
		if p <= 0 {
			continue
		}
		last = YCSBOp(op)
		if x < p {
			return last
		}
		x -= p
	}
	return last // rounding left x just above the last proportion
}

// fnvHash64 is YCSB's Utils.fnvhash64: FNV-1a over the eight low-first
// bytes of v, made non-negative as Java's Math.abs does.
func fnvHash64(v uint64) uint64 {
	const offset, prime = 0xCBF29CE484222325, 1099511628211
	h := uint64(offset)
	for range 8 {
		h ^= v & 0xff
		v >>= 8
		h *= prime
	}
	if s := int64(h); s < 0 {
		// Java's Math.abs; Long.MIN_VALUE stays itself, whose magnitude
		// is what uint64 conversion gives.
		return uint64(-s)
	}
	return h
}

// YCSBKey is YCSB's buildKeyName for record keynum with the default
// insertorder=hashed and zeropadding=1: "user" followed by the decimal
// FNV-64 hash of keynum, so that consecutive inserts land far apart.
func YCSBKey(keynum uint64) string {
	return "user" + strconv.FormatUint(fnvHash64(keynum), 10)
}

// YCSBZipfianConstant is YCSB's ZIPFIAN_CONSTANT, the skew of its request
// distributions.
const YCSBZipfianConstant = 0.99

// The scrambled zipfian draws from a zipfian over this many items (YCSB's
// ScrambledZipfianGenerator.ITEM_COUNT, plus one because YCSB's maximum is
// inclusive) whose zeta YCSB precomputed, then hashes the draw onto the
// records: computing zeta over 10^10 terms at start would take minutes.
const (
	scrambledItems = 10_000_000_000 + 1
	scrambledZetan = 26.46902820178302
)

// zeta returns initial + sum over i in [from, to) of 1/(i+1)^theta, YCSB's
// zetastatic.
func zeta(from, to uint64, theta, initial float64) float64 {
	sum := initial
	for i := from; i < to; i++ {
		sum += 1 / math.Pow(float64(i+1), theta)
	}
	return sum
}

// zipfian is YCSB's ZipfianGenerator, Gray et al.'s "Quickly generating
// billion-record synthetic databases" (SIGMOD 1994) method: item i of n
// (0-based) is drawn with probability 1/((i+1)^theta * zeta(n)). It is
// not safe for concurrent use; the item count may grow between draws (the
// latest distribution's does), and zeta is then extended incrementally.
type zipfian struct {
	theta, alpha, zeta2 float64
	n                   uint64 // item count zetan and eta are for
	zetan, eta          float64
}

// newZipfian returns a zipfian over n items; zetan is zeta(n) when the
// caller knows it, 0 to compute it.
func newZipfian(n uint64, theta, zetan float64) *zipfian {
	z := &zipfian{theta: theta, alpha: 1 / (1 - theta), zeta2: zeta(0, 2, theta, 0)}
	if zetan == 0 {
		zetan = zeta(0, n, theta, 0)
	}
	z.setCount(n, zetan)
	return z
}

func (z *zipfian) setCount(n uint64, zetan float64) {
	z.n, z.zetan = n, zetan
	// YCSB keeps the eta of the first item count after a growth; Gray's
	// formula wants the current one, which is what this uses.
	z.eta = (1 - math.Pow(2/float64(n), 1-z.theta)) / (1 - z.zeta2/zetan)
}

// next draws an item in [0, n) from u uniform in [0, 1).
func (z *zipfian) next(u float64, n uint64) uint64 {
	switch {
	case n > z.n:
		z.setCount(n, zeta(z.n, n, z.theta, z.zetan))
	case n < z.n:
		z.setCount(n, zeta(0, n, z.theta, 0))
	}
	uz := u * z.zetan
	if uz < 1 {
		return 0
	}
	if uz < 1+math.Pow(0.5, z.theta) {
		return 1
	}
	v := uint64(float64(n) * math.Pow(z.eta*u-z.eta+1, z.alpha))
	return min(v, n-1)
}

// scrambledZipfian is YCSB's ScrambledZipfianGenerator over [0, items):
// the popularity of a zipfian, with the popular items spread by hashing.
type scrambledZipfian struct {
	z     *zipfian
	items uint64
}

func newScrambledZipfian(items uint64) *scrambledZipfian {
	return &scrambledZipfian{z: newZipfian(scrambledItems, YCSBZipfianConstant, scrambledZetan), items: items}
}

func (s *scrambledZipfian) next(u float64) uint64 {
	return fnvHash64(s.z.next(u, scrambledItems)) % s.items
}

// skewedLatest is YCSB's SkewedLatestGenerator: the distance back from the
// most recent record is zipfian, so the newest record is the hottest.
type skewedLatest struct{ z *zipfian }

func newSkewedLatest(last uint64) *skewedLatest {
	return &skewedLatest{z: newZipfian(max(last, 1), YCSBZipfianConstant, 0)}
}

// next draws a record number in [1, last] (YCSB's quirk: record 0 is
// never chosen once there is more than one) given the last acknowledged
// record number.
func (s *skewedLatest) next(u float64, last uint64) uint64 {
	if last == 0 {
		return 0
	}
	return last - s.z.next(u, last)
}

// insertSequence is YCSB's AcknowledgedCounterGenerator: it hands out the
// record numbers of inserts, and the last record readers may choose is the
// highest one below which every insert has been acknowledged, so that a
// read never targets a record whose insert is still in flight.
type insertSequence struct {
	mu      sync.Mutex
	next    uint64
	pending map[uint64]bool // acknowledged above limit
	limit   atomic.Int64    // last acknowledged record with all before it; -1 for none
}

func newInsertSequence(start uint64) *insertSequence {
	s := &insertSequence{next: start, pending: map[uint64]bool{}}
	s.limit.Store(int64(start) - 1)
	return s
}

func (s *insertSequence) take() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.next
	s.next++
	return k
}

// acknowledge marks k's insert as done, successful or not (as YCSB does:
// a failed insert must not stall the keyspace forever).
func (s *insertSequence) acknowledge(k uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending[k] = true
	for l := uint64(s.limit.Load() + 1); s.pending[l]; l++ {
		delete(s.pending, l)
		s.limit.Store(int64(l))
	}
}

// last returns the last record readers may choose, -1 when none.
func (s *insertSequence) last() int64 { return s.limit.Load() }

// YCSBStore is the store as YCSB's DB interface sees it, reduced to what
// dynago offers. Both methods must be safe for concurrent use.
type YCSBStore interface {
	// Read reads key and returns the context of what it read (nil when
	// there is none). A missing key is an error wrapping ErrNotFound,
	// which may still carry a context (a tombstone's).
	Read(ctx context.Context, key string) (version []byte, err error)
	// Write stores value under key; version is the context of a
	// preceding Read, nil for a blind write.
	Write(ctx context.Context, key string, value, version []byte) error
}

// Read implements YCSBStore through the Go client.
func (t *ClientTarget) Read(ctx context.Context, key string) ([]byte, error) {
	c := t.nodes[rand.IntN(len(t.nodes))]
	v, err := c.Get(ctx, key, &client.GetOptions{R: t.o.R, Timeout: t.o.Timeout})
	if errors.Is(err, client.ErrNotFound) {
		return v.Context, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return v.Context, err
}

// Write implements YCSBStore through the Go client.
func (t *ClientTarget) Write(ctx context.Context, key string, value, version []byte) error {
	c := t.nodes[rand.IntN(len(t.nodes))]
	_, err := c.Put(ctx, key, value, &client.PutOptions{Context: version, W: t.o.W, Timeout: t.o.Timeout})
	return err
}

// YCSBConfig describes a YCSB session: one load, then workloads.
type YCSBConfig struct {
	RecordCount    int64 // records inserted by Load (YCSB's recordcount); >= 1
	OperationCount int64 // operations per workload Run (operationcount); >= 1
	Threads        int   // closed-loop workers, for Load and Run (threadcount); >= 1
	FieldLength    int   // bytes of the one field of a record (fieldlength); >= 0
	Seed           uint64
}

func (c *YCSBConfig) validate() error {
	switch {
	case c.RecordCount < 1:
		return fmt.Errorf("%w: record count must be >= 1, got %d", ErrConfig, c.RecordCount)
	case c.OperationCount < 1:
		return fmt.Errorf("%w: operation count must be >= 1, got %d", ErrConfig, c.OperationCount)
	case c.Threads < 1:
		return fmt.Errorf("%w: threads must be >= 1, got %d", ErrConfig, c.Threads)
	case c.FieldLength < 0:
		return fmt.Errorf("%w: field length must be >= 0, got %d", ErrConfig, c.FieldLength)
	}
	return nil
}

// YCSBSummary is the outcome of one operation type, with YCSB's return
// codes: OK, NOT_FOUND (a read of a missing record) and ERROR.
type YCSBSummary struct {
	Op                   YCSBOp
	Count                uint64 // OK + NotFound + Errors
	OK, NotFound, Errors uint64
	FirstError           string
	// Latency of OK and NOT_FOUND operations; a read-modify-write's
	// covers its read and its write.
	Latency *Histogram
}

// YCSBResult is the outcome of a Load or of one workload's Run.
type YCSBResult struct {
	Workload string // "load" or the workload's name
	Elapsed  time.Duration
	// Operations is the number of operations the workload issued (YCSB's
	// [OVERALL] count): a read-modify-write is one, although it also
	// appears in the READ and UPDATE summaries.
	Operations uint64
	// Ops has one summary per operation that occurred, in YCSBOp order.
	Ops []YCSBSummary
	// Interrupted is set when the context ended the run early; operations
	// cut short by it are not counted.
	Interrupted bool
}

// Throughput returns operations per second, YCSB's [OVERALL] throughput.
func (r *YCSBResult) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Operations) / r.Elapsed.Seconds()
}

// YCSB runs YCSB workloads against one store: Load once, then Run each
// workload in turn. Workloads share the keyspace: a workload's inserts are
// readable by the ones after it, as when YCSB runs against a loaded
// database several times. A YCSB is not safe for concurrent use.
type YCSB struct {
	c      YCSBConfig
	store  YCSBStore
	seq    *insertSequence // nil until Load
	stream uint64          // next random stream, so each phase draws afresh
}

// NewYCSB returns a session over store.
func NewYCSB(c YCSBConfig, store YCSBStore) (*YCSB, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &YCSB{c: c, store: store}, nil
}

// Records returns the number of records in the keyspace: loaded plus
// inserted by the workloads run so far.
func (y *YCSB) Records() int64 {
	if y.seq == nil {
		return 0
	}
	return y.seq.last() + 1
}

// ycsbRecorder is one worker's private tally, merged at the end.
type ycsbRecorder struct {
	lat      [numYCSBOps]*Histogram
	ok       [numYCSBOps]uint64
	notFound [numYCSBOps]uint64
	errs     [numYCSBOps]uint64
	firstErr [numYCSBOps]string
	ops      uint64
}

func newYCSBRecorder() *ycsbRecorder {
	r := &ycsbRecorder{}
	for i := range r.lat {
		r.lat[i] = NewHistogram()
	}
	return r
}

// record tallies one operation that started at start and ended with err.
// It reports false when the run's context cut the operation short.
func (r *ycsbRecorder) record(ctx context.Context, op YCSBOp, start time.Time, err error) bool {
	lat := time.Since(start)
	switch {
	case err == nil:
		r.lat[op].Record(lat)
		r.ok[op]++
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

// ycsbWorker is one closed-loop worker's random state.
type ycsbWorker struct {
	rng    *rand.Rand
	value  []byte
	choose keyChooser // of the workload being run; set on first use
}

func (y *YCSB) newWorker() *ycsbWorker {
	y.stream++
	return &ycsbWorker{rng: rand.New(rand.NewPCG(y.c.Seed, y.stream)), value: make([]byte, y.c.FieldLength)}
}

// fill makes a fresh field value, as YCSB builds one per write, printable
// so that a record read back with the CLI is readable.
func (w *ycsbWorker) fill() []byte {
	for i := range w.value {
		w.value[i] = ' ' + byte(w.rng.IntN(95))
	}
	return w.value
}

// Load inserts records 0..RecordCount-1 with Threads workers (YCSB's load
// phase) and measures the inserts. It can run once per session. Failed
// inserts are counted, not retried; the records stay in the keyspace.
func (y *YCSB) Load(ctx context.Context) (*YCSBResult, error) {
	if y.seq != nil {
		return nil, fmt.Errorf("%w: YCSB load already done", ErrConfig)
	}
	y.seq = newInsertSequence(uint64(y.c.RecordCount))
	var next atomic.Int64
	return y.phase(ctx, "load", func(ctx context.Context, w *ycsbWorker, rec *ycsbRecorder) bool {
		k := next.Add(1) - 1
		if k >= y.c.RecordCount {
			return false
		}
		start := time.Now()
		err := y.store.Write(ctx, YCSBKey(uint64(k)), w.fill(), nil)
		if rec.record(ctx, YCSBInsert, start, err) {
			rec.ops++
		}
		return true
	}), nil
}

// Run runs OperationCount operations of w after Load. Its error is only for
// a workload that cannot run; failed operations are counted in the result.
func (y *YCSB) Run(ctx context.Context, w YCSBWorkload) (*YCSBResult, error) {
	if err := w.Supported(); err != nil {
		return nil, err
	}
	if w.total() <= 0 {
		return nil, fmt.Errorf("%w: workload %s has no operation", ErrConfig, w.Name)
	}
	if y.seq == nil {
		return nil, fmt.Errorf("%w: YCSB run before load", ErrConfig)
	}
	// As YCSB sizes its key chooser: the records present plus twice the
	// inserts expected, draws beyond the last acknowledged record being
	// drawn again.
	expectedNew := uint64(float64(y.c.OperationCount) * w.Proportion[YCSBInsert] / w.total() * 2)
	items := uint64(y.Records()) + expectedNew
	var claimed atomic.Int64
	return y.phase(ctx, w.Name, func(ctx context.Context, wk *ycsbWorker, rec *ycsbRecorder) bool {
		if claimed.Add(1) > y.c.OperationCount {
			return false
		}
		if y.transaction(ctx, w, wk, items, rec) {
			rec.ops++
		}
		return true
	}), nil
}

// keyChooser draws record numbers of existing records for one worker.
type keyChooser func(u float64) uint64

func (y *YCSB) chooser(w YCSBWorkload, items uint64) keyChooser {
	if w.Dist == YCSBLatest {
		sl := newSkewedLatest(uint64(max(y.seq.last(), 0)))
		return func(u float64) uint64 { return sl.next(u, uint64(max(y.seq.last(), 0))) }
	}
	sz := newScrambledZipfian(items)
	return func(u float64) uint64 { return sz.next(u) }
}

// nextKey is YCSB's nextKeynum: a record of the distribution that exists.
func (y *YCSB) nextKey(wk *ycsbWorker, choose keyChooser) string {
	for {
		k := choose(wk.rng.Float64())
		if int64(k) <= y.seq.last() {
			return YCSBKey(k)
		}
	}
}

// transaction runs one operation (YCSB's doTransaction) and reports
// whether it counts (false when the context cut it short).
func (y *YCSB) transaction(ctx context.Context, w YCSBWorkload, wk *ycsbWorker, items uint64, rec *ycsbRecorder) bool {
	if wk.choose == nil {
		wk.choose = y.chooser(w, items)
	}
	switch op := w.chooseOp(wk.rng.Float64()); op {
	case YCSBRead:
		start := time.Now()
		_, err := y.store.Read(ctx, y.nextKey(wk, wk.choose))
		return rec.record(ctx, op, start, err)
	case YCSBUpdate:
		start := time.Now()
		err := y.store.Write(ctx, y.nextKey(wk, wk.choose), wk.fill(), nil)
		return rec.record(ctx, op, start, err)
	case YCSBInsert:
		k := y.seq.take()
		start := time.Now()
		err := y.store.Write(ctx, YCSBKey(k), wk.fill(), nil)
		y.seq.acknowledge(k)
		return rec.record(ctx, op, start, err)
	default: // YCSBReadModifyWrite
		key := y.nextKey(wk, wk.choose)
		start := time.Now()
		version, err := y.store.Read(ctx, key)
		if !rec.record(ctx, YCSBRead, start, err) {
			return false
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			// Writing without the context read would be a blind write,
			// not a read-modify-write.
			return rec.record(ctx, op, start, err)
		}
		wstart := time.Now()
		err = y.store.Write(ctx, key, wk.fill(), version)
		if !rec.record(ctx, YCSBUpdate, wstart, err) {
			return false
		}
		return rec.record(ctx, op, start, err)
	}
}

// phase runs step in Threads closed-loop workers until every worker's
// step returns false or ctx ends, and summarizes.
func (y *YCSB) phase(ctx context.Context, name string, step func(context.Context, *ycsbWorker, *ycsbRecorder) bool) *YCSBResult {
	recs := make([]*ycsbRecorder, y.c.Threads)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range recs {
		rec, wk := newYCSBRecorder(), y.newWorker()
		recs[i] = rec
		wg.Go(func() {
			for ctx.Err() == nil && step(ctx, wk, rec) {
			}
		})
	}
	wg.Wait()
	res := &YCSBResult{Workload: name, Elapsed: time.Since(start), Interrupted: ctx.Err() != nil}
	for op := range numYCSBOps {
		s := YCSBSummary{Op: op, Latency: NewHistogram()}
		for _, r := range recs {
			s.Latency.Merge(r.lat[op])
			s.OK += r.ok[op]
			s.NotFound += r.notFound[op]
			s.Errors += r.errs[op]
			if s.FirstError == "" {
				s.FirstError = r.firstErr[op]
			}
		}
		if s.Count = s.OK + s.NotFound + s.Errors; s.Count > 0 {
			res.Ops = append(res.Ops, s)
		}
	}
	for _, r := range recs {
		res.Operations += r.ops
	}
	return res
}
