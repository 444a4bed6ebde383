package httpapi

import (
	"net/http"
	"time"

	"github.com/dynago/dynago/api"
	"github.com/dynago/dynago/node"
)

// apiError is a request answered with an error status and a JSON body
// {"error","code"}.
type apiError struct {
	status int
	code   string
	msg    string
}

func errBadKey(msg string) *apiError { return &apiError{http.StatusBadRequest, CodeBadKey, msg} }

func errBadParameter(msg string) *apiError {
	return &apiError{http.StatusBadRequest, CodeBadParameter, msg}
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeErrorBody(w, e.status, &api.Error{Error: e.msg, Code: e.code})
}

// writeReplyError answers a Reply whose Code is not a success of its
// operation.
func (a *handler) writeReplyError(w http.ResponseWriter, req node.Request, rep node.Reply, trace bool) {
	code, expected := ReplyCode(rep.Code)
	body := api.Error{Error: rep.Err, Code: code}
	status := http.StatusInternalServerError
	switch code {
	case CodeNotFound:
		status = http.StatusNotFound
	case CodeQuorumFailed:
		status = http.StatusServiceUnavailable
		body.Acks, body.Required = &rep.Acks, &rep.Required
	case CodeBadRequest, CodeBadParameter:
		status = http.StatusBadRequest
	case CodeTooManySiblings:
		status = http.StatusConflict
	case CodeUnavailable:
		status = http.StatusServiceUnavailable
	case CodeSessionUnavailable:
		status = http.StatusServiceUnavailable
		body.Acks, body.Required = &rep.Acks, &rep.Required
	case CodeOverloaded:
		status = http.StatusServiceUnavailable
		// Nothing was done: a client may retry at once elsewhere, or here
		// after a pause (RFC 9110's Retry-After, in seconds).
		w.Header().Set("Retry-After", "1")
	}
	if !expected {
		a.opts.Logger.Error("httpapi: request failed", "op", req.Op, "key", string(req.Key), "code", rep.Code, "err", rep.Err)
	}
	if body.Error == "" {
		body.Error = rep.Code.String()
	}
	if trace {
		body.Trace = newTraceJSON(rep.Trace)
	}
	writeErrorBody(w, status, &body)
}

// TraceJSON returns t in the JSON shape of a ?trace=1 answer's "trace"
// member (nil for a nil t), for other views of a request such as the
// event stream.
func TraceJSON(t *node.Trace) any {
	if t == nil {
		return nil
	}
	return newTraceJSON(t)
}

func newTraceJSON(t *node.Trace) *api.Trace {
	if t == nil {
		return nil
	}
	out := &api.Trace{
		Coordinator:    t.Coordinator,
		ForwardedBy:    t.ForwardedBy,
		Partition:      t.Partition,
		PreferenceList: nonNil(t.PreferenceList),
		Events:         make([]api.TraceEvent, len(t.Events)),
	}
	for i, e := range t.Events {
		out.Events[i] = api.TraceEvent{AtMS: float64(e.At) / float64(time.Millisecond), Node: e.Node, What: e.What, Note: e.Note}
	}
	return out
}

// nonNil makes an empty list encode as [] rather than null, so that
// clients can iterate without a null check.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
