package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestFaultHealTriesEveryNode: with one node unreachable, heal still
// clears the rules of every other node, names the one it could not reach,
// and fails. The cluster is asked through the first address that answers.
func TestFaultHealTriesEveryNode(t *testing.T) {
	// An address nothing listens on: a node that is down.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()

	var mu sync.Mutex
	healed := map[string]bool{}
	nodes := map[string]string{"n3": down}
	var srvs []*httptest.Server
	for _, id := range []string{"n1", "n2", "n4"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.URL.Path == "/admin/faults" && r.Method == http.MethodPut:
				mu.Lock()
				healed[id] = true
				mu.Unlock()
				fmt.Fprint(w, `{}`)
			case r.URL.Path == "/cluster":
				var cl struct {
					Nodes []map[string]string `json:"nodes"`
				}
				mu.Lock()
				for nid, addr := range nodes {
					cl.Nodes = append(cl.Nodes, map[string]string{"id": nid, "http_addr": addr})
				}
				mu.Unlock()
				_ = json.NewEncoder(w).Encode(cl)
			default:
				http.NotFound(w, r)
			}
		}))
		defer srv.Close()
		srvs = append(srvs, srv)
		mu.Lock()
		nodes[id] = srv.Listener.Addr().String()
		mu.Unlock()
	}
	out, err := run(t, "", "fault", "heal", "--addr", down+","+srvs[0].Listener.Addr().String())
	if err == nil || !strings.Contains(err.Error(), "n3") {
		t.Fatalf("heal with n3 down: err %v, want one naming n3", err)
	}
	for _, id := range []string{"n1", "n2", "n4"} {
		if !healed[id] {
			t.Errorf("%s was not healed (output %q)", id, out)
		}
		if !strings.Contains(out, id+": cut []") {
			t.Errorf("output %q does not report %s", out, id)
		}
	}
}
