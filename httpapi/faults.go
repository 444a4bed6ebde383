package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/dynago/dynago/fault"
)

// Faults is implemented by backends with a fault injector (the lab): the
// rules apply to what this node sends, over RPC and gossip alike.
type Faults interface {
	FaultRules() fault.Rules
	SetFaultRules(fault.Rules) error
	FaultStats() fault.Stats
}

type faultsBody struct {
	Rules fault.Rules `json:"rules"`
	Stats fault.Stats `json:"stats"`
}

// maxFaultsBody bounds a rules document: a few rules per node.
const maxFaultsBody = 1 << 20

func (a *handler) faults(w http.ResponseWriter, r *http.Request) {
	f, ok := a.b.(Faults)
	if !ok {
		writeError(w, &apiError{http.StatusNotFound, CodeNotFound, "this node has no fault injector"})
		return
	}
	switch r.Method {
	case http.MethodPut:
		var rules fault.Rules
		body, err := io.ReadAll(io.LimitReader(r.Body, maxFaultsBody+1))
		if err == nil && len(body) > maxFaultsBody {
			err = errors.New("rules document too large")
		}
		if err == nil {
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			err = dec.Decode(&rules)
		}
		if err == nil {
			err = f.SetFaultRules(rules)
		}
		if err != nil {
			writeError(w, errBadParameter("fault rules: "+err.Error()))
			return
		}
	case http.MethodDelete:
		if err := f.SetFaultRules(fault.Rules{}); err != nil {
			writeError(w, &apiError{http.StatusInternalServerError, CodeInternal, err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, faultsBody{Rules: f.FaultRules(), Stats: f.FaultStats()})
}
