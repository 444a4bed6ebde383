package httpapi

import (
	"errors"
	"io"
	"net/http"
	"time"
)

// bodyDeadline gives every request that carries a body d to deliver it,
// from the moment its headers were read. The server's ReadHeaderTimeout
// covers the headers only, and an http.Server ReadTimeout cannot be used:
// once a request's body is read, the server keeps a read pending on the
// connection to notice a client that goes away, and when the deadline hits
// that read it cancels the request's context, which would end the /events
// stream (and a put waiting for its quorum) after d. So the deadline is set
// per request, only when there is a body, and cleared as soon as the body
// ends. A body that does not end in time fails the handler's read (408,
// see readValue), and the server closes the connection instead of waiting
// for the rest. A handler that ignores its body leaves the deadline armed,
// which bounds the server's own attempt to discard the body after it.
//
// New applies it to the API; WithBodyDeadline is for other handlers served
// on the same port (the dashboard).
func WithBodyDeadline(h http.Handler, d time.Duration) http.Handler { return bodyDeadline(h, d) }

func bodyDeadline(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		if err := setReadDeadline(w, time.Now().Add(d)); err != nil {
			// A ResponseWriter without deadlines (a test recorder): there
			// is no connection to hold.
			h.ServeHTTP(w, r)
			return
		}
		r.Body = &deadlineBody{ReadCloser: r.Body, w: w}
		h.ServeHTTP(w, r)
	})
}

// deadlineBody clears the connection's read deadline once the body has
// been read to its end, so that the rest of the request (a quorum wait)
// is not limited by it.
type deadlineBody struct {
	io.ReadCloser
	w    http.ResponseWriter
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && !b.done {
		b.done = true
		_ = setReadDeadline(b.w, time.Time{})
	}
	return n, err
}

// setReadDeadline is http.ResponseController's SetReadDeadline (the same
// walk down the Unwrap chain to a writer that has the method) without
// allocating a controller per request.
func setReadDeadline(w http.ResponseWriter, t time.Time) error {
	for {
		switch u := w.(type) {
		case interface{ SetReadDeadline(time.Time) error }:
			return u.SetReadDeadline(t)
		case interface{ Unwrap() http.ResponseWriter }:
			w = u.Unwrap()
		default:
			return http.ErrNotSupported
		}
	}
}
