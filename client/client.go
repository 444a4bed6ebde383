package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynago/dynago/api"
)

// DefaultTimeout bounds a call (with its retries) when WithTimeout is not
// given: well above a node's default coordination timeout (5s), so a slow
// quorum is reported by the node rather than cut short here.
const DefaultTimeout = 30 * time.Second

// timeoutSlack is how much longer than the coordination timeout it asked
// for a call waits, for forwarding and the answer's way back.
const timeoutSlack = time.Second

// Sentinel errors.
var (
	ErrNotFound   = errors.New("client: not found")
	ErrNoAddress  = errors.New("client: no node address given")
	ErrBadAddress = errors.New("client: bad node address")
	ErrBadContext = errors.New("client: bad context")
	// ErrUnauthorized matches (errors.Is) an *APIError with status 401:
	// the request carried no credentials, or ones the node does not know.
	ErrUnauthorized = errors.New("client: unauthorized (no or unknown token or client certificate)")
	// ErrForbidden matches (errors.Is) an *APIError with status 403: the
	// credentials are known but their role does not allow the request.
	ErrForbidden = errors.New("client: forbidden (the credentials' role does not allow this)")
	// ErrBadOption reports options that cannot be combined.
	ErrBadOption = errors.New("client: bad option")
)

// Client talks to a dynago cluster through the HTTP API of its nodes. It is
// safe for concurrent use.
type Client struct {
	bases      []string // base URLs without a trailing slash
	hc         *http.Client
	tls        *tls.Config // nil without WithTLS
	auth       string      // the Authorization header value; "" without WithToken
	authHeader []string    // auth as a header value, shared by requests; nil without WithToken
	timeout    time.Duration
	next       atomic.Uint64 // rotates the first node tried
	router     *router       // nil without WithRouting
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the Client send its requests with hc (for proxies
// or instrumentation). Combined with WithTLS, hc's Transport must be nil or
// an *http.Transport: the Client uses a copy of it with cfg.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithTLS makes the Client speak HTTPS with cfg: its RootCAs to trust the
// nodes' certificates (ca.crt of `dynago cert`), and its Certificates to
// present a client certificate, whose role the nodes read. Addresses given
// as host:port are then dialed over https; http:// URLs stay plaintext.
// security.ClientConfig builds cfg from a certs directory.
func WithTLS(cfg *tls.Config) Option { return func(c *Client) { c.tls = cfg } }

// WithToken makes every request carry "Authorization: Bearer token", a
// token of the nodes' --tokens-file. A bearer token is a secret: send it
// over TLS only (an https:// address or WithTLS).
func WithToken(token string) Option {
	return func(c *Client) {
		c.auth = ""
		if token != "" {
			c.auth = "Bearer " + token
		}
	}
}

// WithTimeout bounds every call, retries included; 0 disables the bound
// (the caller's context still applies). A call asking a node for a longer
// coordination timeout (PutOptions.Timeout, GetOptions.Timeout) is given
// that timeout plus a second instead. Default: DefaultTimeout.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// New returns a Client for the nodes at addrs, each "host:port" or an
// http(s) URL (which may carry a path prefix, for a node behind a proxy).
// A host:port is dialed over https with WithTLS, over http otherwise.
func New(addrs []string, opts ...Option) (*Client, error) {
	if len(addrs) == 0 {
		return nil, ErrNoAddress
	}
	c := &Client{hc: &http.Client{Transport: defaultTransport()}, timeout: DefaultTimeout}
	for _, o := range opts {
		o(c)
	}
	if !validToken(strings.TrimPrefix(c.auth, "Bearer ")) {
		// A token is sent in a header: a line break or a control
		// character would be refused by net/http on every request, or
		// worse, split the header.
		return nil, fmt.Errorf("%w: WithToken: the token must be printable ASCII without spaces", ErrBadOption)
	}
	if c.auth != "" {
		c.authHeader = []string{c.auth}
	}
	scheme := "http"
	if c.tls != nil {
		scheme = "https"
		hc, err := withTLS(c.hc, c.tls)
		if err != nil {
			return nil, err
		}
		c.hc = hc
	}
	for _, a := range addrs {
		base, err := parseAddr(a, scheme)
		if err != nil {
			return nil, err
		}
		c.bases = append(c.bases, base)
	}
	return c, nil
}

// MaxIdleConnsPerNode is how many idle connections the default transport
// keeps to each node. net/http's default of two would make a Client shared
// by more goroutines than that open and close a TCP connection for most of
// its requests: a handshake each, and TIME_WAIT sockets piling up until
// the machine runs out of ports.
const MaxIdleConnsPerNode = 256

// defaultTransport is net/http's default transport with room to keep the
// connections of a concurrent Client open (MaxIdleConnsPerNode).
func defaultTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 0 // no limit across nodes; the per-node one applies
	tr.MaxIdleConnsPerHost = MaxIdleConnsPerNode
	return tr
}

// validToken reports whether tok can travel in a header as it is: visible
// ASCII only (RFC 6750's b64token is narrower still; the nodes' tokens
// file is what decides).
func validToken(tok string) bool {
	for i := 0; i < len(tok); i++ {
		if tok[i] <= ' ' || tok[i] >= 0x7f {
			return false
		}
	}
	return true
}

// withTLS returns a copy of hc whose transport dials TLS with cfg. The
// copy keeps hc's other settings (timeouts, redirects, jar) and leaves hc,
// which the caller may share, untouched.
func withTLS(hc *http.Client, cfg *tls.Config) (*http.Client, error) {
	var tr *http.Transport
	switch t := hc.Transport.(type) {
	case nil:
		tr = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		tr = t.Clone()
	default:
		return nil, fmt.Errorf("%w: WithTLS needs WithHTTPClient's Transport to be an *http.Transport, not %T; set its TLS config yourself instead", ErrBadOption, t)
	}
	tr.TLSClientConfig = cfg.Clone()
	out := *hc
	out.Transport = tr
	return &out, nil
}

func parseAddr(a, scheme string) (string, error) {
	s := strings.TrimSpace(a)
	if !strings.Contains(s, "://") {
		s = scheme + "://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%w: %q", ErrBadAddress, a)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// Context is the opaque causal history of a version, returned by reads and
// writes and passed back with the next write of the same key.
type Context []byte

// String returns the token form of c, as sent in X-Dynago-Context headers
// and printed by the dynago CLI: unpadded base64url (api.EncodeContext).
func (c Context) String() string { return api.EncodeContext(c) }

// ParseContext reverses Context.String. The empty token is no context. The
// node validates the context's contents when it is used.
func ParseContext(token string) (Context, error) {
	b, err := api.DecodeContext(token)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadContext, err)
	}
	return b, nil
}

