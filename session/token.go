// Package session owns dynago's session tokens: the record a client
// carries so that its reads and writes get Terry et al.'s session
// guarantees (read-your-writes, monotonic reads, monotonic writes,
// writes-follow-reads; "Session Guarantees for Weakly Consistent
// Replicated Data", PDIS 1994) from replicas that are only eventually
// consistent, at any R and W.
//
// A Token holds, per key the session touched, the join of the versions
// (version vectors, as in a context) the session read or wrote. A
// coordinator serving a session read answers only with a version that
// dominates the token's entry for the key; a session write carries the
// entry in its context, so the new version follows everything the session
// saw of the key.
//
// Front ends apply a token with node.WithSession before proposing a
// request and record the answer with node.ObserveSession: the HTTP API
// (X-Dynago-Session), the simulator, and the RESP front end, where a
// connection keeps one token (SESSION START, RESUME, TOKEN, END).
//
// The package is pure: no I/O, no clock, no randomness. Tokens come from
// clients, so Decode is strict and bounded, and never panics.
//
// # Bounds
//
// A token holds at most MaxKeys keys and encodes to at most MaxBytes bytes
// (MaxHeaderSize characters as a header). Beyond either bound the least
// recently used keys are dropped and counted in Dropped: the guarantees
// then hold for the keys still in the token, and no longer for the dropped
// ones (a read of a dropped key is an ordinary read). A coarser but sound
// fallback, such as one per-actor vector for all keys, does not work with
// dynago's versions: an actor's counters are per key and start at the
// coordinator's clock in microseconds (dvv.UpdateAt), so a per-actor
// maximum over many keys is a counter most keys never reach, and every
// read of them would wait for a version that cannot come (503). Dropping
// is visible (Dropped), never silent.
package session

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/dynago/dynago/dvv"
	"github.com/dynago/dynago/internal/wire"
)

// Bounds of a token.
const (
	// MaxKeys bounds the keys a token remembers. A typical entry (a key
	// written by three coordinators) encodes in about 35 bytes, so 128
	// keys fit MaxBytes with room to spare.
	MaxKeys = 128
	// MaxBytes bounds a token's binary encoding: its base64url form is at
	// most MaxHeaderSize characters, the limit httpapi already applies to
	// X-Dynago-Context (8 KiB: nginx's default header buffer).
	MaxBytes = 6000
	// MaxHeaderSize bounds the header form (String) of a token.
	MaxHeaderSize = 8 << 10
	// maxActorLen bounds an actor name (node.MaxActorLen).
	maxActorLen = 510
)

// ErrBadToken is wrapped by every error Decode and Parse return.
var ErrBadToken = errors.New("session: bad token")

// format is the first byte of every encoded token, so that the format can
// change without old tokens being misread.
const format byte = 1

// checksumLen is the size of the checksum ending every encoded token.
const checksumLen = 4

// flagDeleted marks an entry whose newest observed version held no live
// value (a delete, or a read that found only a tombstone).
const flagDeleted byte = 1

// entry is one key of a token.
type entry struct {
	hash    uint64 // xxhash of the key: the token never holds key bytes
	vv      dvv.VV
	deleted bool
}

// Token is a session's record of the versions it saw, per key. The zero
// value is the empty session. Tokens are not safe for concurrent use.
type Token struct {
	entries []entry // most recently used first
	// Dropped counts the keys evicted to keep the token within MaxKeys
	// and MaxBytes: their guarantees no longer hold.
	Dropped uint64
}

// KeyHash names key inside a token. A collision of two keys' hashes
// (2^-64 per pair) would make each key's reads wait for the other's
// versions as well: stricter, never staler.
func KeyHash(key []byte) uint64 { return xxhash.Sum64(key) }

// Len returns the number of keys the token remembers.
func (t *Token) Len() int { return len(t.entries) }

// Floor returns what a session read of key must return at least: the
// join of the versions the session saw of key (nil when none), and
// whether the newest of them held no live value, in which case finding
// nothing at all satisfies the session too (the key may have been reaped
// since).
func (t *Token) Floor(key []byte) (dvv.VV, bool) {
	if i := t.find(KeyHash(key)); i >= 0 {
		return t.entries[i].vv, t.entries[i].deleted
	}
	return nil, false
}

func (t *Token) find(h uint64) int {
	return slices.IndexFunc(t.entries, func(e entry) bool { return e.hash == h })
}

