package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestFNVHashIsYCSBs: the hash that scrambles the zipfian is YCSB's; the
// values are the FNV parts of the first keys a stock YCSB load inserts
// (user6284781860667377211, user8517097267634966620).
func TestFNVHashIsYCSBs(t *testing.T) {
	for v, want := range map[uint64]uint64{0: 6284781860667377211, 1: 8517097267634966620} {
		if got := fnvHash64(v); got != want {
			t.Errorf("fnvHash64(%d) = %d, want %d", v, got, want)
		}
	}
}

func TestZipfianMatchesTheory(t *testing.T) {
	const n, draws = 1000, 100_000
	z := newZipfian(n, ZipfianConstant, 0)
	r := rand.New(rand.NewPCG(1, 2))
	counts := make([]int, n)
	for range draws {
		v := z.next(r.Float64())
		if v >= n {
			t.Fatalf("drew %d of %d items", v, n)
		}
		counts[v]++
	}
	// Gray's method is exact for the two hottest items (the rest follow
	// an approximation of the same curve, as in YCSB).
	zetan := zeta(n, ZipfianConstant)
	for i, c := range counts[:2] {
		want := 1 / (math.Pow(float64(i+1), ZipfianConstant) * zetan)
		if got := float64(c) / draws; math.Abs(got-want) > 0.01*want+0.003 {
			t.Errorf("item %d drawn %.4f of the time, theory %.4f", i, got, want)
		}
	}
	if slices.Max(counts) != counts[0] {
		t.Error("item 0 is not the most popular")
	}
	// Far down the curve, item 100 is drawn about (1/101)^0.99 as often
	// as item 0: still skewed, and nowhere near uniform.
	if counts[100] == 0 || counts[100]*20 > counts[0] {
		t.Errorf("item 0 drawn %d times, item 100 %d: not the zipfian curve", counts[0], counts[100])
	}
}

func TestScrambledZipfianSpreadsHotItems(t *testing.T) {
	const n, draws = 1000, 100_000
	s := newScrambledZipfian(n)
	r := rand.New(rand.NewPCG(3, 4))
	counts := make([]int, n)
	for range draws {
		counts[s.next(r.Float64())]++
	}
	// The hottest key is where the zipfian's item 0 hashes to, at least
	// as popular as item 0 of 10^10 (1/zeta).
	hot := fnvHash64(0) % n
	if slices.Max(counts) != counts[hot] {
		t.Fatalf("hottest key is not fnv(0) mod n = %d", hot)
	}
	if got := float64(counts[hot]) / draws; got < 1/scrambledZetan-0.005 {
		t.Errorf("hottest key drawn %.4f of the time, want >= %.4f", got, 1/scrambledZetan)
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
		t.Errorf("the 10 hottest keys take %.3f of the draws: not skewed", float64(share)/draws)
	}
	if spread := slices.Max(top) - slices.Min(top); spread < n/2 {
		t.Errorf("the 10 hottest keys %v span only %d of %d", top, spread, n)
	}
}