// Value is what Get returns. More than one sibling means concurrent writes
// the application must resolve: write the resolved value with Context.
type Value struct {
	Siblings [][]byte
	Context  Context
}

// PutOptions tune a Put or Delete. A nil *PutOptions means a blind write
// with the cluster's defaults.
type PutOptions struct {
	Context Context       // the context read; nil = blind write
	W       int           // replicas that must acknowledge, 1..N; 0 = cluster default
	Timeout time.Duration // coordination timeout (rounded up to ms); 0 = node default
}

// GetOptions tune a Get. A nil *GetOptions means the cluster's defaults.
type GetOptions struct {
	R       int           // replicas that must answer, 1..N; 0 = cluster default
	Timeout time.Duration // coordination timeout (rounded up to ms); 0 = node default
}

// The answers of GET /kv/{key}/placement and GET /cluster, as package api
// declares them.
type (
	// Placement is where a key lives.
	Placement = api.Placement
	// Cluster is a node's view of the cluster.
	Cluster = api.Cluster
	// Node is one member of a Cluster.
	Node = api.ClusterNode
)

// QuorumError reports that fewer than the required replicas acknowledged
// (put, delete) or answered (get) in time. The outcome of a put or delete
// is unknown: it may still be applied.
type QuorumError struct {
	Acks, Required int
	Op             string // "put", "get" or "delete"
}

func (e *QuorumError) Error() string {
	if e.Op == "get" {
		return fmt.Sprintf("client: get quorum failed: %d of %d replicas answered", e.Acks, e.Required)
	}
	return fmt.Sprintf("client: %s quorum failed: %d of %d replicas acknowledged; the write may still be applied", e.Op, e.Acks, e.Required)
}

// APIError is an error answer of a node other than not-found and quorum
// failures. Code is the API's error code (bad_key, bad_parameter,
// bad_context, too_large, unavailable, internal, ...), empty when the answer
// was not the API's JSON (a proxy's, or net/http's own for a malformed
// request).
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("client: node answered %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("client: node answered %d %s: %s", e.Status, e.Code, e.Message)
}

