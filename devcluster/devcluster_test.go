package devcluster

import (
	"strings"
	"testing"

	"github.com/dynago/dynago/internal/ports"
)

// A base port's ranges must stay below the kernel's ephemeral ports, or an
// outgoing connection elsewhere on the machine can take a node's port
// between the check and the bind.
func TestFreePortBaseStaysBelowEphemeralPorts(t *testing.T) {
	eph := ports.EphemeralStart()
	for range 20 {
		base, err := FreePortBase(5)
		if err != nil {
			t.Fatal(err)
		}
		if last := base + 200 + 4; last >= eph {
			t.Fatalf("FreePortBase(5) = %d: gossip port %d is in the ephemeral range (from %d)", base, last, eph)
		}
	}
}

// Overlapping or out-of-range port ranges are refused before any node
// starts, naming the flags; the defaults and disjoint choices pass.
func TestPortRangesMustNotOverlap(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		bad  string // a flag the error must name; "" = accepted
	}{
		{"defaults", Config{Binary: "x", Nodes: 5}, ""},
		{"resp beside", Config{Binary: "x", Nodes: 3, HTTPBasePort: 27101, RESPBasePort: 27401}, ""},
		{"resp on gossip", Config{Binary: "x", Nodes: 3, HTTPBasePort: 27101, RESPBasePort: 27301}, "--resp-base-port"},
		{"rpc overlaps http", Config{Binary: "x", Nodes: 5, HTTPBasePort: 9101, RPCBasePort: 9103}, "--rpc-base-port"},
		{"past 65535", Config{Binary: "x", Nodes: 5, HTTPBasePort: 65400}, "--gossip-base-port"},
	} {
		err := tc.cfg.defaults()
		switch {
		case tc.bad == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)):
			t.Errorf("%s: %v, want an error naming %s", tc.name, err, tc.bad)
		}
	}
}
