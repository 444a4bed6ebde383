package httpapi

import (
	"fmt"
	"net/http"

	"github.com/dynago/dynago/api"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/session"
)

// SessionHeader and the session error codes: see package api.
const (
	SessionHeader          = api.SessionHeader
	CodeBadSession         = api.CodeBadSession
	CodeSessionUnavailable = api.CodeSessionUnavailable
)

// sessionOf returns the request's session token, nil when the request
// carries no X-Dynago-Session header (an empty one is a new session).
func sessionOf(r *http.Request) (*session.Token, *apiError) {
	vs, ok := r.Header[http.CanonicalHeaderKey(SessionHeader)]
	if !ok {
		return nil, nil
	}
	if len(vs) > 1 {
		return nil, &apiError{http.StatusBadRequest, CodeBadSession, fmt.Sprintf("%d %s headers; send one", len(vs), SessionHeader)}
	}
	tok, err := session.Parse(vs[0])
	if err != nil {
		return nil, &apiError{http.StatusBadRequest, CodeBadSession, err.Error()}
	}
	return tok, nil
}

// withSession gives req the session's floor for its key.
func withSession(tok *session.Token, req *node.Request) { node.WithSession(tok, req) }

// answerSession records in tok what the reply showed the session (see
// node.ObserveSession) and sets the updated token on the answer, failed
// or not, so that a client can always keep the token it gets back.
func answerSession(w http.ResponseWriter, tok *session.Token, req node.Request, rep node.Reply) {
	if tok == nil {
		return
	}
	node.ObserveSession(tok, req, rep)
	w.Header().Set(SessionHeader, tok.String())
}