// Is makes errors.Is(err, ErrUnauthorized) and errors.Is(err,
// ErrForbidden) true for a 401 and a 403 answer, whether or not it came
// with the API's JSON (a proxy in front of the node may answer them too).
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	}
	return false
}

// Put stores value under key and returns the context of the new version.
func (c *Client) Put(ctx context.Context, key string, value []byte, o *PutOptions) (Context, error) {
	return put(ctx, c.do, key, value, o)
}

// Delete deletes key by writing a tombstone. Without a Context the
// tombstone is concurrent with the stored values, which then survive as
// siblings: pass the Context of a Get to delete what it read.
func (c *Client) Delete(ctx context.Context, key string, o *PutOptions) error {
	return del(ctx, c.do, key, o)
}

// exchange sends one call and returns its answer: Client.do, or
// Session.do, which carries the session's token there and back. The key
// operations are written once over it.
type exchange func(context.Context, call) (response, error)

func put(ctx context.Context, send exchange, key string, value []byte, o *PutOptions) (Context, error) {
	if value == nil {
		value = []byte{} // a body, even empty, so the request carries Content-Length: 0
	}
	r, err := send(ctx, writeCall(http.MethodPut, key, value, o))
	if err != nil {
		return nil, err
	}
	defer r.release()
	if r.status != http.StatusNoContent && r.status != http.StatusOK {
		return nil, r.err("put")
	}
	return r.context()
}

func del(ctx context.Context, send exchange, key string, o *PutOptions) error {
	r, err := send(ctx, writeCall(http.MethodDelete, key, nil, o))
	if err != nil {
		return err
	}
	defer r.release()
	if r.status != http.StatusNoContent && r.status != http.StatusOK {
		return r.err("delete")
	}
	return nil
}

func writeCall(method, key string, value []byte, o *PutOptions) call {
	if o == nil {
		o = &PutOptions{}
	}
	cl := call{method: method, path: keyPath(key), key: key, keyed: true, body: value, timeout: o.Timeout,
		rawQuery: keyQuery("w", o.W, o.Timeout)}
	if len(o.Context) > 0 {
		cl.context = o.Context.String()
	}
	return cl
}

// Get reads key. For a missing or deleted key it returns an error wrapping
// ErrNotFound, with Value.Context set when a tombstone exists.
func (c *Client) Get(ctx context.Context, key string, o *GetOptions) (Value, error) {
	return get(ctx, c.do, key, o)
}

func get(ctx context.Context, send exchange, key string, o *GetOptions) (Value, error) {
	if o == nil {
		o = &GetOptions{}
	}
	cl := call{
		method: http.MethodGet, path: keyPath(key), key: key, keyed: true, read: true, timeout: o.Timeout,
		rawQuery: keyQuery("r", o.R, o.Timeout),
		// JSON for one value too: a raw body could not be told apart from
		// a proxy's answer.
		acceptJSON: true,
	}
	r, err := send(ctx, cl)
	if err != nil {
		return Value{}, err
	}
	defer r.release()
	switch r.status {
	case http.StatusOK, http.StatusMultipleChoices:
		if siblings, vctx, ok := decodeValues(r.body); ok {
			return Value{Siblings: siblings, Context: vctx}, nil
		}
		var body api.Values
		if err := json.Unmarshal(r.body, &body); err != nil {
			return Value{}, fmt.Errorf("client: decoding the answer of GET %s: %w", cl.path, err)
		}
		vctx, err := ParseContext(body.Context)
		if err != nil {
			return Value{}, fmt.Errorf("client: node sent a bad context: %w", err)
		}
		return Value{Siblings: body.Siblings, Context: vctx}, nil
	case http.StatusNotFound:
		apiErr := r.err("get")
		if e, ok := apiErr.(*APIError); !ok || e.Code != api.CodeNotFound {
			return Value{}, apiErr
		}
		vctx, err := r.context()
		if err != nil {
			return Value{}, err
		}
		return Value{Context: vctx}, fmt.Errorf("%w: key %q", ErrNotFound, key)
	}
	return Value{}, r.err("get")
}

