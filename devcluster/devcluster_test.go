package devcluster

import "testing"

// A base port's ranges must stay below the kernel's ephemeral ports, or an
// outgoing connection elsewhere on the machine can take a node's port
// between the check and the bind.
func TestFreePortBaseStaysBelowEphemeralPorts(t *testing.T) {
	eph := ephemeralStart()
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
