package loadgen

import "math"

// YCSB's "zipfian" request distribution (Cooper et al., "Benchmarking
// Cloud Serving Systems with YCSB", SoCC 2010), as brianfrankcooper/YCSB's
// ScrambledZipfianGenerator draws it: so that `dynago bench --dist zipfian`
// skews keys the way published YCSB numbers do. math/rand/v2's Zipf cannot
// stand in: it needs an exponent above 1, and YCSB's is 0.99.

// ZipfianConstant is YCSB's ZIPFIAN_CONSTANT, the skew (theta) of the
// zipfian distribution.
const ZipfianConstant = 0.99

// The scrambled zipfian draws from a zipfian over this many items (YCSB's
// ScrambledZipfianGenerator.ITEM_COUNT, plus one because YCSB's maximum is
// inclusive) whose zeta YCSB precomputed, then hashes the draw onto the
// keys: computing zeta over 10^10 terms at start would take minutes.
const (
	scrambledItems = 10_000_000_000 + 1
	scrambledZetan = 26.46902820178302
)

// zeta returns the sum over i in [0, n) of 1/(i+1)^theta, YCSB's
// zetastatic.
func zeta(n uint64, theta float64) float64 {
	var sum float64
	for i := range n {
		sum += 1 / math.Pow(float64(i+1), theta)
	}
	return sum
}

// zipfian is YCSB's ZipfianGenerator, Gray et al.'s "Quickly generating
// billion-record synthetic databases" (SIGMOD 1994) method: item i of n
// (0-based) is drawn with probability 1/((i+1)^theta * zeta(n)), exactly
// for the two hottest items and by a close approximation for the rest.
type zipfian struct {
	n                        uint64
	theta, alpha, zetan, eta float64
}

// newZipfian returns a zipfian over n items; zetan is zeta(n) when the
// caller knows it, 0 to compute it.
func newZipfian(n uint64, theta, zetan float64) *zipfian {
	if zetan == 0 {
		zetan = zeta(n, theta)
	}
	return &zipfian{
		n: n, theta: theta, alpha: 1 / (1 - theta), zetan: zetan,
		eta: (1 - math.Pow(2/float64(n), 1-theta)) / (1 - zeta(2, theta)/zetan),
	}
}

// next draws an item in [0, n) from u uniform in [0, 1).
func (z *zipfian) next(u float64) uint64 {
	uz := u * z.zetan
	if uz < 1 {
		return 0
	}
	if uz < 1+math.Pow(0.5, z.theta) {
		return 1
	}
	v := uint64(float64(z.n) * math.Pow(z.eta*u-z.eta+1, z.alpha))
	return min(v, z.n-1)
}

// scrambledZipfian is YCSB's ScrambledZipfianGenerator over [0, items):
// the popularity of a zipfian, with the popular items spread over the
// keyspace by hashing, so that the hot keys fall in different partitions
// instead of being the first few. Not safe for concurrent use.
type scrambledZipfian struct {
	z     *zipfian
	items uint64
}

func newScrambledZipfian(items uint64) *scrambledZipfian {
	return &scrambledZipfian{z: newZipfian(scrambledItems, ZipfianConstant, scrambledZetan), items: items}
}

func (s *scrambledZipfian) next(u float64) uint64 {
	return fnvHash64(s.z.next(u)) % s.items
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
