package resp

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/tidwall/redcon"

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/session"
)

// connSession is a connection's session (package session): the token
// every data command of the connection carries while it is active, as
// HTTP's X-Dynago-Session does per request. The jobs of one pipeline wave
// run at once and share it, hence the lock; each request takes the
// token's floor for its key when it is sent and records its answer when
// it comes back, so no observation is lost whatever order the replies
// arrive in. Commands on one key are never in one wave with a write of it
// (see the package doc), so a command always sees what the session's
// earlier commands on its key observed.
type connSession struct {
	mu  sync.Mutex
	tok *session.Token
}

// token returns the header form of the session's token.
func (cs *connSession) token() string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.tok.String()
}

// exec is what a job sends its requests through.
type exec struct {
	b    Backend
	sess *connSession // nil outside a session
}

func (b *batch) exec(j *job) exec { return exec{b: b.s.b, sess: j.sess} }

// do sends req to the core, carrying the session's floor for its key
// (node.WithSession) and recording what the reply showed the session
// (node.ObserveSession), exactly as HTTP does with X-Dynago-Session.
func (x exec) do(ctx context.Context, req node.Request) node.Reply {
	if x.sess == nil {
		return x.b.Do(ctx, req)
	}
	x.sess.mu.Lock()
	node.WithSession(x.sess.tok, &req)
	x.sess.mu.Unlock()
	rep := x.b.Do(ctx, req)
	x.sess.mu.Lock()
	node.ObserveSession(x.sess.tok, req, rep)
	x.sess.mu.Unlock()
	return rep
}

// cmdSession: SESSION START | RESUME token | TOKEN | END. A session
// belongs to the connection: its token lives in the server for as long as
// the connection does, and SESSION TOKEN hands it to the client, to carry
// to another connection or node (SESSION RESUME) or to HTTP
// (X-Dynago-Session; the forms are the same).
func cmdSession(b *batch, args [][]byte) []byte {
	// The pipeline's commands before this one run first, with the session
	// as it was: TOKEN then includes what they observed, and START, RESUME
	// or END apply only to the commands after it.
	b.runWave()
	sub := strings.ToUpper(string(args[1]))
	arity := map[string]int{"START": 2, "RESUME": 3, "TOKEN": 2, "END": 2}
	want, ok := arity[sub]
	if !ok {
		return redcon.AppendError(nil, fmt.Sprintf("ERR unknown subcommand '%.32s'; SESSION takes START, RESUME token, TOKEN or END", args[1]))
	}
	if len(args) != want {
		return redcon.AppendError(nil, fmt.Sprintf("ERR wrong number of arguments for 'session|%s' command", strings.ToLower(sub)))
	}
	switch sub {
	case "START":
		b.ss.sess = &connSession{tok: &session.Token{}}
	case "RESUME":
		tok, err := session.Parse(string(args[2]))
		if err != nil {
			// The connection's session, if any, stays as it was.
			return redcon.AppendError(nil, "BAD_SESSION "+err.Error())
		}
		b.ss.sess = &connSession{tok: tok}
	case "TOKEN":
		if b.ss.sess == nil {
			return redcon.AppendError(nil, "ERR no session on this connection; SESSION START or SESSION RESUME token begins one")
		}
		return redcon.AppendBulkString(nil, b.ss.sess.token())
	case "END":
		b.ss.sess = nil
	}
	return redcon.AppendOK(nil)
}

// authGeneration is Config.AuthGeneration, 0 without one.
func (s *Server) authGeneration() uint64 {
	if s.cfg.AuthGeneration == nil {
		return 0
	}
	return s.cfg.AuthGeneration()
}
