package dynagodb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// ErrBadRecord reports a stored value that is not a record in this
// package's encoding (written by something other than this binding).
var ErrBadRecord = errors.New("dynagodb: value is not a YCSB record")

// recordVersion is the first byte of every encoded record.
const recordVersion = 1

// field is one field of a record: its value and when it was last written.
type field struct {
	value []byte
	// stamp is the writer's wall clock (Unix nanoseconds) when the field
	// was last written, raised past the stamp it replaced; it decides
	// which sibling's value of the field a merge keeps.
	stamp uint64
}

// record is a YCSB record: field name -> field.
type record map[string]field

// encode returns the record's one dynago value:
//
//	version byte (1)
//	uvarint number of fields
//	per field, in ascending byte order of the names:
//	    uvarint len(name), name, 8-byte big-endian stamp, uvarint len(value), value
//
// The same record always encodes to the same bytes.
func (r record) encode() []byte {
	names := make([]string, 0, len(r))
	size := 1 + binary.MaxVarintLen64
	for name, f := range r {
		names = append(names, name)
		size += len(name) + len(f.value) + 8 + 2*binary.MaxVarintLen64
	}
	slices.Sort(names)
	b := make([]byte, 0, size)
	b = append(b, recordVersion)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, name := range names {
		f := r[name]
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
		b = binary.BigEndian.AppendUint64(b, f.stamp)
		b = binary.AppendUvarint(b, uint64(len(f.value)))
		b = append(b, f.value...)
	}
	return b
}

// decode parses a value written by encode. The record's values alias b.
func decode(b []byte) (record, error) {
	if len(b) == 0 || b[0] != recordVersion {
		return nil, fmt.Errorf("%w: unknown format", ErrBadRecord)
	}
	b = b[1:]
	n, err := uvarint(&b)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(b)) { // every field takes at least a byte
		return nil, fmt.Errorf("%w: %d fields in %d bytes", ErrBadRecord, n, len(b))
	}
	r := make(record, n)
	prev := ""
	for i := range n {
		name, err := chunk(&b)
		if err != nil {
			return nil, err
		}
		if i > 0 && string(name) <= prev {
			return nil, fmt.Errorf("%w: field names not in ascending order", ErrBadRecord)
		}
		prev = string(name)
		if len(b) < 8 {
			return nil, fmt.Errorf("%w: truncated", ErrBadRecord)
		}
		stamp := binary.BigEndian.Uint64(b)
		b = b[8:]
		value, err := chunk(&b)
		if err != nil {
			return nil, err
		}
		r[prev] = field{value: value, stamp: stamp}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadRecord, len(b))
	}
	return r, nil
}

func uvarint(b *[]byte) (uint64, error) {
	v, k := binary.Uvarint(*b)
	if k <= 0 {
		return 0, fmt.Errorf("%w: bad length", ErrBadRecord)
	}
	*b = (*b)[k:]
	return v, nil
}

// chunk reads a uvarint length and that many bytes.
func chunk(b *[]byte) ([]byte, error) {
	n, err := uvarint(b)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(*b)) {
		return nil, fmt.Errorf("%w: truncated", ErrBadRecord)
	}
	out := (*b)[:n:n]
	*b = (*b)[n:]
	return out, nil
}

// merge resolves siblings into one record: the union of their fields and,
// for a field that several siblings hold, the value with the largest stamp
// (equal stamps: the larger value in byte order). The result depends only
// on the set of siblings, not on their order, and merging is associative
// and commutative: every reader of the same siblings gets the same record.
func merge(siblings [][]byte) (record, error) {
	var out record
	for _, s := range siblings {
		r, err := decode(s)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = r
			continue
		}
		for name, f := range r {
			if cur, ok := out[name]; !ok || f.newer(cur) {
				out[name] = f
			}
		}
	}
	return out, nil
}

// newer reports whether f wins over g in a merge.
func (f field) newer(g field) bool {
	if f.stamp != g.stamp {
		return f.stamp > g.stamp
	}
	return bytes.Compare(f.value, g.value) > 0
}
