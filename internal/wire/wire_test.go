package wire

import (
	"encoding/binary"
	"errors"
	"testing"
)

func TestReaderRoundTrip(t *testing.T) {
	b := []byte{7}
	b = binary.AppendUvarint(b, 300)
	b = binary.AppendUvarint(b, 3)
	b = append(b, "abc"...)
	b = binary.LittleEndian.AppendUint64(b, 1<<60+5)
	r := NewReader(b)
	c, err := r.Byte()
	if err != nil || c != 7 {
		t.Fatalf("Byte = %d, %v; want 7", c, err)
	}
	x, err := r.Uvarint()
	if err != nil || x != 300 {
		t.Fatalf("Uvarint = %d, %v; want 300", x, err)
	}
	s, err := r.Bytes()
	if err != nil || string(s) != "abc" {
		t.Fatalf("Bytes = %q, %v; want abc", s, err)
	}
	if u, err := r.Uint64(); err != nil || u != 1<<60+5 {
		t.Fatalf("Uint64 = %d, %v; want %d", u, err, uint64(1<<60+5))
	}
	if r.Remaining() != 0 {
		t.Fatalf("Remaining = %d, want 0", r.Remaining())
	}
}

func TestReaderRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"cut varint", []byte{0x80}, ErrTruncated},
		{"padded zero", []byte{0x80, 0x00}, ErrNonMinimal},
		{"padded one", []byte{0x81, 0x00}, ErrNonMinimal},
		{"overflow", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, ErrOverflow},
	} {
		if _, err := NewReader(tc.in).Uvarint(); !errors.Is(err, tc.want) {
			t.Errorf("%s: Uvarint err = %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := NewReader(nil).Byte(); !errors.Is(err, ErrTruncated) {
		t.Errorf("Byte on empty err = %v, want %v", err, ErrTruncated)
	}
	if _, err := NewReader(make([]byte, 7)).Uint64(); !errors.Is(err, ErrTruncated) {
		t.Errorf("Uint64 on 7 bytes err = %v, want %v", err, ErrTruncated)
	}
	if _, err := NewReader([]byte{5, 'a'}).Bytes(); !errors.Is(err, ErrTruncated) {
		t.Errorf("short Bytes err = %v, want %v", err, ErrTruncated)
	}
}

func TestUvarintLen(t *testing.T) {
	for _, x := range []uint64{0, 1, 127, 128, 16383, 16384, 1<<63 - 1, 1<<64 - 1} {
		if got, want := UvarintLen(x), len(binary.AppendUvarint(nil, x)); got != want {
			t.Errorf("UvarintLen(%d) = %d, want %d", x, got, want)
		}
	}
}
