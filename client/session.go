package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/dynago/dynago/api"
	"github.com/dynago/dynago/session"
)

// SessionHeader is the header carrying a session token.
const SessionHeader = api.SessionHeader

// CodeSessionUnavailable is the APIError code of a session read that no
// reachable replica could serve with the versions the session already saw
// (HTTP 503). The session is intact: retry later.
const CodeSessionUnavailable = api.CodeSessionUnavailable

// Session gives its caller's reads and writes the session guarantees
// (read-your-writes, monotonic reads, monotonic writes and
// writes-follow-reads, per key) at any R and W, by carrying a session
// token in X-Dynago-Session and keeping the token every answer returns.
// A read the cluster cannot serve with what the session saw fails with an
// APIError of code CodeSessionUnavailable (see IsSessionUnavailable)
// rather than answering stale.
//
// Within a session, a write without a Context still supersedes every
// version the session saw of the key (that is what orders it after them);
// values others wrote concurrently and the session never saw stay
// siblings.
//
// A Session is safe for concurrent use: answers of concurrent calls are
// merged into one token. The token remembers at most session.MaxKeys keys
// (least recently used dropped first; Dropped counts them, and their
// guarantees lapse).
type Session struct {
	c   *Client
	mu  sync.Mutex
	tok *session.Token
}

// NewSession starts an empty session on c.
func (c *Client) NewSession() *Session { return &Session{c: c, tok: &session.Token{}} }

// ResumeSession continues the session whose Token is token (for instance
// one handed from one process to another).
func (c *Client) ResumeSession(token string) (*Session, error) {
	tok, err := session.Parse(token)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return &Session{c: c, tok: tok}, nil
}

// Token returns the session's current token, the X-Dynago-Session value.
func (s *Session) Token() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok.String()
}

// Dropped returns how many keys the token forgot to stay within its
// bounds: their guarantees no longer hold in this session.
func (s *Session) Dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok.Dropped
}

// IsSessionUnavailable reports whether err is a session read the cluster
// could not yet serve with the versions the session saw.
func IsSessionUnavailable(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == CodeSessionUnavailable
}

// do sends cl with the session's token and keeps the token of the answer.
func (s *Session) do(ctx context.Context, cl call) (response, error) {
	if cl.header == nil {
		cl.header = http.Header{}
	}
	cl.header.Set(SessionHeader, s.Token())
	r, err := s.c.do(ctx, cl)
	if err != nil {
		return r, err
	}
	if vs, ok := r.header[http.CanonicalHeaderKey(SessionHeader)]; ok && len(vs) == 1 {
		tok, perr := session.Parse(vs[0])
		if perr != nil {
			return r, fmt.Errorf("client: node sent a bad session token: %w", perr)
		}
		s.mu.Lock()
		s.tok.Merge(tok)
		s.mu.Unlock()
	}
	return r, nil
}

// Put is Client.Put within the session.
func (s *Session) Put(ctx context.Context, key string, value []byte, o *PutOptions) (Context, error) {
	return put(ctx, s.do, key, value, o)
}

// Delete is Client.Delete within the session.
func (s *Session) Delete(ctx context.Context, key string, o *PutOptions) error {
	return del(ctx, s.do, key, o)
}

// Get is Client.Get within the session: it returns a version that holds
// everything the session wrote or read of key, or an error.
func (s *Session) Get(ctx context.Context, key string, o *GetOptions) (Value, error) {
	return get(ctx, s.do, key, o)
}
