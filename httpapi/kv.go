package httpapi

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dynago/dynago/node"
)

// key returns the request's key: the {key} path segment, percent-decoded
// by ServeMux.
func (a *api) key(r *http.Request) ([]byte, *apiError) {
	k := r.PathValue("key")
	switch {
	case k == "":
		return nil, errBadKey("empty key")
	case len(k) > a.opts.MaxKeySize:
		return nil, errBadKey(fmt.Sprintf("key is %d bytes, more than the limit of %d", len(k), a.opts.MaxKeySize))
	}
	return []byte(k), nil
}

// params are the query parameters of /kv/{key} requests.
type params struct {
	quorum  int // r (get) or w (put, delete); 0 = the cluster default
	timeout time.Duration
	trace   bool
}

// params parses the query string. quorumName is "r" or "w"; the other one
// is ignored, like any unknown parameter.
func (a *api) params(r *http.Request, quorumName string) (params, *apiError) {
	p := params{timeout: a.opts.DefaultTimeout}
	// url.Values from r.URL.Query() silently drops malformed pairs; a
	// request whose w=%zz vanished would run with the default quorum
	// instead of being rejected.
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return p, errBadParameter("malformed query string: " + err.Error())
	}
	if vs, ok := q[quorumName]; ok {
		n, _, _ := a.b.Defaults()
		v, err := strconv.Atoi(vs[0])
		if err != nil || v < 1 || v > n {
			return p, errBadParameter(fmt.Sprintf("%s must be an integer from 1 to N=%d, got %q", quorumName, n, vs[0]))
		}
		p.quorum = v
	}
	if vs, ok := q["timeout"]; ok {
		ms, err := strconv.ParseInt(vs[0], 10, 64)
		if err != nil || ms <= 0 {
			return p, errBadParameter(fmt.Sprintf("timeout must be a positive integer number of milliseconds, got %q", vs[0]))
		}
		// Compare in milliseconds: ms*time.Millisecond may overflow.
		if ms >= a.opts.MaxTimeout.Milliseconds() {
			p.timeout = a.opts.MaxTimeout
		} else {
			p.timeout = time.Duration(ms) * time.Millisecond
		}
	}
	if vs, ok := q["trace"]; ok {
		t, err := strconv.ParseBool(vs[0])
		if err != nil {
			return p, errBadParameter(fmt.Sprintf("trace must be 1 or 0, got %q", vs[0]))
		}
		p.trace = t
	}
	return p, nil
}

// contextOf returns the request's X-Dynago-Context for key, nil when
// absent.
func contextOf(key []byte, r *http.Request) ([]byte, *apiError) {
	if vs := r.Header.Values(ContextHeader); len(vs) > 1 {
		// Which one the client meant is anyone's guess.
		return nil, &apiError{http.StatusBadRequest, CodeBadContext, fmt.Sprintf("%d %s headers; send one", len(vs), ContextHeader)}
	}
	ctx, err := DecodeContextHeader(key, r.Header.Get(ContextHeader))
	if err != nil {
		return nil, &apiError{http.StatusBadRequest, CodeBadContext, err.Error()}
	}
	return ctx, nil
}

// writeRequest parses what puts and deletes share.
func (a *api) writeRequest(r *http.Request, op node.Op) (node.Request, params, *apiError) {
	key, e := a.key(r)
	if e != nil {
		return node.Request{}, params{}, e
	}
	p, e := a.params(r, "w")
	if e != nil {
		return node.Request{}, p, e
	}
	ctx, e := contextOf(key, r)
	if e != nil {
		return node.Request{}, p, e
	}
	return node.Request{Op: op, Key: key, Context: ctx, W: p.quorum, Timeout: p.timeout}, p, nil
}

func (a *api) put(w http.ResponseWriter, r *http.Request) {
	req, p, e := a.writeRequest(r, node.OpPut)
	if e == nil {
		req.Value, e = a.readValue(w, r)
	}
	if e != nil {
		writeError(w, e)
		return
	}
	a.writeWriteReply(w, req, a.b.Do(r.Context(), req), p.trace)
}

