package client

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/dynago/dynago/api"
)

// referenceValues is how get decoded an answer before decodeValues:
// encoding/json, then ParseContext.
func referenceValues(b []byte) ([][]byte, Context, bool) {
	var body api.Values
	if err := json.Unmarshal(b, &body); err != nil {
		return nil, nil, false
	}
	ctx, err := ParseContext(body.Context)
	if err != nil {
		return nil, nil, false
	}
	return body.Siblings, ctx, true
}

// checkDecode fails when decodeValues accepts b and decodes it otherwise
// than the reference, or accepts what the reference rejects.
func checkDecode(t testing.TB, b []byte) (fast bool) {
	t.Helper()
	sibs, ctx, ok := decodeValues(b)
	if !ok {
		return false
	}
	rs, rctx, rok := referenceValues(b)
	if !rok {
		t.Fatalf("%q: decodeValues accepts what encoding/json or ParseContext rejects", b)
	}
	if !reflect.DeepEqual(sibs, rs) || !reflect.DeepEqual(ctx, rctx) {
		t.Fatalf("%q: decodeValues gives %q %q, reference %q %q", b, sibs, ctx, rs, rctx)
	}
	return true
}

// nodeAnswer is a get answer as httpapi writes it.
func nodeAnswer(key string, ctx []byte, sibs [][]byte) []byte {
	var b bytes.Buffer
	_ = json.NewEncoder(&b).Encode(api.Values{Key: key, Context: api.EncodeContext(ctx), Siblings: sibs})
	return b.Bytes()
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	return b
}

func TestDecodeValuesMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	keys := []string{"k", "", "a/b", "<&>", "é€😀", "\xff\xfe", "quote\"s", "back\\slash", "\n\t", "\u2028"}
	for range 3000 {
		sibs := make([][]byte, rng.IntN(4)+1)
		for i := range sibs {
			sibs[i] = randomBytes(rng, rng.IntN(40))
		}
		var ctx []byte
		if rng.IntN(5) > 0 {
			ctx = randomBytes(rng, rng.IntN(60)+1)
		}
		key := keys[rng.IntN(len(keys))] + string(randomBytes(rng, rng.IntN(4)))
		b := nodeAnswer(key, ctx, sibs)
		fast := checkDecode(t, b)
		if !fast && !strings.ContainsAny(key, "\\\"<>&\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f") &&
			!strings.Contains(string(b), `\u`) {
			t.Fatalf("%q: a node's answer took the slow path", b)
		}
		// Every truncation and many one-byte changes: the fast path
		// accepts none that the reference rejects.
		for range 20 {
			m := bytes.Clone(b)
			switch rng.IntN(3) {
			case 0:
				m = m[:rng.IntN(len(m))]
			case 1:
				m[rng.IntN(len(m))] = byte(rng.IntN(256))
			default:
				i := rng.IntN(len(m))
				m = append(m[:i:i], append([]byte{byte(rng.IntN(128))}, m[i:]...)...)
			}
			checkDecode(t, m)
		}
	}
}

func TestDecodeValuesEdges(t *testing.T) {
	for _, s := range []string{
		`{"key":"k","context":"","siblings":[""]}`,
		`{"key":"k","context":"","siblings":[]}`,
		`{"key":"k","context":"AQ","siblings":["",""]}` + "\n\r\t ",
		`{"key":"k","context":"AQ==","siblings":["AA=="]}`,
		`{"key":"k","context":"AQ=","siblings":["AA="]}`,
		`{"key":"k","context":"A","siblings":["AA=="]}`,
		`{"key":"k","context":"AQ","siblings":["A"]}`,
		`{"key":"k","context":"AQ","siblings":["AAA"]}`,
		`{"key":"k","context":"AQ","siblings":["AA==AA=="]}`,
		`{"key":"k","context":"A=Q","siblings":["AA=="]}`,
		`{"key":"k","context":"AQ","siblings":["AA=="],"trace":null}`,
		`{"key":"k","context":"AQ","siblings":null}`,
		`{"key":"k","context":"AQ","siblings":[null]}`,
		`{"key":"k","context":"AQ","siblings":["AA=="]}x`,
		`{"key":"k","context":"AQ","siblings":["AA==",]}`,
		`{"key":"k","context":"AQ","siblings":[,"AA=="]}`,
		`{"key":"k","context":"AQ","siblings":["AA=="]`,
		`{"key":"k\u0000","context":"AQ","siblings":["AA=="]}`,
		"{\"key\":\"k\x00\",\"context\":\"AQ\",\"siblings\":[\"AA==\"]}",
		`{"key":"k","context":"AQ","siblings":["AA=="]}{}`,
		`{"key":"k","context":"+/","siblings":["-_"]}`,
		`{"key":"k","context":"-_","siblings":["+/8="]}`,
		`{ "key":"k","context":"AQ","siblings":["AA=="]}`,
		`{"context":"AQ","key":"k","siblings":["AA=="]}`,
		`{"key":"k","context":"AQ","siblings":["AA=="],"key":"j"}`,
		`{"key":"\xff","context":"AQ","siblings":["AA=="]}`,
		``, `{}`, `null`,
	} {
		checkDecode(t, []byte(s))
	}
}

