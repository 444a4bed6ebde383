package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/dynago/dynago/api"
)

// The answers of the key operations, a get's {"key","context","siblings"}
// and the {"error","code"} of a not-found above all, are written by hand
// rather than by encoding/json: its reflection, encodeState and the value
// boxed into an interface were a sixth of a JSON get's CPU. The output is
// byte for byte encoding/json's (json.NewEncoder(w).Encode: HTML-safe
// escaping, a trailing newline), which TestHandJSONMatchesEncodingJSON
// checks; bodies with a trace, rare and large, still go through
// encoding/json.

// jsonContentType is the Content-Type header's value, shared by every
// answer instead of a []string allocated per Header.Set. Header values are
// never modified in place (Set replaces the slice, Add appends to a full
// one, net/http clones the header before writing it), so sharing is safe.
var jsonContentType = []string{"application/json"}

// jsonBufs holds the buffers answers are encoded into: the ResponseWriter
// copies what it is given, so a buffer is free again once Write returns.
var jsonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// maxPooledJSON is the largest buffer put back in jsonBufs: the answer of
// a get of many large siblings must not stay pinned in the pool.
const maxPooledJSON = 64 << 10

// writeValues answers with the JSON body api.Values{Key: string(key),
// Context: context, Siblings: siblings}.
func writeValues(w http.ResponseWriter, status int, key []byte, context string, siblings [][]byte) {
	bp := jsonBufs.Get().(*[]byte)
	*bp = appendValues((*bp)[:0], key, context, siblings)
	writeJSONBuf(w, status, bp)
}

// writeErrorBody answers with the JSON body e.
func writeErrorBody(w http.ResponseWriter, status int, e *api.Error) {
	if e.Trace != nil {
		writeJSON(w, status, e)
		return
	}
	bp := jsonBufs.Get().(*[]byte)
	*bp = appendError((*bp)[:0], e)
	writeJSONBuf(w, status, bp)
}

// writeJSONBuf writes the JSON body *bp and returns the buffer to jsonBufs.
func writeJSONBuf(w http.ResponseWriter, status int, bp *[]byte) {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	_, _ = w.Write(*bp) // an error can only mean the client went away
	if cap(*bp) <= maxPooledJSON {
		jsonBufs.Put(bp)
	}
}

// appendValues appends api.Values{Key: string(key), Context: context,
// Siblings: siblings} as encoding/json encodes it.
func appendValues(b, key []byte, context string, siblings [][]byte) []byte {
	b = append(b, `{"key":`...)
	b = appendJSONString(b, key)
	b = append(b, `,"context":`...)
	b = appendJSONString(b, context)
	b = append(b, `,"siblings":`...)
	if siblings == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, s := range siblings {
			if i > 0 {
				b = append(b, ',')
			}
			if s == nil {
				b = append(b, "null"...)
				continue
			}
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, s)
			b = append(b, '"')
		}
		b = append(b, ']')
	}
	return append(b, "}\n"...)
}

// appendError appends e as encoding/json encodes it, ignoring Trace.
func appendError(b []byte, e *api.Error) []byte {
	b = append(b, `{"error":`...)
	b = appendJSONString(b, e.Error)
	b = append(b, `,"code":`...)
	b = appendJSONString(b, e.Code)
	if e.Acks != nil {
		b = append(b, `,"acks":`...)
		b = strconv.AppendInt(b, int64(*e.Acks), 10)
	}
	if e.Required != nil {
		b = append(b, `,"required":`...)
		b = strconv.AppendInt(b, int64(*e.Required), 10)
	}
	return append(b, "}\n"...)
}

// appendJSONString appends s as a JSON string the way encoding/json does
// with HTML escaping on (its Encoder's default): '<', '>' and '&' as
// \u003c..., the control characters other than \b \f \n \r \t as \u00XX,
// invalid UTF-8 as \ufffd, and U+2028 and U+2029 escaped.
func appendJSONString[S string | []byte](b []byte, s S) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		// A string of at most 4 bytes: no allocation for a []byte s.
		r, size := utf8.DecodeRuneInString(string(s[i:min(len(s), i+utf8.UTFMax)]))
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// writeJSON answers with v encoded by encoding/json.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	// The status is sent; an encoding or write error can only mean the
	// client went away.
	_ = json.NewEncoder(w).Encode(v)
}