// readValue reads the body, never more than MaxValueSize+1 bytes of it.
func (a *api) readValue(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	limit := int64(a.opts.MaxValueSize)
	tooLarge := &apiError{http.StatusRequestEntityTooLarge, CodeTooLarge,
		fmt.Sprintf("value larger than the limit of %d bytes", limit)}
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	// MaxBytesReader stops after limit+1 bytes. The rest of an oversized
	// body is never buffered: after the handler, net/http discards at most
	// 256 KiB of it and otherwise closes the connection.
	value, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, &apiError{http.StatusRequestTimeout, CodeBodyTimeout,
			fmt.Sprintf("the body did not arrive within %v", a.opts.BodyTimeout)}
	case err != nil:
		return nil, &apiError{http.StatusBadRequest, CodeBadRequest, "reading the value: " + err.Error()}
	}
	return value, nil
}

func (a *api) delete(w http.ResponseWriter, r *http.Request) {
	req, p, e := a.writeRequest(r, node.OpDelete)
	if e != nil {
		writeError(w, e)
		return
	}
	a.writeWriteReply(w, req, a.b.Do(r.Context(), req), p.trace)
}

// writeBody is the JSON answer of a traced put or delete.
type writeBody struct {
	Context string     `json:"context"`
	Trace   *traceJSON `json:"trace,omitempty"`
}

// writeWriteReply answers a put or delete.
func (a *api) writeWriteReply(w http.ResponseWriter, req node.Request, rep node.Reply, trace bool) {
	if rep.Code != node.CodeOK {
		a.writeReplyError(w, req, rep, trace)
		return
	}
	token := EncodeContextHeader(req.Key, rep.Context)
	if token != "" {
		w.Header().Set(ContextHeader, token)
	}
	if n := rep.SiblingCount(); n > 0 {
		// Above the soft limit: the write succeeded, but the application
		// is not resolving siblings (Riak's warn_siblings).
		w.Header().Set(SiblingsHeader, strconv.Itoa(n))
		a.siblingWarnings.Inc()
		a.opts.Logger.Warn("httpapi: key has many siblings; clients should read and resolve them",
			"key", string(req.Key), "siblings", n)
	}
	if trace {
		writeJSON(w, http.StatusOK, writeBody{Context: token, Trace: newTraceJSON(rep.Trace)})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// valuesBody is the JSON form of a read.
type valuesBody struct {
	Key      string     `json:"key"`
	Context  string     `json:"context"`
	Siblings [][]byte   `json:"siblings"` // standard base64, as encoding/json writes []byte
	Trace    *traceJSON `json:"trace,omitempty"`
}

func (a *api) get(w http.ResponseWriter, r *http.Request) {
	key, e := a.key(r)
	if e != nil {
		writeError(w, e)
		return
	}
	p, e := a.params(r, "r")
	if e != nil {
		writeError(w, e)
		return
	}
	req := node.Request{Op: node.OpGet, Key: key, R: p.quorum, Timeout: p.timeout}
	rep := a.b.Do(r.Context(), req)
	var values [][]byte
	if rep.Code == node.CodeOK {
		// The core removes tombstones already; filtering again costs one
		// pass and guarantees a deleted value is never served as live.
		for _, s := range rep.Siblings {
			if !s.Deleted {
				// Never nil: encoding/json writes a nil []byte as null,
				// and an empty value must come back as "".
				v := s.Value
				if v == nil {
					v = []byte{}
				}
				values = append(values, v)
			}
		}
		if len(values) == 0 {
			rep.Code = node.CodeNotFound
		}
	}
	token := EncodeContextHeader(key, rep.Context)
	if token != "" && (rep.Code == node.CodeOK || rep.Code == node.CodeNotFound) {
		w.Header().Set(ContextHeader, token)
	}
	if rep.Code != node.CodeOK {
		if rep.Code == node.CodeNotFound && rep.Err == "" {
			rep.Err = "not found"
		}
		a.writeReplyError(w, req, rep, p.trace)
		return
	}

	wantJSON := acceptsJSON(r)
	if len(values) == 1 && !wantJSON && !p.trace {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(values[0])))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(values[0]) // an error means the client went away
		return
	}
	status := http.StatusOK
	if len(values) > 1 && !wantJSON {
		status = http.StatusMultipleChoices
	}
	body := valuesBody{Key: string(key), Context: token, Siblings: values}
	if p.trace {
		body.Trace = newTraceJSON(rep.Trace)
	}
	writeJSON(w, status, body)
}

// acceptsJSON reports whether the Accept header names application/json.
// A wildcard (curl's default */*) does not count: such clients get the
// value's raw bytes.
func acceptsJSON(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			if mt, _, err := mime.ParseMediaType(part); err == nil && mt == "application/json" {
				return true
			}
		}
	}
	return false
}