// TestDecodeValuesDoesNotAlias: appending to one sibling must not change
// the next (they share one allocation).
func TestDecodeValuesDoesNotAlias(t *testing.T) {
	b := nodeAnswer("k", []byte{1}, [][]byte{[]byte("ab"), []byte("cd")})
	sibs, _, ok := decodeValues(b)
	if !ok {
		t.Fatal("slow path")
	}
	_ = append(sibs[0], 'x', 'y', 'z')
	if string(sibs[1]) != "cd" {
		t.Fatalf("sibling 1 became %q", sibs[1])
	}
}

func FuzzDecodeValues(f *testing.F) {
	f.Add(nodeAnswer("k", []byte{1, 2, 3}, [][]byte{[]byte("hello"), {}}))
	f.Add([]byte(`{"key":"k","context":"","siblings":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) { checkDecode(t, b) })
}

func TestKeyQueryAsURLValues(t *testing.T) {
	for _, name := range []string{"r", "w"} {
		for _, q := range []int{-1, 0, 1, 3, 12345} {
			for _, d := range []time.Duration{-time.Second, 0, 1, time.Millisecond, 1500 * time.Microsecond, time.Minute} {
				v := url.Values{}
				if q > 0 {
					v.Set(name, strconvItoa(q))
				}
				if d > 0 {
					ms := max(d.Milliseconds(), 1)
					if time.Duration(ms)*time.Millisecond < d {
						ms++
					}
					v.Set("timeout", strconvItoa(int(ms)))
				}
				if got, want := keyQuery(name, q, d), v.Encode(); got != want {
					t.Errorf("keyQuery(%s, %d, %v) = %q, want %q", name, q, d, got, want)
				}
			}
		}
	}
}

func strconvItoa(i int) string { return strconv.Itoa(i) }

func TestReadAnswerAsReadAll(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 511, 512, 513, 4096, 70000} {
		data := randomBytes(rng, n)
		for _, declared := range []int64{-1, int64(n), int64(n / 2), int64(n) + 10, 1 << 40} {
			for _, wrap := range []func(io.Reader) io.Reader{
				func(r io.Reader) io.Reader { return r }, iotest.OneByteReader, iotest.HalfReader, iotest.DataErrReader,
			} {
				got, err := readAnswer(make([]byte, 0, rng.IntN(600)), wrap(bytes.NewReader(data)), declared)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("%d bytes declared %d: %d bytes, %v", n, declared, len(got), err)
				}
			}
		}
	}
	_, err := readAnswer(nil, io.MultiReader(bytes.NewReader([]byte("abc")), iotest.ErrReader(io.ErrUnexpectedEOF)), 10)
	if err != io.ErrUnexpectedEOF {
		t.Fatalf("err %v", err)
	}
}

// TestGetValuesSurviveTheNextCall: the answer's buffer goes back to a pool
// after a get, so nothing the get returns may alias it.
func TestGetValuesSurviveTheNextCall(t *testing.T) {
	tr := &cannedTransport{ctx: api.EncodeContext([]byte{1, 2, 3})}
	c, err := New([]string{"127.0.0.1:1"}, WithHTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		t.Fatal(err)
	}
	tr.getBody = nodeAnswer("k", []byte{1, 2, 3}, [][]byte{[]byte("first"), []byte("second")})
	v1, err := c.Get(t.Context(), "k", nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		tr.getBody = nodeAnswer("k", []byte{9, 9, 9, 9, 9}, [][]byte{[]byte("XXXXXXXXXXXXXXXXXXXXXXXXXXXXXX")})
		if _, err := c.Get(t.Context(), "k", nil); err != nil {
			t.Fatal(err)
		}
	}
	if string(v1.Siblings[0]) != "first" || string(v1.Siblings[1]) != "second" || !bytes.Equal(v1.Context, []byte{1, 2, 3}) {
		t.Fatalf("the first answer changed: %q %v", v1.Siblings, v1.Context)
	}
}
