package merkle

import "testing"

func BenchmarkUpdate(b *testing.B) {
	tr := mustNew(b, Config{})
	keys := make([][]byte, 4096)
	for i := range keys {
		keys[i] = key(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		k := keys[i&4095]
		v := uint64(i)>>12 + 1
		tr.Update(k, v-1, v)
	}
}

func BenchmarkRootAfterOneUpdate(b *testing.B) {
	tr := mustNew(b, Config{})
	for i := range 100_000 {
		tr.Update(key(i), 0, 1)
	}
	k := key(42)
	v := uint64(1)
	b.ReportAllocs()
	for b.Loop() {
		tr.Update(k, v, v+1)
		v++
		_ = tr.Root()
	}
}

func BenchmarkBuild100k(b *testing.B) {
	keys := make([][]byte, 100_000)
	for i := range keys {
		keys[i] = key(i)
	}
	tr := mustNew(b, Config{})
	b.ReportAllocs()
	for b.Loop() {
		tr.Reset()
		for i, k := range keys {
			tr.Update(k, 0, uint64(i)+1)
		}
		_ = tr.Root()
	}
}

func BenchmarkDiffOneKey(b *testing.B) {
	x, y := mustNew(b, Config{}), mustNew(b, Config{})
	for i := range 100_000 {
		x.Update(key(i), 0, 1)
		y.Update(key(i), 0, 1)
	}
	y.Update(key(7), 1, 2)
	b.ReportAllocs()
	for b.Loop() {
		if len(Diff(x, y)) != 1 {
			b.Fatal("want one differing bucket")
		}
	}
}
