package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/dynago/dynago/node"
)

// DefaultsSetter is implemented by backends whose default R and W can
// change at run time. N cannot: it decides where every key lives, and
// changing it would move data without a handoff.
type DefaultsSetter interface {
	// SetDefaults changes the default R and W; zero keeps the current
	// value, so that two partial updates at once both take effect. The
	// node checks them against N: a quorum outside 1..N is refused with an
	// error wrapping node.ErrBadQuorum, and changes nothing.
	SetDefaults(r, w int) error
}

type defaultsBody struct {
	N int `json:"n"`
	R int `json:"r"`
	W int `json:"w"`
}

// defaultsUpdate is a PUT body; a field left out keeps its value.
type defaultsUpdate struct {
	N *int `json:"n"`
	R *int `json:"r"`
	W *int `json:"w"`
}

const maxDefaultsBody = 1 << 10

// defaults serves GET and PUT /admin/defaults: the R and W a request gets
// when it names none. A PUT changes this node only, until it restarts;
// the dashboard applies a change to every node.
func (a *handler) defaults(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPut {
		set, ok := a.b.(DefaultsSetter)
		if !ok {
			writeError(w, &apiError{http.StatusNotFound, CodeNotFound, "this node's defaults cannot change at run time"})
			return
		}
		var u defaultsUpdate
		body, err := io.ReadAll(io.LimitReader(r.Body, maxDefaultsBody+1))
		if err == nil && len(body) > maxDefaultsBody {
			err = fmt.Errorf("body over %d bytes", maxDefaultsBody)
		}
		if err == nil {
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err = dec.Decode(&u); err == nil && dec.More() {
				err = errors.New("data after the JSON object")
			}
		}
		if err != nil {
			writeError(w, errBadParameter("defaults: want {\"r\":R,\"w\":W}: "+err.Error()))
			return
		}
		if n, _, _ := a.b.Defaults(); u.N != nil && *u.N != n {
			writeError(w, errBadParameter(fmt.Sprintf("n is %d and cannot change at run time: it decides where every key lives", n)))
			return
		}
		// A field left out is passed as 0, which keeps the node's value;
		// so a given one must be positive (the node checks it against N).
		var rq, wq int
		for _, f := range []struct {
			name string
			v    *int
			to   *int
		}{{"r", u.R, &rq}, {"w", u.W, &wq}} {
			if f.v == nil {
				continue
			}
			if *f.v < 1 {
				writeError(w, errBadParameter(fmt.Sprintf("defaults: %s must be a positive integer (1..N), got %d", f.name, *f.v)))
				return
			}
			*f.to = *f.v
		}
		if err := set.SetDefaults(rq, wq); err != nil {
			if errors.Is(err, node.ErrBadQuorum) {
				writeError(w, errBadParameter(err.Error()))
			} else {
				writeError(w, &apiError{http.StatusServiceUnavailable, CodeUnavailable, err.Error()})
			}
			return
		}
	}
	n, rq, wq := a.b.Defaults()
	writeJSON(w, http.StatusOK, defaultsBody{N: n, R: rq, W: wq})
}
