package loadgen

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

func TestYCSBKeysAreYCSBs(t *testing.T) {
	// The first keys a stock YCSB load inserts (insertorder=hashed).
	for k, want := range map[uint64]string{0: "user6284781860667377211", 1: "user8517097267634966620"} {
		if got := YCSBKey(k); got != want {
			t.Errorf("YCSBKey(%d) = %q, want %q", k, got, want)
		}
	}
	seen := map[string]bool{}
	for k := range uint64(10_000) {
		key := YCSBKey(k)
		if seen[key] || key != YCSBKey(k) {
			t.Fatalf("key of record %d (%q) is repeated or not deterministic", k, key)
		}
		seen[key] = true
	}
}

func TestYCSBZipfianMatchesTheory(t *testing.T) {
	const n, draws = 1000, 100_000
	z := newZipfian(n, YCSBZipfianConstant, 0)
	r := rand.New(rand.NewPCG(1, 2))
	counts := make([]int, n)
	for range draws {
		v := z.next(r.Float64(), n)
		if v >= n {
			t.Fatalf("drew %d of %d items", v, n)
		}
		counts[v]++
	}
	// Gray's method is exact for the two hottest items (the rest follow
	// an approximation of the same curve, as in YCSB).
	zetan := zeta(0, n, YCSBZipfianConstant, 0)
	for i, c := range counts[:2] {
		want := 1 / (math.Pow(float64(i+1), YCSBZipfianConstant) * zetan)
		if got := float64(c) / draws; math.Abs(got-want) > 0.01*want+0.003 {
			t.Errorf("item %d drawn %.4f of the time, theory %.4f", i, got, want)
		}
	}
	if slices.Max(counts) != counts[0] {
		t.Error("item 0 is not the most popular")
	}
	// Growing the item count extends zeta instead of starting over, and
	// gives the same generator as one built for the larger count.
	grown, fresh := newZipfian(n, YCSBZipfianConstant, 0), newZipfian(2*n, YCSBZipfianConstant, 0)
	grown.next(0.5, 2*n)
	if math.Abs(grown.zetan-fresh.zetan) > 1e-9 || math.Abs(grown.eta-fresh.eta) > 1e-9 {
		t.Errorf("grown zeta, eta = %v, %v; fresh %v, %v", grown.zetan, grown.eta, fresh.zetan, fresh.eta)
	}
}

func TestYCSBScrambledZipfianSpreadsHotItems(t *testing.T) {
	const n, draws = 1000, 100_000
	s := newScrambledZipfian(n)
	r := rand.New(rand.NewPCG(3, 4))
	counts := make([]int, n)
	for range draws {
		counts[s.next(r.Float64())]++
	}
	// The hottest record is where the zipfian's item 0 hashes to, at
	// least as popular as item 0 of 10^10 (1/zeta).
	hot := fnvHash64(0) % n
	if slices.Max(counts) != counts[hot] {
		t.Fatalf("hottest record is not fnv(0) mod n = %d", hot)
	}
	if got := float64(counts[hot]) / draws; got < 1/scrambledZetan-0.005 {
		t.Errorf("hottest record drawn %.4f of the time, want >= %.4f", got, 1/scrambledZetan)
	}
	// The ten hottest still take far more than their uniform 1%, but are
	// spread over the keyspace rather than clustered at its start.
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return counts[b] - counts[a] })
	top, share := idx[:10], 0
	for _, i := range top {
		share += counts[i]
	}
	if float64(share)/draws < 0.08 {
		t.Errorf("the 10 hottest records take %.3f of the draws: not skewed", float64(share)/draws)
	}
	if spread := slices.Max(top) - slices.Min(top); spread < n/2 {
		t.Errorf("the 10 hottest records %v span only %d of %d", top, spread, n)
	}
}