// Observe records that the session read or wrote version vv of key (the
// context of the answer); deleted says that version holds no live value.
// key becomes the most recently used; the token is then trimmed to its
// bounds. An empty vv (nothing found anywhere) changes nothing.
func (t *Token) Observe(key []byte, vv dvv.VV, deleted bool) {
	// Versions from a node's reply are canonical already; a hand-built
	// one is sorted and deduplicated here, as dvv does with contexts, so
	// that the token always encodes. A counter beyond dvv.MaxCounter
	// could not come from a node: such a version is not recorded.
	vv, err := dvv.DecodeContext(dvv.EncodeContext(vv))
	if err != nil {
		return
	}
	t.observe(entry{hash: KeyHash(key), vv: vv, deleted: deleted})
	t.trim()
}

func (t *Token) observe(e entry) {
	if len(e.vv) == 0 {
		return
	}
	i := t.find(e.hash)
	if i >= 0 {
		old := t.entries[i]
		t.entries = slices.Delete(t.entries, i, i+1)
		switch {
		case e.vv.Descends(old.vv):
			// e is the newer view: its deletedness stands.
		case old.vv.Descends(e.vv):
			e.deleted = old.deleted
		default:
			// Concurrent views: the joined version holds whatever live
			// value either held.
			e.deleted = e.deleted && old.deleted
		}
		e.vv = dvv.Merge(old.vv, e.vv)
	}
	t.entries = slices.Insert(t.entries, 0, e)
}

// Merge folds o into t: afterwards t has seen everything either had. For
// a client whose concurrent requests of one session came back with
// different tokens: o (the newer answer) has its keys become the most
// recently used, in o's order.
func (t *Token) Merge(o *Token) {
	for k := len(o.entries) - 1; k >= 0; k-- {
		e := o.entries[k]
		e.vv = slices.Clone(e.vv)
		t.observe(e)
	}
	t.Dropped = max(t.Dropped, o.Dropped)
	t.trim()
}

// trim drops the least recently used keys until the token fits MaxKeys
// and MaxBytes. The most recent key is kept unless it alone is too large.
func (t *Token) trim() {
	for len(t.entries) > MaxKeys {
		t.drop()
	}
	for len(t.entries) > 0 && t.size() > MaxBytes {
		t.drop()
	}
}

func (t *Token) drop() {
	t.entries = t.entries[:len(t.entries)-1]
	t.Dropped++
}

// Clone returns an independent copy of t.
func (t *Token) Clone() *Token {
	c := &Token{Dropped: t.Dropped, entries: make([]entry, len(t.entries))}
	for i, e := range t.entries {
		c.entries[i] = entry{hash: e.hash, vv: slices.Clone(e.vv), deleted: e.deleted}
	}
	return c
}

// actors returns the sorted distinct actors of t's entries.
func (t *Token) actors() []string {
	var as []string
	for _, e := range t.entries {
		for _, d := range e.vv {
			as = append(as, d.Actor)
		}
	}
	slices.Sort(as)
	return slices.Compact(as)
}

func (t *Token) size() int { return len(t.Encode()) }

// Encode returns the binary form of t: a format byte, Dropped, a table of
// the actors (sorted, each written once however many keys name it), then
// per key, most recent first, its 8-byte hash, a flags byte and its dots
// as (actor index, counter); all integers minimal uvarints; then a 4-byte
// checksum (low 32 bits of the xxhash of all before it) that catches a
// token truncated or mangled on its way. The empty token encodes to nil.
func (t *Token) Encode() []byte {
	if len(t.entries) == 0 && t.Dropped == 0 {
		return nil
	}
	actors := t.actors()
	b := []byte{format}
	b = binary.AppendUvarint(b, t.Dropped)
	b = binary.AppendUvarint(b, uint64(len(actors)))
	for _, a := range actors {
		b = binary.AppendUvarint(b, uint64(len(a)))
		b = append(b, a...)
	}
	b = binary.AppendUvarint(b, uint64(len(t.entries)))
	for _, e := range t.entries {
		b = binary.LittleEndian.AppendUint64(b, e.hash)
		var flags byte
		if e.deleted {
			flags |= flagDeleted
		}
		b = append(b, flags)
		b = binary.AppendUvarint(b, uint64(len(e.vv)))
		for _, d := range e.vv {
			idx, _ := slices.BinarySearch(actors, d.Actor)
			b = binary.AppendUvarint(b, uint64(idx))
			b = binary.AppendUvarint(b, d.Counter)
		}
	}
	return appendChecksum(b)
}

// appendChecksum appends the checksum of b to b.
func appendChecksum(b []byte) []byte {
	return binary.LittleEndian.AppendUint32(b, uint32(xxhash.Sum64(b)))
}

// String returns the header form of t: unpadded base64url of Encode, ""
// for the empty token.
func (t *Token) String() string { return base64.RawURLEncoding.EncodeToString(t.Encode()) }

