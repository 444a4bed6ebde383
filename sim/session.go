package sim

import (
	"fmt"
	"strings"

	"github.com/dynago/dynago/dvv"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/session"
)

// The session checker. Every client of RunSeed is a session; with
// RunOptions.Sessions it carries a session token (package session) as the
// HTTP API's X-Dynago-Session does, without it it is the control. Either
// way the checker judges, per session and key, every read that succeeded
// and every write acknowledged against Terry et al.'s guarantees, using
// only what the client was told (contexts, dots):
//
//   - read-your-writes: a read's version covers the dot of every write the
//     session had acknowledged on the key;
//   - monotonic reads: a read's version covers every version the session
//     read before of the key;
//   - monotonic writes: an acknowledged write's version covers the dots of
//     the session's earlier acknowledged writes of the key (it follows
//     them, so it can never show up as their sibling or be overtaken);
//   - writes-follow-reads: an acknowledged write's version covers every
//     version the session read before of the key.
//
// A read that finds nothing at all (no context) when the session's
// newest view of the key was a delete is correct (the tombstone was
// reaped), as the coordinator also judges. Guarantees are per key, like
// the tokens: orderings across keys are not promised.

// SessionReport counts the session checker's findings over one run.
type SessionReport struct {
	Reads, Writes int // successful reads and acknowledged writes checked
	// Unavailable counts session reads answered session_unavailable.
	Unavailable int
	// Violations per guarantee.
	ReadYourWrites, MonotonicReads, MonotonicWrites, WritesFollowReads int
	// Details holds the first violations, one readable line each.
	Details []string
}

// Violations returns the total of violations over all guarantees.
func (s SessionReport) Violations() int {
	return s.ReadYourWrites + s.MonotonicReads + s.MonotonicWrites + s.WritesFollowReads
}

// String summarizes the report on one line.
func (s SessionReport) String() string {
	return fmt.Sprintf("reads=%d writes=%d session_unavailable=%d read-your-writes=%d monotonic-reads=%d monotonic-writes=%d writes-follow-reads=%d",
		s.Reads, s.Writes, s.Unavailable, s.ReadYourWrites, s.MonotonicReads, s.MonotonicWrites, s.WritesFollowReads)
}

// maxSessionDetails bounds the violations described in a report.
const maxSessionDetails = 20

// sessionKey is what the checker knows of one session's history of a key.
type sessionKey struct {
	wrote   dvv.VV // join of the dots of the session's acknowledged writes
	read    dvv.VV // join of the versions the session read
	deleted bool   // the session's newest view was a delete or a not-found
}

// sessionClient is one client's session state: its token (nil for the
// control) and the checker's history.
type sessionClient struct {
	tok  *session.Token
	keys map[string]*sessionKey
}

func newSessionClient(carry bool) *sessionClient {
	s := &sessionClient{keys: map[string]*sessionKey{}}
	if carry {
		s.tok = &session.Token{}
	}
	return s
}

// prepare gives req the session's floor (when tokens are carried) and
// returns the context the write is effectively stamped on: the client's
// own joined with the floor, as the coordinator does.
func (s *sessionClient) prepare(req *node.Request) ([]byte, error) {
	node.WithSession(s.tok, req)
	if req.Op == node.OpGet || len(req.Session) == 0 {
		return req.Context, nil
	}
	ctx, err := dvv.DecodeContext(req.Context)
	if err != nil {
		return nil, err
	}
	floor, err := dvv.DecodeContext(req.Session)
	if err != nil {
		return nil, err
	}
	return dvv.EncodeContext(dvv.Merge(ctx, floor)), nil
}

// observe checks rep, the answer to req, and records it.
func (s *sessionClient) observe(rep *SessionReport, client int, req node.Request, r node.Reply) {
	node.ObserveSession(s.tok, req, r)
	k := s.keys[string(req.Key)]
	if k == nil {
		k = &sessionKey{}
		s.keys[string(req.Key)] = k
	}
	ctx, err := dvv.DecodeContext(r.Context)
	if err != nil {
		return // the run itself reports undecodable contexts
	}
	violate := func(count *int, what string) {
		*count++
		if len(rep.Details) < maxSessionDetails {
			rep.Details = append(rep.Details, fmt.Sprintf("client %d: %s %s: %s", client, req.Op, req.Key, what))
		}
	}
	switch {
	case req.Op == node.OpGet && r.Code == node.CodeSessionUnavailable:
		rep.Unavailable++
	case req.Op == node.OpGet && (r.Code == node.CodeOK || r.Code == node.CodeNotFound):
		rep.Reads++
		reaped := len(ctx) == 0 && r.Code == node.CodeNotFound && k.deleted
		if !reaped && !ctx.Descends(k.wrote) {
			violate(&rep.ReadYourWrites, fmt.Sprintf("read version %s misses the session's writes %s", vvString(ctx), vvString(k.wrote)))
		}
		if !reaped && !ctx.Descends(k.read) {
			violate(&rep.MonotonicReads, fmt.Sprintf("read version %s is older than the session's earlier read %s", vvString(ctx), vvString(k.read)))
		}
		k.read = dvv.Merge(k.read, ctx)
		k.deleted = r.Code == node.CodeNotFound
	case req.Op != node.OpGet && r.Code == node.CodeOK:
		rep.Writes++
		if !ctx.Descends(k.wrote) {
			violate(&rep.MonotonicWrites, fmt.Sprintf("written version %s does not follow the session's earlier writes %s", vvString(ctx), vvString(k.wrote)))
		}
		if !ctx.Descends(k.read) {
			violate(&rep.WritesFollowReads, fmt.Sprintf("written version %s does not follow the session's reads %s", vvString(ctx), vvString(k.read)))
		}
		k.wrote = dvv.Merge(k.wrote, dvv.VV{r.Dot})
		k.deleted = req.Op == node.OpDelete
	}
}

func vvString(v dvv.VV) string {
	parts := make([]string, len(v))
	for i, d := range v {
		parts[i] = fmt.Sprintf("%s:%d", d.Actor, d.Counter)
	}
	return "{" + strings.Join(parts, " ") + "}"
}
