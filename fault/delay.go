package fault

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// ErrDelay reports a malformed or invalid delay specification.
var ErrDelay = errors.New("fault: invalid delay")

// Delay kinds.
const (
	KindFixed   = "fixed"
	KindUniform = "uniform"
	KindNormal  = "normal"
)

// Delay is a one-way delay distribution:
//   - fixed: always Mean;
//   - uniform: uniform over [Min, Max];
//   - normal: Mean plus Std times a standard normal draw, truncated at 0
//     (a network cannot deliver before the send).
//
// Fields a kind does not use must be zero, so that String loses nothing.
// It marshals to and from its String form ("uniform:5ms-15ms") so that the
// admin API reads like the command line.
type Delay struct {
	Kind string
	Mean time.Duration
	Min  time.Duration
	Max  time.Duration
	Std  time.Duration
}

// Fixed returns a fixed delay of d.
func Fixed(d time.Duration) Delay { return Delay{Kind: KindFixed, Mean: d} }

// Uniform returns a delay uniform over [lo, hi].
func Uniform(lo, hi time.Duration) Delay { return Delay{Kind: KindUniform, Min: lo, Max: hi} }

// Normal returns a normal delay with the given mean and standard deviation.
func Normal(mean, std time.Duration) Delay { return Delay{Kind: KindNormal, Mean: mean, Std: std} }

// ParseDelay parses "10ms" or "fixed:10ms", "uniform:5ms-15ms" and
// "normal:10ms,2ms" (mean, standard deviation). Durations use
// time.ParseDuration syntax; "0" is allowed.
func ParseDelay(s string) (Delay, error) {
	s = strings.TrimSpace(s)
	kind, arg, hasKind := strings.Cut(s, ":")
	if !hasKind {
		kind, arg = KindFixed, s
	}
	var d Delay
	switch kind {
	case KindFixed:
		v, err := parseDur(arg, "fixed delay")
		if err != nil {
			return Delay{}, err
		}
		d = Fixed(v)
	case KindUniform:
		a, b, ok := strings.Cut(arg, "-")
		if !ok {
			return Delay{}, fmt.Errorf("%w: %q: uniform wants MIN-MAX, e.g. uniform:5ms-15ms", ErrDelay, s)
		}
		lo, err := parseDur(a, "uniform min")
		if err != nil {
			return Delay{}, err
		}
		hi, err := parseDur(b, "uniform max")
		if err != nil {
			return Delay{}, err
		}
		d = Uniform(lo, hi)
	case KindNormal:
		a, b, ok := strings.Cut(arg, ",")
		if !ok {
			return Delay{}, fmt.Errorf("%w: %q: normal wants MEAN,STD, e.g. normal:10ms,2ms", ErrDelay, s)
		}
		mean, err := parseDur(a, "normal mean")
		if err != nil {
			return Delay{}, err
		}
		std, err := parseDur(b, "normal std")
		if err != nil {
			return Delay{}, err
		}
		d = Normal(mean, std)
	default:
		return Delay{}, fmt.Errorf("%w: %q: unknown kind %q (want fixed, uniform or normal)", ErrDelay, s, kind)
	}
	if err := d.Validate(); err != nil {
		return Delay{}, err
	}
	return d, nil
}

func parseDur(s, what string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("%w: empty %s", ErrDelay, what)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %w", ErrDelay, what, err)
	}
	return v, nil
}

// Validate rejects unknown kinds, negative durations, Min > Max and fields
// the kind does not use.
func (d Delay) Validate() error {
	neg := func(name string, v time.Duration) error {
		if v < 0 {
			return fmt.Errorf("%w: %s delay: negative %s %v", ErrDelay, d.Kind, name, v)
		}
		return nil
	}
	unused := func(names ...string) error {
		return fmt.Errorf("%w: %s delay does not use %s", ErrDelay, d.Kind, strings.Join(names, "/"))
	}
	switch d.Kind {
	case KindFixed:
		if d.Min != 0 || d.Max != 0 || d.Std != 0 {
			return unused("Min", "Max", "Std")
		}
		return neg("mean", d.Mean)
	case KindUniform:
		if d.Mean != 0 || d.Std != 0 {
			return unused("Mean", "Std")
		}
		if err := neg("min", d.Min); err != nil {
			return err
		}
		if d.Min > d.Max {
			return fmt.Errorf("%w: uniform min %v above max %v", ErrDelay, d.Min, d.Max)
		}
		return nil
	case KindNormal:
		if d.Min != 0 || d.Max != 0 {
			return unused("Min", "Max")
		}
		if err := neg("mean", d.Mean); err != nil {
			return err
		}
		return neg("std", d.Std)
	default:
		return fmt.Errorf("%w: unknown kind %q (want fixed, uniform or normal)", ErrDelay, d.Kind)
	}
}

// String is the ParseDelay form; fixed delays print as a bare duration.
func (d Delay) String() string {
	switch d.Kind {
	case KindFixed:
		return d.Mean.String()
	case KindUniform:
		return fmt.Sprintf("uniform:%v-%v", d.Min, d.Max)
	case KindNormal:
		return fmt.Sprintf("normal:%v,%v", d.Mean, d.Std)
	default:
		return fmt.Sprintf("invalid(%q)", d.Kind)
	}
}

// MarshalText makes Delay a JSON string in its String form.
func (d Delay) MarshalText() ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return []byte(d.String()), nil
}

// UnmarshalText parses the ParseDelay form.
func (d *Delay) UnmarshalText(b []byte) error {
	v, err := ParseDelay(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// sample draws one delay. d must be valid.
func (d Delay) sample(r *rand.Rand) time.Duration {
	switch d.Kind {
	case KindUniform:
		if d.Max == d.Min {
			return d.Min
		}
		span := int64(d.Max - d.Min)
		if span < math.MaxInt64 {
			span++ // Max is inclusive
		}
		return d.Min + time.Duration(r.Int64N(span))
	case KindNormal:
		v := float64(d.Mean) + float64(d.Std)*r.NormFloat64()
		if v <= 0 {
			return 0
		}
		if v >= math.MaxInt64 {
			return time.Duration(math.MaxInt64)
		}
		return time.Duration(v)
	default:
		return d.Mean
	}
}
