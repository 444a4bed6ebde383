package loadgen

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Errors of configuration and of operations.
var (
	// ErrConfig marks an invalid Config or workload description.
	ErrConfig = errors.New("loadgen: invalid configuration")
	// ErrNotFound is what a Target's Do wraps when a read found the key
	// missing or deleted: a successful answer, counted apart.
	ErrNotFound = errors.New("loadgen: not found")
)

// Op is one kind of operation of the workload.
type Op int

// The operations, in the order results are reported.
const (
	OpGet Op = iota
	OpPut
	OpDelete
	numOps
)

var opNames = [numOps]string{"get", "put", "delete"}

func (o Op) String() string {
	if o < 0 || o >= numOps {
		return "op(" + strconv.Itoa(int(o)) + ")"
	}
	return opNames[o]
}

// Mix is the relative weight of each operation; weights need not add up to
// 100.
type Mix [numOps]int

// ParseMix parses "get=50,put=40,delete=10". Operations left out weigh 0.
func ParseMix(s string) (Mix, error) {
	var m Mix
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, w, ok := strings.Cut(part, "=")
		if !ok {
			return Mix{}, fmt.Errorf("%w: mix %q: want op=weight", ErrConfig, part)
		}
		op := -1
		for i, n := range opNames {
			if strings.TrimSpace(name) == n {
				op = i
			}
		}
		if op < 0 {
			return Mix{}, fmt.Errorf("%w: mix: unknown operation %q (want get, put or delete)", ErrConfig, name)
		}
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 0 {
			return Mix{}, fmt.Errorf("%w: mix: weight of %s must be a non-negative integer, got %q", ErrConfig, name, w)
		}
		m[op] = n
	}
	if m.total() == 0 {
		return Mix{}, fmt.Errorf("%w: mix %q has no operation with a positive weight", ErrConfig, s)
	}
	return m, nil
}

func (m Mix) total() int { return m[OpGet] + m[OpPut] + m[OpDelete] }

func (m Mix) String() string {
	var parts []string
	for op, w := range m {
		if w > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", Op(op), w))
		}
	}
	return strings.Join(parts, ",")
}

// Dist is how keys are drawn.
type Dist int

const (
	// Uniform draws every key with the same probability.
	Uniform Dist = iota
	// Zipfian is YCSB's "zipfian" (see zipfian.go): popularity falls as
	// 1/(rank+1)^0.99 (ZipfianConstant), and the popular ranks are hashed
	// across the keys, so the hot keys are spread over partitions as in
	// YCSB. Hot keys are what make coordinators, siblings and read repair
	// visible.
	Zipfian
)

// ParseDist parses "uniform" or "zipfian".
func ParseDist(s string) (Dist, error) {
	switch s {
	case "uniform":
		return Uniform, nil
	case "zipfian", "zipf":
		return Zipfian, nil
	}
	return 0, fmt.Errorf("%w: distribution %q (want uniform or zipfian)", ErrConfig, s)
}

func (d Dist) String() string {
	if d == Zipfian {
		return "zipfian"
	}
	return "uniform"
}

// Key returns the name of key number n.
func Key(n int) string { return "bench-" + strconv.Itoa(n) }

// generator draws operations and keys. Each worker (or the open-loop
// scheduler) has its own, seeded from Config.Seed and its stream number,
// so draws need no lock and a run's sequences are reproducible.
type generator struct {
	rng  *rand.Rand
	zipf *scrambledZipfian
	mix  Mix
	keys int
}

func newGenerator(c *Config, stream uint64) *generator {
	g := &generator{rng: rand.New(rand.NewPCG(c.Seed, stream)), mix: c.Mix, keys: c.Keys}
	if c.Dist == Zipfian && c.Keys > 1 {
		g.zipf = newScrambledZipfian(uint64(c.Keys))
	}
	return g
}

func (g *generator) next() (Op, string) {
	x := g.rng.IntN(g.mix.total())
	op := OpGet
	for ; op < numOps-1; op++ {
		if x < g.mix[op] {
			break
		}
		x -= g.mix[op]
	}
	var k int
	switch {
	case g.zipf != nil:
		k = int(g.zipf.next(g.rng.Float64()))
	default:
		k = g.rng.IntN(g.keys)
	}
	return op, Key(k)
}
