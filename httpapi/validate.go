package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/dynago/dynago/node"
)

// InputError is client input refused at the edge, before the core sees
// it, with the API code of the refusal. The checks that produce it are
// shared by every front end (HTTP here, RESP in package resp), so that a
// key, quorum, timeout or value is accepted or refused the same way
// whichever protocol carries it.
type InputError struct {
	Code string // one of the Code* constants
	Msg  string
}

func (e *InputError) Error() string { return e.Msg }

// CheckKey refuses an empty key or one longer than max bytes (bad_key).
func CheckKey(key []byte, max int) error {
	switch {
	case len(key) == 0:
		return &InputError{CodeBadKey, "empty key"}
	case len(key) > max:
		return &InputError{CodeBadKey, fmt.Sprintf("key is %d bytes, more than the limit of %d", len(key), max)}
	}
	return nil
}

// CheckValueSize refuses a value of more than max bytes (too_large).
func CheckValueSize(size int64, max int) error {
	if size > int64(max) {
		return &InputError{CodeTooLarge, fmt.Sprintf("value larger than the limit of %d bytes", max)}
	}
	return nil
}

// ParseQuorum parses a per-request R or W (named name in the message): a
// positive integer (bad_parameter otherwise). Only the syntax is checked
// here; whether it is within 1..N is the core's to say (node.CodeBadQuorum,
// which ReplyCode turns into bad_parameter too), against the N it runs by.
// Zero is refused, not passed on: in a node.Request it means "the default".
func ParseQuorum(name, s string) (int, error) {
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		return 0, &InputError{CodeBadParameter, fmt.Sprintf("%s must be a positive integer (1..N), got %q", name, s)}
	}
	return v, nil
}

// ParseTimeout parses a per-request timeout in milliseconds: a positive
// integer (bad_parameter otherwise), lowered to max.
func ParseTimeout(s string, max time.Duration) (time.Duration, error) {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms <= 0 {
		return 0, &InputError{CodeBadParameter, fmt.Sprintf("timeout must be a positive integer number of milliseconds, got %q", s)}
	}
	// Compare in milliseconds: ms*time.Millisecond may overflow.
	if ms >= max.Milliseconds() {
		return max, nil
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// DecodeContext is DecodeContextHeader with its error as an InputError
// (bad_context).
func DecodeContext(key []byte, token string) ([]byte, error) {
	ctx, err := DecodeContextHeader(key, token)
	if err != nil {
		return nil, &InputError{CodeBadContext, err.Error()}
	}
	return ctx, nil
}

// ReplyCode is the API code of a core reply that is not a success of its
// operation ("" for CodeOK), and whether the code is one a client can act
// on (false: a local failure worth logging).
func ReplyCode(c node.Code) (code string, expected bool) {
	switch c {
	case node.CodeOK:
		return "", true
	case node.CodeNotFound:
		return CodeNotFound, true
	case node.CodeQuorumFailed:
		return CodeQuorumFailed, true
	case node.CodeBadRequest:
		return CodeBadRequest, true
	case node.CodeBadQuorum:
		return CodeBadParameter, true
	case node.CodeTooManySiblings:
		return CodeTooManySiblings, true
	case node.CodeUnavailable:
		return CodeUnavailable, true
	case node.CodeSessionUnavailable:
		return CodeSessionUnavailable, true
	case node.CodeOverloaded:
		return CodeOverloaded, true
	}
	return CodeInternal, false
}

// RoleAllows reports whether role is at least need (read < write <
// admin).
func RoleAllows(role, need string) bool {
	return roleRank[role] >= roleRank[need] && roleRank[role] > 0
}

// inputError turns an error of the checks above into an HTTP answer.
func inputError(err error) *apiError {
	var ie *InputError
	if !errors.As(err, &ie) {
		return &apiError{http.StatusBadRequest, CodeBadRequest, err.Error()}
	}
	status := http.StatusBadRequest
	if ie.Code == CodeTooLarge {
		status = http.StatusRequestEntityTooLarge
	}
	return &apiError{status, ie.Code, ie.Msg}
}
