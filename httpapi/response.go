package httpapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
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

// errorBody is the JSON of every error answer. Acks and Required are
// pointers because 0 acks is a meaningful value of a quorum failure.
type errorBody struct {
	Error    string     `json:"error"`
	Code     string     `json:"code"`
	Acks     *int       `json:"acks,omitempty"`
	Required *int       `json:"required,omitempty"`
	Trace    *traceJSON `json:"trace,omitempty"`
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, errorBody{Error: e.msg, Code: e.code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The status is sent; an encoding or write error can only mean the
	// client went away.
	_ = json.NewEncoder(w).Encode(v)
}

// writeReplyError answers a Reply whose Code is not a success of its
// operation.
func (a *api) writeReplyError(w http.ResponseWriter, req node.Request, rep node.Reply, trace bool) {
	body := errorBody{Error: rep.Err, Code: CodeInternal}
	status := http.StatusInternalServerError
	switch rep.Code {
	case node.CodeNotFound:
		status, body.Code = http.StatusNotFound, CodeNotFound
	case node.CodeQuorumFailed:
		status, body.Code = http.StatusServiceUnavailable, CodeQuorumFailed
		body.Acks, body.Required = &rep.Acks, &rep.Required
	case node.CodeBadRequest:
		status, body.Code = http.StatusBadRequest, CodeBadRequest
	case node.CodeTooManySiblings:
		status, body.Code = http.StatusConflict, CodeTooManySiblings
	case node.CodeUnavailable:
		status, body.Code = http.StatusServiceUnavailable, CodeUnavailable
	default:
		a.opts.Logger.Error("httpapi: request failed", "op", req.Op, "key", string(req.Key), "code", rep.Code, "err", rep.Err)
	}
	if body.Error == "" {
		body.Error = rep.Code.String()
	}
	if trace {
		body.Trace = newTraceJSON(rep.Trace)
	}
	writeJSON(w, status, body)
}

// traceJSON is node.Trace as the dashboard reads it.
type traceJSON struct {
	Coordinator    ring.NodeID      `json:"coordinator"`
	ForwardedBy    ring.NodeID      `json:"forwarded_by,omitempty"`
	Partition      int              `json:"partition"`
	PreferenceList []ring.NodeID    `json:"preference_list"`
	Events         []traceEventJSON `json:"events"`
}

type traceEventJSON struct {
	AtMS float64     `json:"at_ms"` // milliseconds since the coordinator took the request
	Node ring.NodeID `json:"node"`
	What string      `json:"what"`
	Note string      `json:"note,omitempty"`
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

func newTraceJSON(t *node.Trace) *traceJSON {
	if t == nil {
		return nil
	}
	out := &traceJSON{
		Coordinator:    t.Coordinator,
		ForwardedBy:    t.ForwardedBy,
		Partition:      t.Partition,
		PreferenceList: nonNil(t.PreferenceList),
		Events:         make([]traceEventJSON, len(t.Events)),
	}
	for i, e := range t.Events {
		out.Events[i] = traceEventJSON{AtMS: float64(e.At) / float64(time.Millisecond), Node: e.Node, What: e.What, Note: e.Note}
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
