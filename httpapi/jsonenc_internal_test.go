package httpapi

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"unicode/utf8"

	"github.com/dynago/dynago/api"
)

// encodingJSON is what writeJSON wrote before the hand-written encoders:
// the reference they must equal byte for byte.
func encodingJSON(t testing.TB, v any) []byte {
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// jsonEdgeStrings are strings encoding/json escapes in each of its ways.
var jsonEdgeStrings = []string{
	"", "a", "hello world", `"`, `\`, "<>&", "</script>", "\x00", "\x1f", "\x7f", "\b\f\n\r\t",
	"\u2028", "\u2029", "a\u2028b\u2029c", "\u2027\u202a", "é", "€", "😀", "\xff", "\xc3", "\xe2\x82",
	"\xf0\x9f\x98", "a\xffb", "\xed\xa0\x80" /* a surrogate: invalid UTF-8 */, "\xef\xbf\xbd",
	"\xf4\x90\x80\x80" /* above U+10FFFF */, "key with spaces", "a/b", "%2F", "\u0080", "\U0010ffff",
}

// randomJSONString mixes the pieces encoding/json treats specially.
func randomJSONString(rng *rand.Rand) string {
	var b []byte
	for range rng.IntN(12) {
		switch rng.IntN(4) {
		case 0:
			b = append(b, jsonEdgeStrings[rng.IntN(len(jsonEdgeStrings))]...)
		case 1:
			b = append(b, byte(rng.IntN(256)))
		case 2:
			b = utf8.AppendRune(b, rune(rng.IntN(0x110000)))
		default:
			b = append(b, "plain"...)
		}
	}
	return string(b)
}

func randomSiblings(rng *rand.Rand) [][]byte {
	if rng.IntN(10) == 0 {
		return nil
	}
	out := make([][]byte, rng.IntN(5))
	for i := range out {
		switch rng.IntN(6) {
		case 0:
			out[i] = nil
		case 1:
			out[i] = []byte{}
		default:
			v := make([]byte, rng.IntN(70))
			for j := range v {
				v[j] = byte(rng.IntN(256))
			}
			out[i] = v
		}
	}
	return out
}

func TestHandJSONMatchesEncodingJSON(t *testing.T) {
	check := func(key, ctx string, sibs [][]byte) {
		t.Helper()
		want := encodingJSON(t, api.Values{Key: key, Context: ctx, Siblings: sibs})
		if got := appendValues(nil, []byte(key), ctx, sibs); !bytes.Equal(got, want) {
			t.Fatalf("values %q %q %q:\n got %s\nwant %s", key, ctx, sibs, got, want)
		}
		acks, req := len(key)-3, -len(ctx)
		for _, e := range []api.Error{
			{Error: key, Code: ctx},
			{Error: key, Code: ctx, Acks: &acks},
			{Error: key, Code: ctx, Required: &req},
			{Error: key, Code: ctx, Acks: &acks, Required: &req},
		} {
			want := encodingJSON(t, e)
			if got := appendError(nil, &e); !bytes.Equal(got, want) {
				t.Fatalf("error %+v:\n got %s\nwant %s", e, got, want)
			}
		}
	}
	for _, s := range jsonEdgeStrings {
		check(s, s, [][]byte{[]byte(s)})
	}
	check("k", "", nil)
	check("k", "c", [][]byte{nil, {}, {0}})
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		check(randomJSONString(rng), randomJSONString(rng), randomSiblings(rng))
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range jsonEdgeStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := encodingJSON(t, s)
		want = want[:len(want)-1] // the Encoder's newline
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
		if got := appendJSONString(nil, []byte(s)); !bytes.Equal(got, want) {
			t.Fatalf("%q as []byte: got %s, want %s", s, got, want)
		}
	})
}

// TestWriteValuesAnswer checks the whole answer: header, status, body.
func TestWriteValuesAnswer(t *testing.T) {
	w := httptest.NewRecorder()
	w.Header().Set("Content-Type", "text/plain")
	writeValues(w, http.StatusMultipleChoices, []byte("k<"), "ctx", [][]byte{[]byte("a"), {}})
	if w.Code != http.StatusMultipleChoices || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q", w.Code, w.Header())
	}
	want := encodingJSON(t, api.Values{Key: "k<", Context: "ctx", Siblings: [][]byte{[]byte("a"), {}}})
	if !bytes.Equal(w.Body.Bytes(), want) {
		t.Fatalf("body %s, want %s", w.Body, want)
	}
	// A second answer reuses the pooled buffer and must not see the first.
	w = httptest.NewRecorder()
	writeErrorBody(w, http.StatusNotFound, &api.Error{Error: "not found", Code: CodeNotFound})
	if got := w.Body.String(); got != "{\"error\":\"not found\",\"code\":\"not_found\"}\n" {
		t.Fatalf("error body %q", got)
	}
}
