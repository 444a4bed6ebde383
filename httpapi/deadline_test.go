package httpapi_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/httpapi/httpapitest"
	"github.com/dynago/dynago/node"
)

// slowPuts holds every put for delay after its body was read, as a
// coordinator waiting for its write quorum does, and records whether the
// request's context was still alive at the end.
type slowPuts struct {
	*httpapitest.Backend
	delay    time.Duration
	ctxAlive chan bool
}

func (s *slowPuts) Do(ctx context.Context, req node.Request) node.Reply {
	if req.Op == node.OpPut {
		time.Sleep(s.delay)
		s.ctxAlive <- ctx.Err() == nil
	}
	return s.Backend.Do(ctx, req)
}

// TestBodyDeadlineEndsWithTheBody: once a put's body is read, the body
// deadline no longer applies (deadlineBody clears it; net/http does too
// when it starts its background read at the body's end), so a quorum wait
// longer than BodyTimeout is neither cut nor cancelled. Values of several
// sizes, read to their declared length.
func TestBodyDeadlineEndsWithTheBody(t *testing.T) {
	const timeout = 100 * time.Millisecond
	b := &slowPuts{Backend: httpapitest.New(), delay: 5 * timeout / 2, ctxAlive: make(chan bool, 1)}
	srv := serve(t, b, httpapi.Options{BodyTimeout: timeout})
	for _, n := range []int{0, 1, 100, 70 << 10} {
		req, err := http.NewRequest(http.MethodPut, srv.URL+"/kv/k", bytes.NewReader(bytes.Repeat([]byte("v"), n)))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("%d bytes: %d, want 204", n, resp.StatusCode)
		}
		if !<-b.ctxAlive {
			t.Fatalf("%d bytes: the request was cancelled while waiting past the body timeout", n)
		}
	}
}
