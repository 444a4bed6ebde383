package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/dynago/dynago/api"
)

// cannedTransport answers every request without a network: a get with the
// JSON body a node sends for one 100-byte value, a put with 204 and a
// context. BenchmarkClient so counts the client's own allocations per
// call, apart from net/http's connection handling and the node's.
type cannedTransport struct {
	getBody []byte
	ctx     string
}

func (t *cannedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	h := make(http.Header, 2)
	h.Set(api.ContextHeader, t.ctx)
	resp := &http.Response{StatusCode: http.StatusNoContent, Header: h, Body: http.NoBody, Request: req, ProtoMajor: 1, ProtoMinor: 1}
	if req.Method == http.MethodGet {
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(t.getBody)))
		resp.StatusCode = http.StatusOK
		resp.ContentLength = int64(len(t.getBody))
		resp.Body = io.NopCloser(bytes.NewReader(t.getBody))
	}
	return resp, nil
}

// BenchmarkClient measures Client.Get and Client.Put of a 100-byte value
// against a canned transport (issue #11: the load generator's CPU per
// request is mostly the client's).
func BenchmarkClient(b *testing.B) {
	ctx := api.EncodeContext(bytes.Repeat([]byte{7}, 40))
	value := bytes.Repeat([]byte("v"), 100)
	body := []byte(`{"key":"bench-key","context":"` + ctx + `","siblings":["` + base64.StdEncoding.EncodeToString(value) + `"]}` + "\n")
	c, err := New([]string{"127.0.0.1:1"}, WithHTTPClient(&http.Client{Transport: &cannedTransport{getBody: body, ctx: ctx}}))
	if err != nil {
		b.Fatal(err)
	}
	bg := context.Background()
	b.Run("get", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v, err := c.Get(bg, "bench-key", &GetOptions{R: 2})
			if err != nil || len(v.Siblings) != 1 || !bytes.Equal(v.Siblings[0], value) {
				b.Fatalf("get: %v %q", err, v.Siblings)
			}
		}
	})
	b.Run("put", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Put(bg, "bench-key", value, &PutOptions{W: 2}); err != nil {
				b.Fatalf("put: %v", err)
			}
		}
	})
}
