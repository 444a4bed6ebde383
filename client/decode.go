package client

import (
	"encoding/base64"
)

// decodeValues decodes the answer of a get, {"key","context","siblings"},
// in the one form nodes write it (httpapi's encoder: members in that
// order, no whitespace but a final newline, siblings as standard base64
// strings, a key without escapes), without encoding/json's reflection,
// which with its allocations was the largest part of a get's CPU in the
// client. ok is false for anything else (a JSON escape in the key, a
// "trace" member, null, whitespace, another order, a context or sibling
// that does not decode): the caller then decodes with encoding/json, which
// accepts or rejects it as it always did. So when ok is true the result is
// what json.Unmarshal into api.Values followed by ParseContext gives:
// siblings non-nil, each non-nil ([]byte{} for ""), and a nil Context for
// "".
func decodeValues(b []byte) (siblings [][]byte, ctx Context, ok bool) {
	p := parser{b: b}
	if !p.lit(`{"key":`) || !p.skipKey() || !p.lit(`,"context":`) {
		return nil, nil, false
	}
	token, ok := p.str(&base64URL)
	if !ok || !p.lit(`,"siblings":[`) {
		return nil, nil, false
	}
	// First pass: where the siblings are and how many bytes they decode
	// to, so that one slice holds them all.
	start := p.i
	n, total := 0, 0
	for !p.lit("]") {
		if n > 0 && !p.lit(",") {
			return nil, nil, false
		}
		s, ok := p.str(&base64Std)
		if !ok {
			return nil, nil, false
		}
		n++
		total += base64.StdEncoding.DecodedLen(len(s))
	}
	if !p.lit("}") || !p.trailingSpace() {
		return nil, nil, false
	}
	if ctx, ok = decodeToken(token); !ok {
		return nil, nil, false
	}
	siblings = make([][]byte, n)
	data := make([]byte, total)
	p.i = start
	for i := range siblings {
		if i > 0 {
			p.i++ // ','
		}
		s, _ := p.str(&base64Std)
		m, err := base64.StdEncoding.Decode(data, s)
		if err != nil {
			return nil, nil, false
		}
		// Capacity capped, so that appending to one sibling cannot
		// overwrite the next.
		siblings[i] = data[:m:m]
		data = data[m:]
	}
	return siblings, ctx, true
}

// decodeToken decodes a context token as ParseContext does (trailing '='
// tolerated, "" is no context), without its string copy.
func decodeToken(t []byte) (Context, bool) {
	for len(t) > 0 && t[len(t)-1] == '=' {
		t = t[:len(t)-1]
	}
	if len(t) == 0 {
		return nil, true
	}
	out := make([]byte, base64.RawURLEncoding.DecodedLen(len(t)))
	n, err := base64.RawURLEncoding.Decode(out, t)
	if err != nil {
		return nil, false
	}
	return out[:n], true
}

// parser reads b from i on.
type parser struct {
	b []byte
	i int
}

// lit consumes s if the input continues with it.
func (p *parser) lit(s string) bool {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return false
	}
	p.i += len(s)
	return true
}

// str consumes a JSON string all of whose bytes are in the set ok and
// returns its contents; ok must not hold '"', '\\' or control characters.
// (A table rather than a func: the call per byte was most of the decoding.)
func (p *parser) str(ok *[256]bool) ([]byte, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false
	}
	for j := p.i + 1; j < len(p.b); j++ {
		c := p.b[j]
		if c == '"' {
			s := p.b[p.i+1 : j]
			p.i = j + 1
			return s, true
		}
		if !ok[c] {
			return nil, false
		}
	}
	return nil, false
}

// skipKey consumes the "key" member's string. Its value is not used, but
// it must be one encoding/json accepts: no control characters; escapes
// are left to it. Any other byte, invalid UTF-8 included, is valid (it
// decodes invalid UTF-8 to U+FFFD).
func (p *parser) skipKey() bool {
	_, ok := p.str(&jsonPlain)
	return ok
}

// trailingSpace consumes the rest of the input if it is JSON whitespace.
func (p *parser) trailingSpace() bool {
	for ; p.i < len(p.b); p.i++ {
		switch p.b[p.i] {
		case ' ', '\t', '\r', '\n':
		default:
			return false
		}
	}
	return true
}

// The byte sets of str.
var (
	// jsonPlain: what a JSON string may hold unescaped, but '"'.
	jsonPlain = byteSet(func(c byte) bool { return c >= 0x20 && c != '"' && c != '\\' })
	// base64URL: the unpadded base64url alphabet, and '=' (tolerated
	// padding, left to the decoder).
	base64URL = byteSet(func(c byte) bool {
		return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '='
	})
	// base64Std: the standard base64 alphabet with its padding.
	base64Std = byteSet(func(c byte) bool {
		return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '='
	})
)

func byteSet(in func(byte) bool) (set [256]bool) {
	for c := range 256 {
		set[c] = in(byte(c))
	}
	return set
}
