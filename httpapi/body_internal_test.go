package httpapi

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/iotest"
)

// TestReadBodyAsReadAll checks readBody against what readValue did before
// it: io.ReadAll through an http.MaxBytesReader, for bodies around the
// limit, declared sizes right, unknown or wrong, and readers that return
// little at a time or the end with the last bytes.
func TestReadBodyAsReadAll(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	wraps := map[string]func(io.Reader) io.Reader{
		"plain":    func(r io.Reader) io.Reader { return r },
		"onebyte":  iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"dataerr":  iotest.DataErrReader,
		"truncate": func(r io.Reader) io.Reader { return io.MultiReader(r, iotest.ErrReader(io.ErrUnexpectedEOF)) },
	}
	for _, limit := range []int{0, 1, 100, 511, 512, 513, 1024, 5000} {
		for _, n := range []int{0, 1, limit - 1, limit, limit + 1, limit + 2, 2*limit + 600} {
			if n < 0 {
				continue
			}
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(rng.IntN(256))
			}
			for _, declared := range []int64{-1, int64(n), int64(n / 2), int64(n) + 7} {
				if declared > int64(limit) {
					continue // readValue refuses it before reading
				}
				for name, wrap := range wraps {
					want, werr := io.ReadAll(http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(wrap(bytes.NewReader(data))), int64(limit)))
					got, gerr := readBody(wrap(bytes.NewReader(data)), declared, limit)
					var wm, gm *http.MaxBytesError
					switch {
					case errors.As(werr, &wm):
						if !errors.As(gerr, &gm) || gm.Limit != wm.Limit {
							t.Errorf("limit %d, %d bytes, declared %d, %s: err %v, want %v", limit, n, declared, name, gerr, werr)
						}
					case werr != nil:
						if !errors.Is(gerr, werr) {
							t.Errorf("limit %d, %d bytes, declared %d, %s: err %v, want %v", limit, n, declared, name, gerr, werr)
						}
					default:
						if gerr != nil || !bytes.Equal(got, want) || got == nil {
							t.Errorf("limit %d, %d bytes, declared %d, %s: %d bytes %v, want %d", limit, n, declared, name, len(got), gerr, len(want))
						}
					}
				}
			}
		}
	}
}

// countingReader counts the bytes it hands out.
type countingReader struct{ n int }

func (c *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	c.n += len(p)
	return len(p), nil
}

func TestReadBodyReadsAtMostLimitPlusOne(t *testing.T) {
	for _, limit := range []int{0, 1, 511, 512, 1000, 1 << 20} {
		for _, declared := range []int64{-1, 0, int64(limit)} {
			var c countingReader
			if _, err := readBody(&c, declared, limit); err == nil {
				t.Fatalf("limit %d: an endless body was accepted", limit)
			}
			if c.n > limit+1 {
				t.Errorf("limit %d, declared %d: read %d bytes", limit, declared, c.n)
			}
		}
	}
}

// TestReadBodySeesTheEnd checks that a body of exactly its declared size
// is read until its reader reports the end, which is what clears the
// body deadline (deadlineBody), and that this takes one allocation.
func TestReadBodySeesTheEnd(t *testing.T) {
	data := bytes.Repeat([]byte("v"), 100)
	var sawEOF bool
	r := readerFunc(func(p []byte) (int, error) {
		n, err := bytes.NewReader(data).Read(p)
		data = data[n:]
		if err == io.EOF {
			sawEOF = true
		}
		return n, err
	})
	got, err := readBody(r, 100, 1<<20)
	if err != nil || len(got) != 100 || !sawEOF {
		t.Fatalf("%d bytes, %v, EOF seen: %v", len(got), err, sawEOF)
	}
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = readBody(bytes.NewReader(got), 100, 1<<20)
	})
	if allocs > 2 { // the buffer, and the bytes.Reader
		t.Errorf("%v allocations", allocs)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// TestReadBodyPresizeIsBounded: a declared size makes room for at most
// maxPresize bytes before they arrive.
func TestReadBodyPresizeIsBounded(t *testing.T) {
	var seen int
	r := readerFunc(func(p []byte) (int, error) {
		seen = max(seen, len(p))
		return 0, io.ErrUnexpectedEOF // the client stalls and goes away
	})
	if _, err := readBody(r, 1<<20, 1<<20); err != io.ErrUnexpectedEOF {
		t.Fatalf("err %v", err)
	}
	if seen > maxPresize {
		t.Fatalf("read into %d bytes before any arrived", seen)
	}
}