// Placement returns the partition, preference list and fallbacks of key.
func (c *Client) Placement(ctx context.Context, key string) (Placement, error) {
	var p Placement
	err := c.getJSON(ctx, keyPath(key)+"/placement", &p)
	return p, err
}

// Cluster returns the answering node's view of the cluster.
func (c *Client) Cluster(ctx context.Context) (Cluster, error) {
	var cl Cluster
	err := c.getJSON(ctx, "/cluster", &cl)
	return cl, err
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	r, err := c.do(ctx, call{method: http.MethodGet, path: path, read: true})
	if err != nil {
		return err
	}
	if r.status != http.StatusOK {
		return r.err("get")
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		return fmt.Errorf("client: decoding the answer of GET %s: %w", path, err)
	}
	return nil
}

// keyPath returns the escaped /kv/{key} path. "." and ".." are escaped too:
// left as they are, path cleaning (ServeMux's, proxies') would turn
// /kv/.. into /.
func keyPath(key string) string {
	if key == "." || key == ".." {
		return "/kv/" + strings.ReplaceAll(key, ".", "%2E")
	}
	return "/kv/" + url.PathEscape(key)
}

// keyQuery returns the query string of a key operation: quorumName ("r"
// or "w") when quorum > 0 and the timeout when d > 0, as url.Values.Encode
// would write them (sorted by name), without building the map.
func keyQuery(quorumName string, quorum int, d time.Duration) string {
	if quorum <= 0 && d <= 0 {
		return ""
	}
	var buf [64]byte
	q := buf[:0]
	addQuorum := func() {
		if quorum > 0 {
			if len(q) > 0 {
				q = append(q, '&')
			}
			q = append(q, quorumName...)
			q = append(q, '=')
			q = strconv.AppendInt(q, int64(quorum), 10)
		}
	}
	if quorumName < "timeout" {
		addQuorum()
	}
	if d > 0 {
		ms := max(d.Milliseconds(), 1)
		if time.Duration(ms)*time.Millisecond < d {
			ms++ // round up: a node must not give up earlier than asked
		}
		if len(q) > 0 {
			q = append(q, '&')
		}
		q = append(q, "timeout="...)
		q = strconv.AppendInt(q, ms, 10)
	}
	if quorumName > "timeout" {
		addQuorum()
	}
	return string(q)
}

// call is one API request, possibly tried at several nodes.
type call struct {
	method     string
	path       string // escaped, from the API root
	key        string // the key a put, get or delete is about, for routing
	keyed      bool   // key is set: a put, get or delete
	rawQuery   string // encoded, without the '?'
	acceptJSON bool   // send Accept: application/json
	context    string // the X-Dynago-Context token; "" for none
	header     http.Header
	body       []byte // nil: no body
	read       bool   // repeating it changes nothing, so it may be retried after any transport error
	timeout    time.Duration
}

// response is a complete answer: the body is read before the call's
// deadline is released.
type response struct {
	status int
	header http.Header
	body   []byte
	buf    *[]byte // body's buffer, from answerBufs; nil when not pooled
}

// release returns the body's buffer to the pool. Only a caller that is
// done with r.body and kept nothing that aliases it (decoded values are
// copies) may call it; a response never released is simply collected.
func (r *response) release() {
	if r.buf != nil && cap(*r.buf) <= maxPooledAnswer {
		answerBufs.Put(r.buf)
	}
	r.buf, r.body = nil, nil
}

// maxErrorBody bounds what an error message quotes from a non-JSON answer.
const maxErrorBody = 512

// shed reports whether r is a node's refusal for overload (503
// overloaded): it did nothing, so any request, a write too, may go to
// another node.
func (r response) shed() bool {
	if r.status != http.StatusServiceUnavailable {
		return false
	}
	var body api.Error
	return json.Unmarshal(r.body, &body) == nil && body.Code == api.CodeOverloaded
}

func (r response) err(op string) error {
	var body api.Error
	if json.Unmarshal(r.body, &body) != nil || body.Code == "" {
		msg := strings.TrimSpace(string(r.body[:min(len(r.body), maxErrorBody)]))
		if msg == "" {
			msg = http.StatusText(r.status)
		}
		return &APIError{Status: r.status, Message: msg}
	}
	if body.Code == api.CodeQuorumFailed {
		// Absent counts read as 0, as they did before api.Error made them
		// pointers.
		qe := &QuorumError{Op: op}
		if body.Acks != nil {
			qe.Acks = *body.Acks
		}
		if body.Required != nil {
			qe.Required = *body.Required
		}
		return qe
	}
	return &APIError{Status: r.status, Code: body.Code, Message: body.Error}
}

