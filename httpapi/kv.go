package httpapi

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dynago/dynago/api"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/session"
)

// key returns the request's key: path value "key", set by keyRouter.
func (a *handler) key(r *http.Request) ([]byte, *apiError) {
	return a.checkKey(r.PathValue("key"))
}

// checkKey validates a key keyRouter took from the path.
func (a *handler) checkKey(key string) ([]byte, *apiError) {
	k := []byte(key)
	if err := CheckKey(k, a.opts.MaxKeySize); err != nil {
		return nil, inputError(err)
	}
	return k, nil
}

// params are the query parameters of /kv/{key} requests.
type params struct {
	quorum  int // r (get) or w (put, delete); 0 = the cluster default
	timeout time.Duration
	trace   bool
	session *session.Token // X-Dynago-Session; nil without the header
}

// params parses the query string. quorumName is "r" or "w"; the other one
// is ignored, like any unknown parameter.
func (a *handler) params(r *http.Request, quorumName string) (params, *apiError) {
	p := params{timeout: a.opts.DefaultTimeout}
	// url.Values from r.URL.Query() silently drops malformed pairs; a
	// request whose w=%zz vanished would run with the default quorum
	// instead of being rejected.
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return p, errBadParameter("malformed query string: " + err.Error())
	}
	if vs, ok := q[quorumName]; ok {
		v, err := ParseQuorum(quorumName, vs[0])
		if err != nil {
			return p, inputError(err)
		}
		p.quorum = v
	}
	if vs, ok := q["timeout"]; ok {
		d, err := ParseTimeout(vs[0], a.opts.MaxTimeout)
		if err != nil {
			return p, inputError(err)
		}
		p.timeout = d
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
	ctx, err := DecodeContext(key, r.Header.Get(ContextHeader))
	if err != nil {
		return nil, inputError(err)
	}
	return ctx, nil
}

// writeRequest parses what puts and deletes share.
func (a *handler) writeRequest(r *http.Request, k string, op node.Op) (node.Request, params, *apiError) {
	key, e := a.checkKey(k)
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
	tok, e := sessionOf(r)
	if e != nil {
		return node.Request{}, p, e
	}
	p.session = tok
	req := node.Request{Op: op, Key: key, Context: ctx, W: p.quorum, Timeout: p.timeout, Trace: p.trace}
	withSession(tok, &req)
	return req, p, nil
}

func (a *handler) put(w http.ResponseWriter, r *http.Request, key string) {
	req, p, e := a.writeRequest(r, key, node.OpPut)
	if e == nil {
		req.Value, e = a.readValue(r)
	}
	if e != nil {
		writeError(w, e)
		return
	}
	a.writeWriteReply(w, req, a.b.Do(r.Context(), req), p)
}

// readValue reads the body, never more than MaxValueSize+1 bytes of it,
// into a buffer sized by its Content-Length (see readBody): io.ReadAll's
// would start at 512 bytes and grow by copying. The value goes to the
// core, which keeps it, so the buffer cannot be pooled.
func (a *handler) readValue(r *http.Request) ([]byte, *apiError) {
	limit := a.opts.MaxValueSize
	if err := CheckValueSize(r.ContentLength, limit); err != nil {
		return nil, inputError(err)
	}
	value, err := readBody(r.Body, r.ContentLength, limit)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, inputError(CheckValueSize(int64(limit)+1, limit))
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, &apiError{http.StatusRequestTimeout, CodeBodyTimeout,
			fmt.Sprintf("the body did not arrive within %v", a.opts.BodyTimeout)}
	case err != nil:
		return nil, &apiError{http.StatusBadRequest, CodeBadRequest, "reading the value: " + err.Error()}
	}
	return value, nil
}

