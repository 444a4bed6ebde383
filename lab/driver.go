package lab

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
	"github.com/dynago/dynago/sim"
)

// driver runs a workload on a simulated cluster: actions (a client's next
// request, a crash) scheduled at virtual times on the cluster's event
// queue (sim.Cluster.At), interleaved with its own events.
type driver struct {
	c    *sim.Cluster
	rng  *rand.Rand
	open int // requests submitted and not yet answered
}

func newDriver(c *sim.Cluster, seed uint64) *driver {
	return &driver{c: c, rng: rand.New(rand.NewPCG(seed, seed^0x1ab0_7a7e_0000_0001))}
}

// runTo runs the cluster and the actions until virtual time end.
func (d *driver) runTo(end time.Duration) {
	if left := end - d.c.Now(); left > 0 {
		d.c.RunFor(left)
	}
}

// errUnanswered reports requests still open after drain's limit: the
// core owes every request a reply, so this is a bug, not a measurement.
var errUnanswered = errors.New("lab: simulated requests left unanswered")

// drain runs until every submitted request is answered.
func (d *driver) drain(limit time.Duration) error {
	if err := d.c.RunUntil(func() bool { return d.open == 0 }, limit); err != nil {
		return errUnanswered
	}
	return nil
}

// submit sends req to node via and calls done with the reply and its
// latency in virtual time.
func (d *driver) submit(via ring.NodeID, req node.Request, done func(node.Reply, time.Duration)) {
	start := d.c.Now()
	d.open++
	d.c.Submit(via, req, func(r node.Reply) {
		d.open--
		done(r, d.c.Now()-start)
	})
}

// preferenceList returns the key's preference list by the cluster's ring.
func (d *driver) preferenceList(key []byte) []ring.NodeID {
	rg := d.c.Ring()
	return rg.PreferenceList(rg.PartitionOf(key))
}