func (r response) context() (Context, error) {
	vctx, err := ParseContext(r.header.Get(api.ContextHeader))
	if err != nil {
		return nil, fmt.Errorf("client: node sent a bad context: %w", err)
	}
	return vctx, nil
}

// do sends cl to the nodes in turn (see order: the next one in rotation
// first, or the key's preference list with WithRouting) until one answers
// (with any status but overloaded) or retrying would not be safe. A node
// that sheds the request (503 overloaded) did nothing with it, so the next
// node is tried, for writes too; when every node sheds it, the last
// refusal is the answer.
func (c *Client) do(ctx context.Context, cl call) (response, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, max(c.timeout, cl.timeout+timeoutSlack))
		defer cancel()
	}
	var (
		err  error
		shed *response
	)
	for _, base := range c.order(ctx, cl) {
		var r response
		r, err = c.once(ctx, base, cl)
		if err == nil {
			c.observe(base, r)
			if !r.shed() {
				return r, nil
			}
			if shed != nil {
				shed.release()
			}
			shed = &r
			continue
		}
		if ctx.Err() != nil {
			break // the caller's deadline, not the node's fault
		}
		c.markDown(base)
		if !cl.read && !notSent(err) {
			// The write may have reached this node: its unknown outcome
			// is the answer, not an earlier node's refusal.
			if shed != nil {
				shed.release()
			}
			return response{}, err
		}
	}
	if shed != nil {
		if ctx.Err() == nil {
			return *shed, nil
		}
		shed.release()
		if err == nil {
			// The last node shed the request as the deadline passed: the
			// deadline is the answer, not an empty response.
			err = fmt.Errorf("client: %w", ctx.Err())
		}
	}
	return response{}, err
}

func (c *Client) once(ctx context.Context, base string, cl call) (response, error) {
	var u string
	if cl.rawQuery != "" {
		u = base + cl.path + "?" + cl.rawQuery
	} else {
		u = base + cl.path
	}
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u, body)
	if err != nil {
		return response{}, fmt.Errorf("client: %w", err)
	}
	// Constant values are shared slices, not a []string per request:
	// net/http never modifies a request's header values.
	if cl.acceptJSON {
		req.Header["Accept"] = acceptJSON
	}
	if cl.context != "" {
		req.Header[api.ContextHeader] = []string{cl.context}
	}
	for k, v := range cl.header {
		req.Header[k] = v
	}
	if c.authHeader != nil {
		req.Header["Authorization"] = c.authHeader
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("client: %w", err) // a *url.Error, naming method and URL
	}
	defer resp.Body.Close()
	buf := answerBufs.Get().(*[]byte)
	b, err := readAnswer((*buf)[:0], resp.Body, resp.ContentLength)
	*buf = b
	if err != nil {
		answerBufs.Put(buf)
		return response{}, fmt.Errorf("client: %s %s: reading the answer: %w", cl.method, u, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b, buf: buf}, nil
}

// acceptJSON is the Accept header of a get.
var acceptJSON = []string{"application/json"}

// answerBufs holds the buffers answers are read into; see response.release.
var answerBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// maxPooledAnswer is the largest buffer put back in answerBufs, so that
// one large answer does not stay pinned in the pool.
const maxPooledAnswer = 256 << 10

// maxPresize bounds the room made for an answer from its Content-Length
// alone, before its bytes arrive: a node (or anything answering in its
// place) declaring a huge body gets a buffer that grows as bytes come.
const maxPresize = 4 << 20

// readAnswer appends body, to its end, to b: as io.ReadAll, but with room
// made for the declared size (-1: unknown) up front, plus the one byte that
// lets the read that meets the end need no growth.
func readAnswer(b []byte, body io.Reader, size int64) ([]byte, error) {
	if size >= 0 && size < maxPresize {
		b = slices.Grow(b, int(size)+1)
	}
	for {
		if len(b) == cap(b) {
			b = slices.Grow(b, max(len(b), 512))
		}
		n, err := body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// notSent reports whether err means the request never left: no connection
// could be made. Only then is a write safe to send to another node.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
