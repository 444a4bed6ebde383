package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// DefaultsSetter is implemented by backends whose default R and W can
// change at run time. N cannot: it decides where every key lives, and
// changing it would move data without a handoff.
type DefaultsSetter interface {
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
func (a *api) defaults(w http.ResponseWriter, r *http.Request) {
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
		// Read, merge and store as one step: two partial updates ({"r":1}
		// and {"w":3}) at once must both take effect.
		a.defaultsMu.Lock()
		defer a.defaultsMu.Unlock()
		n, rq, wq := a.b.Defaults()
		if u.N != nil && *u.N != n {
			writeError(w, errBadParameter(fmt.Sprintf("n is %d and cannot change at run time: it decides where every key lives", n)))
			return
		}
		if u.R != nil {
			rq = *u.R
		}
		if u.W != nil {
			wq = *u.W
		}
		// The backend checks R and W against N.
		if err := set.SetDefaults(rq, wq); err != nil {
			writeError(w, errBadParameter(err.Error()))
			return
		}
	}
	n, rq, wq := a.b.Defaults()
	writeJSON(w, http.StatusOK, defaultsBody{N: n, R: rq, W: wq})
}
