package dvv

import (
	"slices"
	"testing"
)

func TestVVGet(t *testing.T) {
	v := VV{{"a", 3}, {"c", 1}, {"e", 7}}
	for _, tt := range []struct {
		actor string
		want  uint64
	}{{"a", 3}, {"c", 1}, {"e", 7}, {"b", 0}, {"", 0}, {"f", 0}} {
		if got := v.Get(tt.actor); got != tt.want {
			t.Errorf("Get(%q) = %d, want %d", tt.actor, got, tt.want)
		}
	}
	if got := VV(nil).Get("a"); got != 0 {
		t.Errorf("nil.Get = %d, want 0", got)
	}
}

func TestVVDescends(t *testing.T) {
	tests := []struct {
		v, o VV
		want bool
	}{
		{nil, nil, true},
		{VV{{"a", 1}}, nil, true},
		{nil, VV{{"a", 1}}, false},
		{VV{{"a", 2}, {"b", 1}}, VV{{"a", 2}, {"b", 1}}, true},
		{VV{{"a", 2}, {"b", 1}}, VV{{"a", 1}}, true},
		{VV{{"a", 2}, {"b", 1}}, VV{{"b", 2}}, false},
		{VV{{"a", 2}, {"c", 1}}, VV{{"b", 1}}, false},
		{VV{{"a", 2}, {"c", 1}}, VV{{"a", 1}, {"c", 1}}, true},
		{VV{{"b", 5}}, VV{{"a", 1}, {"b", 1}}, false},
	}
	for _, tt := range tests {
		if got := tt.v.Descends(tt.o); got != tt.want {
			t.Errorf("%v.Descends(%v) = %v, want %v", tt.v, tt.o, got, tt.want)
		}
	}
}

func TestVVMerge(t *testing.T) {
	tests := []struct{ a, b, want VV }{
		{nil, nil, VV{}},
		{VV{{"a", 1}}, nil, VV{{"a", 1}}},
		{VV{{"a", 1}, {"c", 4}}, VV{{"a", 3}, {"b", 2}}, VV{{"a", 3}, {"b", 2}, {"c", 4}}},
		{VV{{"x", 9}}, VV{{"a", 1}}, VV{{"a", 1}, {"x", 9}}},
	}
	for _, tt := range tests {
		got := Merge(tt.a, tt.b)
		if !slices.Equal(got, tt.want) {
			t.Errorf("Merge(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if !got.Descends(tt.a) || !got.Descends(tt.b) {
			t.Errorf("Merge(%v, %v) = %v does not descend both", tt.a, tt.b, got)
		}
		if rev := Merge(tt.b, tt.a); !slices.Equal(rev, got) {
			t.Errorf("Merge not commutative: %v vs %v", rev, got)
		}
	}
}

func TestNormalize(t *testing.T) {
	got := normalize(VV{{"b", 2}, {"a", 1}, {"b", 5}, {"c", 0}, {"a", 3}})
	if want := (VV{{"a", 3}, {"b", 5}}); !slices.Equal(got, want) {
		t.Errorf("normalize = %v, want %v", got, want)
	}
	canon := VV{{"a", 1}, {"b", 2}}
	if got := normalize(canon); &got[0] != &canon[0] {
		t.Error("normalize copied a VV that was already canonical")
	}
}