func TestYCSBLatestFavoursRecentInserts(t *testing.T) {
	seq := newInsertSequence(1000)
	sl := newSkewedLatest(uint64(seq.last()))
	r := rand.New(rand.NewPCG(5, 6))
	draw := func() []int {
		counts := make([]int, seq.last()+1)
		for range 100_000 {
			v := sl.next(r.Float64(), uint64(seq.last()))
			if int64(v) > seq.last() {
				t.Fatalf("drew record %d beyond the last acknowledged %d", v, seq.last())
			}
			counts[v]++
		}
		return counts
	}
	counts := draw()
	if slices.Max(counts) != counts[999] {
		t.Fatal("the newest record is not the hottest")
	}
	recent := 0
	for _, c := range counts[900:] {
		recent += c
	}
	if float64(recent)/100_000 < 0.6 {
		t.Errorf("the newest 10%% of records take %.3f of the draws, want > 0.6", float64(recent)/100_000)
	}
	// Ten inserts, acknowledged out of order: the newest becomes the
	// hottest only once all before it are acknowledged.
	var ks []uint64
	for range 10 {
		ks = append(ks, seq.take())
	}
	seq.acknowledge(ks[9])
	if seq.last() != 999 {
		t.Fatalf("last = %d after acknowledging only record %d, want 999", seq.last(), ks[9])
	}
	for _, k := range ks[:9] {
		seq.acknowledge(k)
	}
	if seq.last() != 1009 {
		t.Fatalf("last = %d after acknowledging all, want 1009", seq.last())
	}
	if counts := draw(); slices.Max(counts) != counts[1009] {
		t.Fatal("after inserts, the newest record is not the hottest")
	}
}

func TestYCSBOperationMix(t *testing.T) {
	for _, name := range YCSBWorkloadNames {
		w, err := YCSBCoreWorkload(name)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(7, 8))
		var counts [numYCSBOps]int
		for range 10_000 {
			counts[w.chooseOp(r.Float64())]++
		}
		for op, c := range counts {
			if got, want := float64(c)/10_000, w.Proportion[op]; math.Abs(got-want) > 0.02 {
				t.Errorf("workload %s: %v is %.3f of the operations, want %.2f", name, YCSBOp(op), got, want)
			}
		}
	}
	e, _ := YCSBCoreWorkload("E")
	if err := e.Supported(); !errors.Is(err, ErrYCSBUnsupported) {
		t.Errorf("workload e: Supported = %v, want ErrYCSBUnsupported", err)
	}
	if _, err := YCSBCoreWorkload("g"); !errors.Is(err, ErrConfig) {
		t.Errorf("workload g: %v, want ErrConfig", err)
	}
}

// memStore is a YCSBStore in memory; a record's version is the number of
// writes it has seen, so a write carrying a stale version is detectable.
type memStore struct {
	mu       sync.Mutex
	versions map[string]int
	stale    int // writes whose version was not the current one
	blind    int // writes without a version to an existing record
}

func (m *memStore) Read(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.versions[key]
	if !ok {
		return nil, ErrNotFound
	}
	return []byte{byte(v)}, nil
}

func (m *memStore) Write(_ context.Context, key string, _, version []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.versions[key]
	switch {
	case version == nil && ok:
		m.blind++
	case version != nil && version[0] != byte(cur):
		m.stale++
	}
	m.versions[key] = cur + 1
	return nil
}

func opCounts(res *YCSBResult) map[YCSBOp]uint64 {
	m := map[YCSBOp]uint64{}
	for _, s := range res.Ops {
		m[s.Op] = s.Count
		if s.Latency.Count() != s.OK+s.NotFound {
			panic("latencies do not match successes")
		}
	}
	return m
}

