package sim

import (
	"fmt"

	"github.com/dynago/dynago/ring"
)

// SetDefaults changes node via's default R and W (zero keeps one), as
// PUT /admin/defaults does on a daemon: that node only, from its next
// request on, until it restarts (a restarted node boots with Config's R
// and W again, as a daemon with its --r and --w).
func (c *Cluster) SetDefaults(via ring.NodeID, r, w int) error {
	sn := c.nodes[via]
	if sn == nil || !sn.up {
		return fmt.Errorf("sim: %s is down", via)
	}
	if err := sn.core.SetDefaults(r, w); err != nil {
		return err
	}
	_, r, w = sn.core.Defaults()
	c.notef("%s default quorums R=%d W=%d", via, r, w)
	return nil
}
