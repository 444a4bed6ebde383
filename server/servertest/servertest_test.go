package servertest_test

import (
	"strings"
	"testing"

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/server"
	"github.com/dynago/dynago/server/servertest"
)

// Two nodes started by StartCluster form one cluster: a write through n1
// is read through n2.
func TestStartClusterFormsOneCluster(t *testing.T) {
	srvs := servertest.StartCluster(t, 2, func(c *server.Config) { c.Preset = "lab" })
	if len(srvs) != 2 || srvs[0].NodeID() != "n1" || srvs[1].NodeID() != "n2" {
		t.Fatalf("StartCluster(2) started %d nodes", len(srvs))
	}
	addrs := servertest.HTTPAddrs(srvs)
	for _, a := range addrs {
		if !strings.HasPrefix(a, "127.0.0.1:") {
			t.Fatalf("HTTP address %q is not on loopback", a)
		}
	}
	put := srvs[0].Do(t.Context(), node.Request{Op: node.OpPut, Key: []byte("k"), Value: []byte("v")})
	if put.Code != node.CodeOK {
		t.Fatalf("put via n1: %s %s", put.Code, put.Err)
	}
	get := srvs[1].Do(t.Context(), node.Request{Op: node.OpGet, Key: []byte("k")})
	if get.Code != node.CodeOK || len(get.Siblings) != 1 || string(get.Siblings[0].Value) != "v" {
		t.Fatalf("get via n2: %s %v, want the value written via n1", get.Code, get.Siblings)
	}
}