// readBody reads body to its end, as io.ReadAll(http.MaxBytesReader(w,
// body, limit)) does: a non-nil slice, or an *http.MaxBytesError once
// more than limit bytes arrive (it reads limit+1 at most; the rest of an
// oversized body is never buffered: after the handler, net/http discards
// at most 256 KiB of it and otherwise closes the connection). size is the
// declared Content-Length (-1: unknown), at most limit. The buffer has
// room for one byte more than declared, so that the read that sees the end
// of the body (and clears its deadline, see deadlineBody) needs no growth;
// but never more than maxPresize before the bytes arrive: a client that
// declares 1 MiB and sends nothing must not get 1 MiB of memory per
// connection for it.
func readBody(body io.Reader, size int64, limit int) ([]byte, error) {
	hint := 512
	if size >= 0 {
		hint = int(min(size+1, maxPresize))
	}
	b := make([]byte, 0, min(hint, limit+1))
	for {
		if len(b) == cap(b) {
			b = slices.Grow(b, min(max(cap(b), 512), limit+1-len(b)))
		}
		// Never into more than limit+1 bytes: Grow may round up.
		n, err := body.Read(b[len(b):min(cap(b), limit+1)])
		b = b[:len(b)+n]
		if len(b) > limit {
			return nil, &http.MaxBytesError{Limit: int64(limit)}
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// maxPresize bounds the buffer readBody makes from a declared size alone:
// values up to it (most) take one allocation, larger ones grow as their
// bytes arrive.
const maxPresize = 64 << 10

func (a *handler) delete(w http.ResponseWriter, r *http.Request, key string) {
	req, p, e := a.writeRequest(r, key, node.OpDelete)
	if e != nil {
		writeError(w, e)
		return
	}
	a.writeWriteReply(w, req, a.b.Do(r.Context(), req), p)
}

// writeWriteReply answers a put or delete.
func (a *handler) writeWriteReply(w http.ResponseWriter, req node.Request, rep node.Reply, p params) {
	trace := p.trace
	answerSession(w, p.session, req, rep)
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
		writeJSON(w, http.StatusOK, api.Written{Context: token, Trace: newTraceJSON(rep.Trace)})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *handler) get(w http.ResponseWriter, r *http.Request, k string) {
	key, e := a.checkKey(k)
	if e != nil {
		writeError(w, e)
		return
	}
	p, e := a.params(r, "r")
	if e != nil {
		writeError(w, e)
		return
	}
	tok, e := sessionOf(r)
	if e != nil {
		writeError(w, e)
		return
	}
	req := node.Request{Op: node.OpGet, Key: key, R: p.quorum, Timeout: p.timeout, Trace: p.trace}
	withSession(tok, &req)
	rep := a.b.Do(r.Context(), req)
	// One live value (the usual answer) needs no slice of its own.
	var one [1][]byte
	values := one[:0]
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
	answerSession(w, tok, req, rep)
	token := EncodeContextHeader(key, rep.Context)
	if token != "" && (rep.Code == node.CodeOK || rep.Code == node.CodeNotFound) {
		w.Header()[ContextHeader] = []string{token}
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
		h := w.Header()
		h["Content-Type"] = octetStreamContentType
		h["Content-Length"] = []string{strconv.Itoa(len(values[0]))}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(values[0]) // an error means the client went away
		return
	}
	status := http.StatusOK
	if len(values) > 1 && !wantJSON {
		status = http.StatusMultipleChoices
	}
	if p.trace {
		// A copy, so that values, which the encoder's interface would
		// otherwise make escape, can stay on the stack.
		writeJSON(w, status, api.Values{Key: string(key), Context: token, Siblings: slices.Clone(values), Trace: newTraceJSON(rep.Trace)})
		return
	}
	writeValues(w, status, key, token, values)
}

// octetStreamContentType is the Content-Type of a raw value, shared (see
// jsonContentType).
var octetStreamContentType = []string{"application/octet-stream"}

// acceptsJSON reports whether the Accept header names application/json.
// A wildcard (curl's default */*) does not count: such clients get the
// value's raw bytes.
func acceptsJSON(r *http.Request) bool {
	vs := r.Header.Values("Accept")
	if len(vs) == 1 && vs[0] == "application/json" {
		return true // the Go client's, without mime.ParseMediaType's map
	}
	for _, v := range vs {
		for part := range strings.SplitSeq(v, ",") {
			if mt, _, err := mime.ParseMediaType(part); err == nil && mt == "application/json" {
				return true
			}
		}
	}
	return false
}
