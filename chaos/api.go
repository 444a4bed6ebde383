package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dynago/dynago/fault"
)

// set is one key's value: a set of elements.
type set map[string]struct{}

// encodeSet is the stored form of a set: its elements sorted, one a line.
func encodeSet(s set) []byte {
	elems := make([]string, 0, len(s))
	for e := range s {
		elems = append(elems, e)
	}
	slices.Sort(elems)
	return []byte(strings.Join(elems, "\n"))
}

// addSiblings adds the elements of every sibling to s: a set's siblings
// are merged as their union, which is what makes the set workload correct
// under concurrent writes.
func (s set) addSiblings(siblings [][]byte) {
	for _, v := range siblings {
		for _, e := range strings.Split(string(v), "\n") {
			if e != "" {
				s[e] = struct{}{}
			}
		}
	}
}

func (s set) equal(o set) bool {
	if len(s) != len(o) {
		return false
	}
	for e := range s {
		if _, ok := o[e]; !ok {
			return false
		}
	}
	return true
}

// newHTTPClient is the client of every request the runner and the process
// cluster send: short dial timeout (a killed node refuses at once, a cut
// container does not answer at all), and enough idle connections per node
// for every chaos client.
func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	}}
}

// apiCall sends one request to the node at addr and decodes a 200 JSON
// answer into v (when v is not nil). Other statuses are errors carrying
// the status; notFound reports a 404.
func apiCall(ctx context.Context, hc *http.Client, method, addr, path string, body, v any) (notFound bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return false, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, rd)
	if err != nil {
		return false, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return false, err
	}
	if resp.StatusCode == http.StatusNotFound {
		return true, fmt.Errorf("%s %s: 404", method, path)
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("%s %s at %s: %s: %s", method, path, addr, resp.Status, strings.TrimSpace(string(b[:min(len(b), 200)])))
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			return false, fmt.Errorf("%s %s at %s: %w", method, path, addr, err)
		}
	}
	return false, nil
}

func keyPath(key string) string { return url.PathEscape(key) }

// localSet reads the node's own copy of key (GET /admin/local), without
// coordination. A node holding nothing has the empty set.
func localSet(ctx context.Context, hc *http.Client, addr, key string) (set, error) {
	var body struct {
		Siblings []struct {
			Value   []byte `json:"value"`
			Deleted bool   `json:"deleted"`
		} `json:"siblings"`
	}
	notFound, err := apiCall(ctx, hc, http.MethodGet, addr, "/admin/local/"+keyPath(key), nil, &body)
	if notFound {
		return set{}, nil
	}
	if err != nil {
		return nil, err
	}
	s := set{}
	for _, sib := range body.Siblings {
		if !sib.Deleted {
			s.addSiblings([][]byte{sib.Value})
		}
	}
	return s, nil
}

// preferenceList asks the node at addr for key's N primary replicas.
func preferenceList(ctx context.Context, hc *http.Client, addr, key string) ([]string, error) {
	var p struct {
		PreferenceList []string `json:"preference_list"`
	}
	if _, err := apiCall(ctx, hc, http.MethodGet, addr, "/kv/"+keyPath(key)+"/placement", nil, &p); err != nil {
		return nil, err
	}
	if len(p.PreferenceList) == 0 {
		return nil, fmt.Errorf("placement of %q at %s: empty preference list", key, addr)
	}
	return p.PreferenceList, nil
}

// clusterView is a node's GET /cluster.
type clusterView struct {
	Node  string `json:"node"`
	N     int    `json:"n"`
	Nodes []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	} `json:"nodes"`
}

func getCluster(ctx context.Context, hc *http.Client, addr string) (clusterView, error) {
	var cv clusterView
	_, err := apiCall(ctx, hc, http.MethodGet, addr, "/cluster", nil, &cv)
	return cv, err
}

// setCuts replaces the fault-injection rules of the node at addr with a
// cut to every node in cut (none: no rule at all), as `dynago fault
// partition` and `dynago fault heal` do. It replaces every rule: a chaos
// cluster runs with no other injected fault.
func setCuts(ctx context.Context, hc *http.Client, addr string, cut []string) error {
	if len(cut) == 0 {
		_, err := apiCall(ctx, hc, http.MethodDelete, addr, "/admin/faults", nil, nil)
		return err
	}
	_, err := apiCall(ctx, hc, http.MethodPut, addr, "/admin/faults", fault.Rules{Cut: cut}, nil)
	return err
}
