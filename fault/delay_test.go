package fault

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

func TestParseDelay(t *testing.T) {
	ms := time.Millisecond
	valid := []struct {
		in   string
		want Delay
	}{
		{"10ms", Fixed(10 * ms)},
		{"0", Fixed(0)},
		{" fixed:1.5s ", Fixed(1500 * ms)},
		{"uniform:5ms-15ms", Uniform(5*ms, 15*ms)},
		{"uniform:5ms-5ms", Uniform(5*ms, 5*ms)},
		{"normal:10ms,2ms", Normal(10*ms, 2*ms)},
		{"normal:10ms, 0s", Normal(10*ms, 0)},
	}
	for _, c := range valid {
		got, err := ParseDelay(c.in)
		if err != nil {
			t.Errorf("ParseDelay(%q): %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("ParseDelay(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
	invalid := []string{
		"", "fast", "10", "-5ms", "fixed:", "fixed:-1ms",
		"uniform:5ms", "uniform:15ms-5ms", "uniform:-1ms-5ms", "uniform:5ms-x",
		"normal:10ms", "normal:10ms,-2ms", "normal:-1ms,2ms", "normal:,2ms",
		"gamma:10ms", "FIXED:10ms",
	}
	for _, in := range invalid {
		d, err := ParseDelay(in)
		if !errors.Is(err, ErrDelay) {
			t.Errorf("ParseDelay(%q) = %+v, %v; want ErrDelay", in, d, err)
		}
	}
}

func TestDelayStringRoundTrip(t *testing.T) {
	for _, d := range []Delay{
		Fixed(0), Fixed(10 * time.Millisecond), Fixed(1500 * time.Microsecond),
		Uniform(5*time.Millisecond, 15*time.Millisecond), Uniform(0, time.Hour),
		Normal(20*time.Millisecond, 5*time.Millisecond), Normal(3*time.Nanosecond, 1),
	} {
		got, err := ParseDelay(d.String())
		if err != nil || got != d {
			t.Errorf("ParseDelay(%q) = %+v, %v; want %+v", d.String(), got, err, d)
		}
	}
	if s := Uniform(5*time.Millisecond, 15*time.Millisecond).String(); s != "uniform:5ms-15ms" {
		t.Errorf("String = %q, want uniform:5ms-15ms", s)
	}
}

func TestDelayValidateRejectsUnusedFields(t *testing.T) {
	for _, d := range []Delay{
		{Kind: KindFixed, Mean: 1, Std: 1},
		{Kind: KindUniform, Min: 1, Max: 2, Mean: 1},
		{Kind: KindNormal, Mean: 1, Max: 2},
		{},
	} {
		if err := d.Validate(); !errors.Is(err, ErrDelay) {
			t.Errorf("Validate(%+v) = %v, want ErrDelay", d, err)
		}
	}
}

func TestRulesJSONRoundTrip(t *testing.T) {
	in := `{"delay":{"*":"10ms","n3":"normal:20ms,5ms","n5":"uniform:1ms-2ms"},"loss":{"n2":0.1},"cut":["n4"]}`
	var r Rules
	if err := json.Unmarshal([]byte(in), &r); err != nil {
		t.Fatal(err)
	}
	want := Rules{
		Delay: map[string]Delay{
			"*":  Fixed(10 * time.Millisecond),
			"n3": Normal(20*time.Millisecond, 5*time.Millisecond),
			"n5": Uniform(time.Millisecond, 2*time.Millisecond),
		},
		Loss: map[string]float64{"n2": 0.1},
		Cut:  []string{"n4"},
	}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("decoded %+v, want %+v", r, want)
	}
	out, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Errorf("Marshal = %s, want %s", out, in)
	}
	if out, _ := json.Marshal(Rules{}); string(out) != "{}" {
		t.Errorf("Marshal(Rules{}) = %s, want {}", out)
	}
	var bad Rules
	if err := json.Unmarshal([]byte(`{"delay":{"n1":"uniform:9ms-1ms"}}`), &bad); !errors.Is(err, ErrDelay) {
		t.Errorf("bad delay in JSON: %v, want ErrDelay", err)
	}
	if _, err := json.Marshal(Rules{Delay: map[string]Delay{"n1": {Kind: "gamma"}}}); !errors.Is(err, ErrDelay) {
		t.Errorf("marshal invalid delay: %v, want ErrDelay", err)
	}
}

func TestRulesValidate(t *testing.T) {
	ok := Rules{Delay: map[string]Delay{"*": Fixed(1)}, Loss: map[string]float64{"*": 0, "n2": 1}, Cut: []string{"*", "n3"}}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v", ok, err)
	}
	for _, r := range []Rules{
		{Loss: map[string]float64{"n1": 1.01}},
		{Loss: map[string]float64{"n1": -0.1}},
		{Loss: map[string]float64{"n1": math.NaN()}},
		{Loss: map[string]float64{"": 0.5}},
		{Delay: map[string]Delay{"": Fixed(1)}},
		{Delay: map[string]Delay{"n1": Fixed(-1)}},
		{Cut: []string{""}},
	} {
		if err := r.Validate(); !errors.Is(err, ErrRules) {
			t.Errorf("Validate(%+v) = %v, want ErrRules", r, err)
		}
	}
}

func draws(d Delay, n int) []float64 {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(d.sample(r))
	}
	return out
}

func meanStd(xs []float64) (float64, float64) {
	var sum, sq float64
	for _, x := range xs {
		sum += x
	}
	m := sum / float64(len(xs))
	for _, x := range xs {
		sq += (x - m) * (x - m)
	}
	return m, math.Sqrt(sq / float64(len(xs)))
}

func TestDelayDistributions(t *testing.T) {
	ms := float64(time.Millisecond)
	for _, x := range draws(Fixed(7*time.Millisecond), 1000) {
		if x != 7*ms {
			t.Fatalf("fixed draw %v, want exactly 7ms", time.Duration(x))
		}
	}

	u := draws(Uniform(5*time.Millisecond, 15*time.Millisecond), 10000)
	for _, x := range u {
		if x < 5*ms || x > 15*ms {
			t.Fatalf("uniform draw %v outside [5ms,15ms]", time.Duration(x))
		}
	}
	if m, _ := meanStd(u); math.Abs(m-10*ms) > 0.2*ms {
		t.Errorf("uniform mean %v, want ≈10ms", time.Duration(m))
	}

	n := draws(Normal(10*time.Millisecond, 2*time.Millisecond), 10000)
	m, s := meanStd(n)
	if math.Abs(m-10*ms) > 0.05*10*ms {
		t.Errorf("normal mean %v, want 10ms ±5%%", time.Duration(m))
	}
	if math.Abs(s-2*ms) > 0.05*2*ms {
		t.Errorf("normal std %v, want 2ms ±5%%", time.Duration(s))
	}

	// Truncation: a mean of 0 never yields a negative delay.
	for _, x := range draws(Normal(0, 5*time.Millisecond), 1000) {
		if x < 0 {
			t.Fatalf("normal draw %v below 0", time.Duration(x))
		}
	}
}
