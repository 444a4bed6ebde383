package server

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dynago/dynago/ring"
)

// dynago_hints_held has a series per other member, 0 when nothing is held
// for it, and one for a primary that left the ring while hints for it
// remain; never one for the node itself.
func TestHintsHeldPerPeer(t *testing.T) {
	held := map[ring.NodeID]int{"n2": 3, "gone": 1}
	c := hintsCollector{
		self:    "n1",
		held:    func() map[ring.NodeID]int { return held },
		members: func() []ring.NodeID { return []ring.NodeID{"n1", "n2", "n3"} },
	}
	want := `# HELP dynago_hints_held Hints this node holds for other nodes, by the primary they are for (peer); sum them for the total.
# TYPE dynago_hints_held gauge
dynago_hints_held{peer="gone"} 1
dynago_hints_held{peer="n2"} 3
dynago_hints_held{peer="n3"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	held = nil // a node that holds nothing still exports its peers' zeros
	if n := testutil.CollectAndCount(c); n != 2 {
		t.Fatalf("%d series with no hints held, want 2 (n2, n3)", n)
	}
}