func TestYCSBSessionLoadsThenRunsWorkloads(t *testing.T) {
	store := &memStore{versions: map[string]int{}}
	y, err := NewYCSB(YCSBConfig{RecordCount: 500, OperationCount: 2000, Threads: 4, FieldLength: 10, Seed: 1}, store)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := YCSBCoreWorkload("a")
	if _, err := y.Run(t.Context(), a); !errors.Is(err, ErrConfig) {
		t.Fatalf("run before load: %v, want ErrConfig", err)
	}
	load, err := y.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(store.versions) != 500 || load.Operations != 500 || opCounts(load)[YCSBInsert] != 500 || y.Records() != 500 {
		t.Fatalf("load: %d records stored, %d operations, %v", len(store.versions), load.Operations, opCounts(load))
	}
	if _, err := y.Load(t.Context()); !errors.Is(err, ErrConfig) {
		t.Fatalf("second load: %v, want ErrConfig", err)
	}

	res, err := y.Run(t.Context(), a)
	if err != nil {
		t.Fatal(err)
	}
	c := opCounts(res)
	if res.Operations != 2000 || c[YCSBRead]+c[YCSBUpdate] != 2000 || len(store.versions) != 500 {
		t.Fatalf("workload a: %d operations, %v, %d records", res.Operations, c, len(store.versions))
	}
	if res.Ops[0].NotFound != 0 || store.blind != int(c[YCSBUpdate]) {
		t.Fatalf("workload a: %d reads missed, %d blind writes for %d updates", res.Ops[0].NotFound, store.blind, c[YCSBUpdate])
	}

	d, _ := YCSBCoreWorkload("d")
	res, _ = y.Run(t.Context(), d)
	c = opCounts(res)
	if y.Records() != 500+int64(c[YCSBInsert]) || len(store.versions) != int(y.Records()) || c[YCSBInsert] == 0 {
		t.Fatalf("workload d: %d inserts, %d records, %d stored", c[YCSBInsert], y.Records(), len(store.versions))
	}
	if res.Ops[0].NotFound != 0 {
		t.Fatalf("workload d: %d reads of records not yet inserted", res.Ops[0].NotFound)
	}

	// F's read-modify-writes are measured whole and as their read and
	// write, and write with the version they read.
	f, _ := YCSBCoreWorkload("f")
	store.blind = 0
	res, _ = y.Run(t.Context(), f)
	c = opCounts(res)
	rmw := c[YCSBReadModifyWrite]
	if res.Operations != 2000 || c[YCSBUpdate] != rmw || c[YCSBRead] != 2000 || rmw < 800 {
		t.Fatalf("workload f: %d operations, %v", res.Operations, c)
	}
	if store.blind != 0 {
		t.Fatalf("workload f: %d blind writes", store.blind)
	}
	// Concurrent workers may update a record between another's read and
	// write (a real sibling), but rarely over 500 records.
	if store.stale > int(rmw)/10 {
		t.Fatalf("workload f: %d of %d writes did not carry the version read", store.stale, rmw)
	}

	e, _ := YCSBCoreWorkload("e")
	if _, err := y.Run(t.Context(), e); !errors.Is(err, ErrYCSBUnsupported) {
		t.Fatalf("workload e: %v, want ErrYCSBUnsupported", err)
	}
}

// failStore fails every write to one record.
type failStore struct{ memStore }

var errDown = errors.New("down")

func (f *failStore) Write(ctx context.Context, key string, value, version []byte) error {
	if key == YCSBKey(3) {
		return errDown
	}
	return f.memStore.Write(ctx, key, value, version)
}

func TestYCSBCountsErrorsAndStopsWithContext(t *testing.T) {
	y, _ := NewYCSB(YCSBConfig{RecordCount: 10, OperationCount: 1, Threads: 2}, &failStore{memStore{versions: map[string]int{}}})
	load, _ := y.Load(t.Context())
	ins := load.Ops[0]
	if ins.Op != YCSBInsert || ins.Errors != 1 || ins.OK != 9 || ins.FirstError != errDown.Error() || ins.Latency.Count() != 9 {
		t.Fatalf("load summary %+v: want 9 OK, 1 error", ins)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	y, _ = NewYCSB(YCSBConfig{RecordCount: 1000, OperationCount: 1, Threads: 2}, &memStore{versions: map[string]int{}})
	if load, _ = y.Load(ctx); !load.Interrupted || load.Operations != 0 {
		t.Fatalf("cancelled load: interrupted %v, %d operations", load.Interrupted, load.Operations)
	}
	if _, err := NewYCSB(YCSBConfig{RecordCount: 1, OperationCount: 1}, nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("no threads: %v, want ErrConfig", err)
	}
}
