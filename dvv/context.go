package dvv

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dynago/dynago/internal/wire"
)

// ErrBadContext is wrapped by every error DecodeContext returns.
var ErrBadContext = errors.New("dvv: bad context")

// contextFormat is the first byte of every encoded context, so the format
// can change later without old contexts held by clients being misread.
const contextFormat byte = 1

// minDotLen is the smallest encoding of one dot: an empty actor (length
// byte 0) and a one-byte counter. Used to reject counts no input could hold
// before allocating for them.
const minDotLen = 2

// EncodeContext encodes v for clients: a format byte, the number of dots,
// then per dot the actor's length and bytes and the counter, all integers as
// minimal uvarints. The encoding is deterministic, so equal contexts are
// equal bytes. The empty context encodes to no bytes at all, the same as a
// blind write sending no context. v is normalized first (see VV); counters
// above MaxCounter are encoded but DecodeContext will refuse them.
func EncodeContext(v VV) []byte {
	v = normalize(v)
	if len(v) == 0 {
		return nil
	}
	n := 1 + wire.UvarintLen(uint64(len(v)))
	for _, d := range v {
		n += wire.UvarintLen(uint64(len(d.Actor))) + len(d.Actor) + wire.UvarintLen(d.Counter)
	}
	b := make([]byte, 0, n)
	b = append(b, contextFormat)
	b = binary.AppendUvarint(b, uint64(len(v)))
	for _, d := range v {
		b = binary.AppendUvarint(b, uint64(len(d.Actor)))
		b = append(b, d.Actor...)
		b = binary.AppendUvarint(b, d.Counter)
	}
	return b
}

// Context returns EncodeContext(s.Join()) without building the join: it
// sizes the encoding in one pass and writes it in a second, one allocation
// in all. It is the context handed to clients with every read and write.
func (s Set[V]) Context() []byte {
	n, dots, ok := s.contextLen()
	if !ok {
		return EncodeContext(s.Join())
	}
	if dots == 0 {
		return nil
	}
	b := make([]byte, 0, n)
	b = append(b, contextFormat)
	b = binary.AppendUvarint(b, uint64(dots))
	for _, e := range s.Entries {
		if e.Counter > 0 {
			b = binary.AppendUvarint(b, uint64(len(e.Actor)))
			b = append(b, e.Actor...)
			b = binary.AppendUvarint(b, e.Counter)
		}
	}
	return b
}

// ContextLen returns len(s.Context()) without encoding it.
func (s Set[V]) ContextLen() int {
	if n, _, ok := s.contextLen(); ok {
		return n
	}
	return len(EncodeContext(s.Join()))
}

// contextLen sizes the encoding of s's join and counts its dots. ok is
// false when the join would not be canonical (entries out of order or
// repeated, possible only in a hand-built set): EncodeContext must
// normalize it first.
func (s Set[V]) contextLen() (n, dots int, ok bool) {
	prev := -1
	for i, e := range s.Entries {
		if e.Counter == 0 {
			continue
		}
		if prev >= 0 && s.Entries[prev].Actor >= e.Actor {
			return 0, 0, false
		}
		prev = i
		dots++
		n += wire.UvarintLen(uint64(len(e.Actor))) + len(e.Actor) + wire.UvarintLen(e.Counter)
	}
	if dots == 0 {
		return 0, 0, true
	}
	return n + 1 + wire.UvarintLen(uint64(dots)), dots, true
}

// DecodeContext decodes a context produced by EncodeContext. Contexts come
// from clients, so it is strict: it accepts only the exact bytes
// EncodeContext would produce for a valid VV (known format, minimal
// varints, sorted distinct actors, counters in 1..MaxCounter, no trailing
// bytes), so that anything accepted re-encodes identically. Empty or nil
// input is the empty context. It never panics; errors wrap ErrBadContext.
func DecodeContext(b []byte) (VV, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if b[0] != contextFormat {
		return nil, fmt.Errorf("%w: unknown format %d", ErrBadContext, b[0])
	}
	r := wire.NewReader(b[1:])
	count, err := r.Uvarint()
	if err != nil {
		return nil, fmt.Errorf("%w: dot count: %w", ErrBadContext, err)
	}
	if count == 0 {
		// The empty context is encoded as no bytes; accepting this too would
		// give it two encodings.
		return nil, fmt.Errorf("%w: explicit empty context", ErrBadContext)
	}
	if count > uint64(r.Remaining()/minDotLen) {
		return nil, fmt.Errorf("%w: %d dots cannot fit in %d bytes", ErrBadContext, count, r.Remaining())
	}
	v := make(VV, 0, count)
	for i := range count {
		actor, err := r.Bytes()
		if err != nil {
			return nil, fmt.Errorf("%w: dot %d actor: %w", ErrBadContext, i, err)
		}
		c, err := r.Uvarint()
		if err != nil {
			return nil, fmt.Errorf("%w: dot %d counter: %w", ErrBadContext, i, err)
		}
		if c == 0 || c > MaxCounter {
			return nil, fmt.Errorf("%w: dot %d counter %d out of range", ErrBadContext, i, c)
		}
		a := string(actor)
		if len(v) > 0 && v[len(v)-1].Actor >= a {
			return nil, fmt.Errorf("%w: dot %d actor out of order or duplicated", ErrBadContext, i)
		}
		v = append(v, Dot{Actor: a, Counter: c})
	}
	if r.Remaining() != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadContext, r.Remaining())
	}
	return v, nil
}
