package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/dynago/dynago/dvv"
	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/session"
)

func TestSessionTokenCarriesWhatTheSessionSaw(t *testing.T) {
	srv, b := server(t, httpapi.Options{})
	// An empty header starts a session.
	a := call(t, srv, http.MethodPut, "/kv/a", []byte("v1"), httpapi.SessionHeader, "")
	if a.status != http.StatusNoContent {
		t.Fatalf("put: %d %s", a.status, a.body)
	}
	tokStr := a.header.Get(httpapi.SessionHeader)
	tok, err := session.Parse(tokStr)
	if err != nil || tok.Len() != 1 {
		t.Fatalf("answer token %q: %v (%d keys)", tokStr, err, tok.Len())
	}
	floor, _ := tok.Floor([]byte("a"))
	if len(floor) == 0 {
		t.Fatal("the token does not hold the write's version")
	}
	// The next request of the session hands the floor to the core.
	a = call(t, srv, http.MethodGet, "/kv/a", nil, httpapi.SessionHeader, tokStr)
	if a.status != http.StatusOK || string(a.body) != "v1" {
		t.Fatalf("get: %d %s", a.status, a.body)
	}
	reqs := b.Requests()
	last := reqs[len(reqs)-1]
	got, err := dvv.DecodeContext(last.Session)
	if err != nil || !got.Descends(floor) || !floor.Descends(got) {
		t.Fatalf("the core got floor %v (%v), want %v", got, err, floor)
	}
	// Without the header: no floor, no token.
	a = call(t, srv, http.MethodGet, "/kv/a", nil)
	if _, ok := a.header[http.CanonicalHeaderKey(httpapi.SessionHeader)]; ok {
		t.Fatal("an answer outside a session carries a session token")
	}
	if reqs := b.Requests(); len(reqs[len(reqs)-1].Session) != 0 {
		t.Fatal("a request without a session carried a floor")
	}
	// A delete is recorded as the newest view, deleted.
	a = call(t, srv, http.MethodDelete, "/kv/a", nil, httpapi.SessionHeader, tokStr, httpapi.ContextHeader, a.header.Get(httpapi.ContextHeader))
	if a.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", a.status, a.body)
	}
	tok, _ = session.Parse(a.header.Get(httpapi.SessionHeader))
	if _, deleted := tok.Floor([]byte("a")); !deleted {
		t.Fatal("the token does not record the delete")
	}
}

func TestSessionHostileTokensAre400(t *testing.T) {
	srv, b := server(t, httpapi.Options{})
	var good session.Token
	good.Observe([]byte("a"), dvv.VV{{Actor: "n1:1", Counter: 3}}, false)
	for name, tok := range map[string]string{
		"not base64": "!!!",
		"truncated":  good.String()[:len(good.String())-2],
		"oversized":  strings.Repeat("A", session.MaxHeaderSize+1),
		"garbage":    "AQIDBAUGBwgJ",
	} {
		before := len(b.Requests())
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
			a := call(t, srv, m, "/kv/a", []byte("x"), httpapi.SessionHeader, tok)
			var body struct{ Code string }
			_ = json.Unmarshal(a.body, &body)
			if a.status != http.StatusBadRequest || body.Code != httpapi.CodeBadSession {
				t.Errorf("%s %s: %d %s, want 400 bad_session", name, m, a.status, a.body)
			}
		}
		if len(b.Requests()) != before {
			t.Errorf("%s: a bad token reached the core", name)
		}
	}
}

func TestSessionUnavailableIs503(t *testing.T) {
	srv, b := server(t, httpapi.Options{})
	b.Fail(node.Reply{Code: node.CodeSessionUnavailable, Acks: 1, Required: 1, Err: "no replica holds the session's version"})
	var tok session.Token
	tok.Observe([]byte("a"), dvv.VV{{Actor: "n1:1", Counter: 3}}, false)
	a := call(t, srv, http.MethodGet, "/kv/a", nil, httpapi.SessionHeader, tok.String())
	var body struct {
		Code     string
		Acks     *int
		Required *int
	}
	if err := json.Unmarshal(a.body, &body); err != nil || a.status != http.StatusServiceUnavailable || body.Code != httpapi.CodeSessionUnavailable || body.Acks == nil {
		t.Fatalf("%d %s, want 503 session_unavailable with acks", a.status, a.body)
	}
	// The token comes back unchanged: the client keeps its session.
	if got := a.header.Get(httpapi.SessionHeader); got != tok.String() {
		t.Fatalf("token %q after a failed read, want %q", got, tok.String())
	}
}

func TestSessionTwoHeadersAre400(t *testing.T) {
	srv, b := server(t, httpapi.Options{})
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/kv/a", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Add(httpapi.SessionHeader, "")
	req.Header.Add(httpapi.SessionHeader, "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || len(b.Requests()) != 0 {
		t.Fatalf("two session headers: %d, %d requests reached the core; want 400 and none", resp.StatusCode, len(b.Requests()))
	}
}
