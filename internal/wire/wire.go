// Package wire holds the strict varint reader shared by the binary
// encodings of the core (dvv contexts, stored objects) and the storage key
// layout. It is pure: it imports only the standard library's encoding
// packages, so the protocol core can link it (see internal/layering).
package wire

import (
	"encoding/binary"
	"errors"
)

// The errors a Reader returns. Callers wrap them with what they were
// decoding; their texts are part of error messages users see, so keep them.
var (
	ErrTruncated  = errors.New("truncated")
	ErrOverflow   = errors.New("varint overflows 64 bits")
	ErrNonMinimal = errors.New("non-minimal varint")
)

// Reader parses strictly: every varint must be minimal, because a decoder
// that accepted padded varints would accept several encodings of one value,
// and equal values (objects, contexts) could then hash or compare
// differently.
type Reader struct {
	b   []byte
	off int
}

// NewReader returns a Reader over b. It aliases b: slices returned by Bytes
// point into it.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Remaining is the number of bytes not yet read.
func (r *Reader) Remaining() int { return len(r.b) - r.off }

// Byte reads one byte.
func (r *Reader) Byte() (byte, error) {
	if r.Remaining() == 0 {
		return 0, ErrTruncated
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

// Uvarint reads one minimal unsigned varint.
func (r *Reader) Uvarint() (uint64, error) {
	x, n := binary.Uvarint(r.b[r.off:])
	switch {
	case n == 0:
		return 0, ErrTruncated
	case n < 0:
		return 0, ErrOverflow
	case n > 1 && r.b[r.off+n-1] == 0:
		return 0, ErrNonMinimal
	}
	r.off += n
	return x, nil
}

// Uint64 reads eight bytes, little-endian: a fixed-width field (a hash),
// which has one encoding by construction.
func (r *Reader) Uint64() (uint64, error) {
	if r.Remaining() < 8 {
		return 0, ErrTruncated
	}
	x := binary.LittleEndian.Uint64(r.b[r.off:])
	r.off += 8
	return x, nil
}

// Bytes reads a uvarint length and that many bytes, aliasing the input.
func (r *Reader) Bytes() ([]byte, error) {
	n, err := r.Uvarint()
	if err != nil {
		return nil, err
	}
	if n > uint64(r.Remaining()) {
		return nil, ErrTruncated
	}
	s := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return s, nil
}

// UvarintLen is the length of x's minimal uvarint encoding, for sizing
// buffers and for checking that a varint read elsewhere was minimal.
func UvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
