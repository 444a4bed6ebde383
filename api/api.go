// Package api is the HTTP contract of a dynago node as Go: the header
// names, the context token codec, the error codes and the JSON bodies that
// the server (package httpapi) encodes and its readers (package client, the
// dashboard's proxy, the dynago CLI) decode. It is the HTTP counterpart of
// proto/dynagopb.
//
// docs/API.md stays the specification; this package is its one executable
// copy, so that a field renamed on one side cannot silently stop being read
// on the other. The JSON field names and error codes here are a public
// contract that external clients depend on: change them only with
// docs/API.md.
//
// The package imports only ring and the standard library (no net/http), so
// anything may read the contract without linking a server.
package api

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// Headers.
const (
	// ContextHeader carries a context from a read to the write that
	// supersedes it, and the new version's context back.
	ContextHeader = "X-Dynago-Context"
	// SessionHeader carries a session token (package session) on /kv
	// requests and answers. A request carrying it, even empty (a new
	// session), gets the session guarantees for its key and an answer
	// carrying the updated token.
	SessionHeader = "X-Dynago-Session"
	// SiblingsHeader is set on a successful put or delete that left the
	// key with more siblings than the coordinator's soft limit: the number
	// of siblings. The application should read the key and write back a
	// resolved value with the context.
	SiblingsHeader = "X-Dynago-Siblings"
	// RingVersionHeader is set on every /kv/ answer to the version of the
	// ring the answering node holds, so that a routing client notices a
	// membership change on its next answer instead of polling /ring.
	RingVersionHeader = "X-Dynago-Ring-Version"
)

// RingHash names the key hash of every dynago ring (ring.DefaultHash) in
// /ring answers. A client that places keys itself must refuse any other
// value: placing keys with a different hash sends every request to the
// wrong node.
const RingHash = "xxhash64"

// EncodeContext returns the token form of a context as it travels in
// ContextHeader and "context" JSON fields: unpadded base64url, safe in
// headers, URLs and shells. Clients treat the bytes as opaque; the node
// that issues them decides what they hold. An empty ctx encodes as "".
func EncodeContext(ctx []byte) string { return base64.RawURLEncoding.EncodeToString(ctx) }

// DecodeContext reverses EncodeContext. Trailing '=' padding is tolerated
// for clients whose base64 library always pads. The empty token is no
// context: nil, nil. It checks the encoding only; what the bytes mean is
// the node's to validate.
func DecodeContext(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not unpadded base64url: %w", err)
	}
	return b, nil
}

// Error codes of JSON error bodies (Error.Code).
const (
	CodeBadKey           = "bad_key"            // empty, not one path segment, or too long
	CodeBadParameter     = "bad_parameter"      // r, w, timeout, trace or the query string itself
	CodeBadContext       = "bad_context"        // X-Dynago-Context does not decode
	CodeBadRequest       = "bad_request"        // the core rejected the request
	CodeTooLarge         = "too_large"          // value over the node's maximum value size
	CodeNotFound         = "not_found"          // no live value, or no such route
	CodeQuorumFailed     = "quorum_failed"      // fewer than R/W replicas answered; a put's outcome is unknown
	CodeUnavailable      = "unavailable"        // no replica of the key reachable
	CodeInternal         = "internal"           // storage or other local failure
	CodeMethodNotAllowed = "method_not_allowed" // see the Allow header
	CodeTooManySiblings  = "too_many_siblings"  // 409: the write would exceed the sibling cap; resolve first
	CodeBodyTimeout      = "body_timeout"       // 408: the body did not arrive in time
	// CodeOverloaded: 503 with Retry-After; the node had as many client
	// requests in flight as --max-inflight admits and did nothing.
	CodeOverloaded = "overloaded"

	CodeBadSession = "bad_session" // 400: X-Dynago-Session does not decode
	// CodeSessionUnavailable: 503, R replicas answered but none that
	// answered before the timeout holds the version the session saw.
	CodeSessionUnavailable = "session_unavailable"

	CodeTransition = "transition_in_progress" // a membership change is running
	CodeNoChange   = "no_change"              // nothing staged
	CodeNoRing     = "no_ring"                // this node has not joined a cluster yet
	// CodeNoTransition answers an abort with no change running.
	CodeNoTransition = "no_transition"
	// CodeMemberUnreachable refuses a plan or commit with a joining node
	// whose advertised addresses do not answer.
	CodeMemberUnreachable = "member_unreachable"

	// CodeBackupTarget refuses a backup into a directory that is not empty.
	CodeBackupTarget = "backup_target_not_empty"
)

// Error is the JSON body of every error answer. Acks and Required are
// pointers because 0 acks is a meaningful value of a quorum failure; they
// are set for CodeQuorumFailed and CodeSessionUnavailable.
type Error struct {
	Error    string `json:"error"`
	Code     string `json:"code"`
	Acks     *int   `json:"acks,omitempty"`
	Required *int   `json:"required,omitempty"`
	Trace    *Trace `json:"trace,omitempty"`
}
