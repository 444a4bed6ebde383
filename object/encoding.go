package object

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/dynago/dynago/dvv"
	"github.com/dynago/dynago/internal/wire"
)

// ErrCorrupt is wrapped by every error Decode returns.
var ErrCorrupt = errors.New("object: corrupt encoding")

// Encoding, all integers minimal uvarints unless stated:
//
//	format byte (1)
//	entry count
//	per entry:   actor length, actor bytes, counter (1..dvv.MaxCounter),
//	             value count (<= counter)
//	per value:   flags byte (bit 0: tombstone), timestamp (zigzag varint),
//	             value length (0 for tombstones), value bytes
//	CRC-32C (Castagnoli) of everything above, 4 bytes little-endian
//
// The format byte comes first so a future format can be told apart from
// this one before anything else is trusted. CRC-32C because disks and
// networks flip bits, it catches every single-, double- and odd-count bit
// error at these sizes, and it is a single instruction per 8 bytes on
// amd64 and arm64.
const (
	formatVersion byte = 1
	crcLen             = 4
	flagDeleted   byte = 1
	// Smallest encodings of an entry (empty actor, one-byte counter, no
	// values) and of a value (flags, one-byte timestamp, empty value): used
	// to reject counts no input could hold before allocating for them.
	minEntryLen = 3
	minValueLen = 3
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Encode returns the canonical encoding of o. It is deterministic, so equal
// objects have equal encodings (and equal Hashes). A tombstone's value bytes
// are not encoded. o must be a well-formed clock (as built by this package
// and dvv); a malformed one encodes to bytes Decode rejects.
func Encode(o Object) []byte {
	return AppendEncode(make([]byte, 0, encodedLen(o)), o)
}

// AppendEncode appends the encoding of o to dst and returns the extended
// slice, so callers batching many objects can reuse one buffer.
func AppendEncode(dst []byte, o Object) []byte {
	start := len(dst)
	dst = append(dst, formatVersion)
	dst = binary.AppendUvarint(dst, uint64(len(o.Clock.Entries)))
	for _, e := range o.Clock.Entries {
		dst = binary.AppendUvarint(dst, uint64(len(e.Actor)))
		dst = append(dst, e.Actor...)
		dst = binary.AppendUvarint(dst, e.Counter)
		dst = binary.AppendUvarint(dst, uint64(len(e.Values)))
		for _, s := range e.Values {
			var flags byte
			val := s.Value
			if s.Deleted {
				flags, val = flagDeleted, nil
			}
			dst = append(dst, flags)
			dst = binary.AppendVarint(dst, s.Timestamp)
			dst = binary.AppendUvarint(dst, uint64(len(val)))
			dst = append(dst, val...)
		}
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

func encodedLen(o Object) int {
	n := 1 + wire.UvarintLen(uint64(len(o.Clock.Entries))) + crcLen
	for _, e := range o.Clock.Entries {
		n += wire.UvarintLen(uint64(len(e.Actor))) + len(e.Actor) + wire.UvarintLen(e.Counter) + wire.UvarintLen(uint64(len(e.Values)))
		for _, s := range e.Values {
			n += 1 + wire.UvarintLen(zigzag(s.Timestamp))
			if !s.Deleted {
				n += wire.UvarintLen(uint64(len(s.Value))) + len(s.Value)
			} else {
				n++
			}
		}
	}
	return n
}

// Decode parses an encoding produced by Encode, verifying its format byte
// and checksum. It is strict: it accepts only bytes Encode would produce
// for a well-formed object (minimal varints, sorted distinct actors,
// counters in 1..dvv.MaxCounter, no more values than counter, known flags,
// empty tombstones, no trailing bytes), so anything accepted re-encodes
// identically. The result does not alias b. It never panics; errors wrap
// ErrCorrupt.
func Decode(b []byte) (Object, error) {
	// First pass validates and sizes, so the second can put all siblings
	// and all value bytes in one allocation each.
	var d decoder
	body, err := d.check(b)
	if err != nil {
		return Object{}, err
	}
	fill := decoder{
		fill:    true,
		entries: make([]dvv.Entry[Sibling], d.nEntries),
		sibs:    make([]Sibling, d.nValues),
		vbytes:  make([]byte, d.nBytes),
	}
	fill.actors.Grow(d.nActorBytes)
	if err := fill.parse(body); err != nil {
		// Unreachable: the same bytes parsed cleanly above.
		return Object{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return Object{Clock: dvv.Set[Sibling]{Entries: fill.entries}}, nil
}

// Validate reports whether b is an encoding Decode accepts, without
// building the object: it runs exactly Decode's checks (format, checksum,
// strict parse), so bytes it accepts are canonical and can be passed on as
// they are where Encode(Decode(b)) would rebuild the same bytes. It
// allocates nothing unless it fails. Errors wrap ErrCorrupt.
func Validate(b []byte) error {
	var d decoder
	_, err := d.check(b)
	return err
}

// check verifies b's framing and checksum and parses its body without
// filling, counting what a fill needs. It returns the body.
func (d *decoder) check(b []byte) ([]byte, error) {
	if len(b) < 1+1+crcLen {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrCorrupt, len(b))
	}
	if b[0] != formatVersion {
		return nil, fmt.Errorf("%w: unknown format %d", ErrCorrupt, b[0])
	}
	body := b[:len(b)-crcLen]
	if want, got := binary.LittleEndian.Uint32(b[len(body):]), crc32.Checksum(body, castagnoli); got != want {
		return nil, fmt.Errorf("%w: checksum %08x, want %08x", ErrCorrupt, got, want)
	}
	if err := d.parse(body); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return body, nil
}

// decoder parses an encoding body (without checksum). Without fill it only
// validates and counts; with fill it writes into the preallocated slices.
type decoder struct {
	fill    bool
	entries []dvv.Entry[Sibling]
	sibs    []Sibling
	vbytes  []byte
	// actors holds every actor's bytes, one allocation for all of them:
	// grown to size first, it never moves, so each entry's Actor can be a
	// substring of it taken as soon as the actor is written.
	actors      strings.Builder
	nEntries    int
	nValues     int
	nBytes      int
	nActorBytes int
}

func (d *decoder) parse(body []byte) error {
	r := wire.NewReader(body[1:])
	n, err := r.Uvarint()
	if err != nil {
		return fmt.Errorf("entry count: %w", err)
	}
	if n > uint64(r.Remaining()/minEntryLen) {
		return fmt.Errorf("%d entries cannot fit in %d bytes", n, r.Remaining())
	}
	d.nEntries = int(n)
	var prev []byte
	for i := range d.nEntries {
		actor, err := r.Bytes()
		if err != nil {
			return fmt.Errorf("entry %d actor: %w", i, err)
		}
		if i > 0 && bytes.Compare(prev, actor) >= 0 {
			return fmt.Errorf("entry %d: actor out of order or duplicated", i)
		}
		prev = actor
		counter, err := r.Uvarint()
		if err != nil {
			return fmt.Errorf("entry %d counter: %w", i, err)
		}
		if counter == 0 || counter > dvv.MaxCounter {
			return fmt.Errorf("entry %d: counter %d out of range", i, counter)
		}
		nv, err := r.Uvarint()
		if err != nil {
			return fmt.Errorf("entry %d value count: %w", i, err)
		}
		if nv > counter {
			return fmt.Errorf("entry %d: %d values for %d dots", i, nv, counter)
		}
		if nv > uint64(r.Remaining()/minValueLen) {
			return fmt.Errorf("entry %d: %d values cannot fit in %d bytes", i, nv, r.Remaining())
		}
		first := d.nValues
		for k := range int(nv) {
			if err := d.value(r); err != nil {
				return fmt.Errorf("entry %d value %d: %w", i, k, err)
			}
		}
		d.nActorBytes += len(actor)
		if d.fill {
			e := &d.entries[i]
			d.actors.Write(actor)
			e.Actor, e.Counter = d.actors.String()[d.nActorBytes-len(actor):], counter
			if nv > 0 {
				// Capped so appending to one entry's values cannot overwrite
				// the next entry's.
				e.Values = d.sibs[first:d.nValues:d.nValues]
			}
		}
	}
	if r.Remaining() != 0 {
		return fmt.Errorf("%d trailing bytes", r.Remaining())
	}
	return nil
}

func (d *decoder) value(r *wire.Reader) error {
	flags, err := r.Byte()
	if err != nil {
		return err
	}
	if flags&^flagDeleted != 0 {
		return fmt.Errorf("unknown flags %#x", flags)
	}
	zz, err := r.Uvarint()
	if err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	val, err := r.Bytes()
	if err != nil {
		return fmt.Errorf("value: %w", err)
	}
	deleted := flags&flagDeleted != 0
	if deleted && len(val) > 0 {
		return errors.New("tombstone with a value")
	}
	if d.fill {
		s := &d.sibs[d.nValues]
		s.Deleted, s.Timestamp = deleted, unzigzag(zz)
		if len(val) > 0 {
			end := d.nBytes + len(val)
			copy(d.vbytes[d.nBytes:end], val)
			s.Value = d.vbytes[d.nBytes:end:end]
		}
	}
	d.nValues++
	d.nBytes += len(val)
	return nil
}

// Hash returns a 64-bit hash (xxhash) of an encoded object, the version
// hash Merkle trees compare. Encodings are canonical, so equal objects hash
// equally on every replica.
func Hash(encoded []byte) uint64 { return xxhash.Sum64(encoded) }

// Supersedes reports whether merging the object encoded as local with the
// one encoded as in (Merge(Decode(local), Decode(in))) gives in itself,
// sibling for sibling, so that in is the merge's encoding: covered. same
// reports that local also has in's history exactly (the merge changes
// nothing). It validates both as Validate does and builds nothing, so a
// replica receiving a newer version of a key, the usual write, decodes
// neither copy nor encodes the merge. When covered is false the caller
// merges the slow way. Errors wrap ErrCorrupt; a caller that must tell
// whose bytes were bad validates in first.
func Supersedes(local, in []byte) (covered, same bool, err error) {
	var d, e decoder
	body, err := d.check(local)
	if err != nil {
		return false, false, err
	}
	inBody, err := e.check(in)
	if err != nil {
		return false, false, err
	}
	// Both bodies are valid, so the reads below cannot fail.
	lr, ir := wire.NewReader(body[1:]), wire.NewReader(inBody[1:])
	n, _ := lr.Uvarint()
	m, _ := ir.Uvarint()
	same = n == m
	var (
		inActor []byte
		inLeft  = m // entries of in not read yet
	)
	next := func() bool { // reads in's next actor into inActor
		if inLeft == 0 {
			return false
		}
		inLeft--
		inActor, _ = ir.Bytes()
		return true
	}
	haveIn := next()
	for range n {
		actor, _ := lr.Bytes()
		c, _ := lr.Uvarint()
		k, _ := lr.Uvarint()
		for haveIn && bytes.Compare(inActor, actor) < 0 {
			// An actor only in has: the merge takes its entry whole.
			_, _ = ir.Uvarint()
			vs, _ := ir.Uvarint()
			skipValues(ir, vs)
			haveIn = next()
			same = false
		}
		if !haveIn || !bytes.Equal(inActor, actor) {
			return false, false, nil // an actor only local has stays in the merge
		}
		cIn, _ := ir.Uvarint()
		vs, _ := ir.Uvarint()
		switch {
		case cIn < c:
			return false, false, nil // the merge keeps local's newer counter
		case cIn > c:
			// The merge keeps in's values above both floors: all of them
			// when local's floor is not above in's.
			if c-k > cIn-vs {
				return false, false, nil
			}
			same = false
			skipValues(lr, k)
			skipValues(ir, vs)
		default:
			// Equal counters: the merge takes local's values, as many as
			// the higher floor leaves; they must be in's, byte for byte
			// (encodings are canonical).
			if k < vs {
				return false, false, nil
			}
			for range vs {
				lf, _ := lr.Byte()
				lt, _ := lr.Uvarint()
				lv, _ := lr.Bytes()
				f, _ := ir.Byte()
				t, _ := ir.Uvarint()
				v, _ := ir.Bytes()
				if lf != f || lt != t || !bytes.Equal(lv, v) {
					return false, false, nil
				}
			}
			if k > vs {
				same = false
			}
			skipValues(lr, k-vs)
		}
		haveIn = next()
	}
	return true, same, nil
}

// skipValues reads past n values of a validated body.
func skipValues(r *wire.Reader, n uint64) {
	for range n {
		_, _ = r.Byte()
		_, _ = r.Uvarint()
		_, _ = r.Bytes()
	}
}