// Parse reverses String. Trailing '=' padding is tolerated; "" is the
// empty token. Errors wrap ErrBadToken.
func Parse(s string) (*Token, error) {
	s = strings.TrimRight(s, "=")
	if len(s) > MaxHeaderSize {
		return nil, fmt.Errorf("%w: %d characters, more than the limit of %d", ErrBadToken, len(s), MaxHeaderSize)
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: not unpadded base64url: %v", ErrBadToken, err)
	}
	return Decode(b)
}

// Decode reverses Encode, strictly: it accepts only bytes Encode produces
// for a token within the bounds (known format, matching checksum, minimal
// varints, sorted distinct actors all used, at most MaxKeys distinct keys,
// dots sorted by actor with counters in 1..dvv.MaxCounter, no unknown
// flags, no trailing bytes), so anything accepted re-encodes identically.
// Empty input is the empty token. It never panics.
func Decode(b []byte) (*Token, error) {
	t := &Token{}
	if len(b) == 0 {
		return t, nil
	}
	bad := func(format string, args ...any) (*Token, error) {
		return nil, fmt.Errorf("%w: %s", ErrBadToken, fmt.Sprintf(format, args...))
	}
	if len(b) > MaxBytes {
		return bad("%d bytes, more than the limit of %d", len(b), MaxBytes)
	}
	if b[0] != format {
		return bad("unknown format %d", b[0])
	}
	if len(b) < 1+checksumLen {
		return bad("%d bytes is too short", len(b))
	}
	body, sum := b[:len(b)-checksumLen], b[len(b)-checksumLen:]
	if binary.LittleEndian.Uint32(sum) != uint32(xxhash.Sum64(body)) {
		return bad("checksum mismatch (truncated or altered)")
	}
	// Strict: a decoder accepting padded varints would accept several
	// encodings of one token.
	r := wire.NewReader(body[1:])
	var err error
	if t.Dropped, err = r.Uvarint(); err != nil {
		return bad("dropped: %v", err)
	}
	na, err := r.Uvarint()
	if err != nil {
		return bad("actor count: %v", err)
	}
	if na > uint64(r.Remaining()/2) { // an actor takes at least 2 bytes
		return bad("%d actors cannot fit", na)
	}
	actors := make([]string, 0, na)
	for i := range na {
		a, err := r.Bytes()
		if err != nil {
			return bad("actor %d: %v", i, err)
		}
		if len(a) == 0 || len(a) > maxActorLen {
			return bad("actor %d of %d bytes outside 1..%d", i, len(a), maxActorLen)
		}
		if len(actors) > 0 && actors[len(actors)-1] >= string(a) {
			return bad("actor %d out of order or duplicated", i)
		}
		actors = append(actors, string(a))
	}
	ne, err := r.Uvarint()
	if err != nil {
		return bad("key count: %v", err)
	}
	if ne > MaxKeys {
		return bad("%d keys, more than the limit of %d", ne, MaxKeys)
	}
	used := make([]bool, len(actors))
	seen := make(map[uint64]bool, ne)
	for i := range ne {
		var e entry
		if e.hash, err = r.Uint64(); err != nil {
			return bad("key %d hash: %v", i, err)
		}
		if seen[e.hash] {
			return bad("key %d repeated", i)
		}
		seen[e.hash] = true
		flags, err := r.Byte()
		if err != nil {
			return bad("key %d flags: %v", i, err)
		}
		if flags&^flagDeleted != 0 {
			return bad("key %d: unknown flags %#x", i, flags)
		}
		e.deleted = flags&flagDeleted != 0
		nd, err := r.Uvarint()
		if err != nil {
			return bad("key %d dot count: %v", i, err)
		}
		if nd == 0 || nd > uint64(len(actors)) {
			return bad("key %d: %d dots for %d actors", i, nd, len(actors))
		}
		e.vv = make(dvv.VV, 0, nd)
		last := -1
		for j := range nd {
			idx, err := r.Uvarint()
			if err != nil {
				return bad("key %d dot %d actor: %v", i, j, err)
			}
			if idx >= uint64(len(actors)) || int(idx) <= last {
				return bad("key %d dot %d: actor index %d out of range or order", i, j, idx)
			}
			last = int(idx)
			c, err := r.Uvarint()
			if err != nil {
				return bad("key %d dot %d counter: %v", i, j, err)
			}
			if c == 0 || c > dvv.MaxCounter {
				return bad("key %d dot %d: counter %d out of range", i, j, c)
			}
			used[idx] = true
			e.vv = append(e.vv, dvv.Dot{Actor: actors[idx], Counter: c})
		}
		t.entries = append(t.entries, e)
	}
	if r.Remaining() != 0 {
		return bad("%d trailing bytes", r.Remaining())
	}
	if slices.Contains(used, false) {
		return bad("an actor no key uses")
	}
	if len(t.entries) == 0 && t.Dropped == 0 {
		return bad("explicit empty token") // the empty token is no bytes
	}
	return t, nil
}
