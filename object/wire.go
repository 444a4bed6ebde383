package object

import (
	"encoding/binary"
	"errors"
)

var (
	errTruncated  = errors.New("truncated")
	errOverflow   = errors.New("varint overflows 64 bits")
	errNonMinimal = errors.New("non-minimal varint")
)

// reader parses strictly: every varint must be minimal, because a decoder
// that accepted padded varints would accept several encodings of one object
// and equal objects could then hash differently.
type reader struct {
	b   []byte
	off int
}

func (r *reader) remaining() int { return len(r.b) - r.off }

func (r *reader) uvarint() (uint64, error) {
	x, n := binary.Uvarint(r.b[r.off:])
	switch {
	case n == 0:
		return 0, errTruncated
	case n < 0:
		return 0, errOverflow
	case n > 1 && r.b[r.off+n-1] == 0:
		return 0, errNonMinimal
	}
	r.off += n
	return x, nil
}

// bytes reads a uvarint length and that many bytes, aliasing r.b.
func (r *reader) bytes() ([]byte, error) {
	n, err := r.uvarint()
	if err != nil {
		return nil, err
	}
	if n > uint64(r.remaining()) {
		return nil, errTruncated
	}
	s := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return s, nil
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// zigzag and unzigzag map signed to unsigned as binary.AppendVarint does, so
// a timestamp can be read with the strict uvarint reader.
func zigzag(x int64) uint64 { return uint64(x<<1) ^ uint64(x>>63) }

func unzigzag(u uint64) int64 {
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}
