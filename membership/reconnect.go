package membership

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

// retry is the reconnect loop's schedule for one dead member or one seed.
type retry struct {
	since    time.Time // dead (or tracked) since; the reap timeout counts from here
	next     time.Time // no attempt before this
	tries    int       // attempts made; the wait doubles with each
	busy     bool      // an attempt is under way
	reaped   bool      // given up after ReapTimeout
	followUp bool      // the one quick retry after an answered attempt was used
}

// seedRetry is a seed address given to Join and its schedule.
type seedRetry struct {
	addr string
	retry
}

// Stats are counters of this member's healing and state validation.
type Stats struct {
	// ReconnectAttempts counts memberlist joins the reconnect loop made
	// to members marked dead and to seeds; ReconnectSuccesses those that
	// reached the other side.
	ReconnectAttempts, ReconnectSuccesses uint64
	// StatesRejected counts received cluster states that were not
	// adopted because they did not decode or failed validation.
	StatesRejected uint64
}

// Stats returns the counters.
func (m *Membership) Stats() Stats {
	return Stats{
		ReconnectAttempts:  m.stats.reconnectAttempts.Load(),
		ReconnectSuccesses: m.stats.reconnectSuccesses.Load(),
		StatesRejected:     m.stats.statesRejected.Load(),
	}
}

// jitter spreads a wait over [d/2, d), so that the members of one side of a
// healed partition do not all dial the other side in the same instant.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}

// backoff is the wait after the tries-th attempt: Interval doubled per
// attempt, capped at MaxInterval.
func (m *Membership) backoff(tries int) time.Duration {
	d := m.rc.Interval
	for range min(tries, 32) {
		if d >= m.rc.MaxInterval {
			break
		}
		d *= 2
	}
	return min(d, m.rc.MaxInterval)
}

func (m *Membership) firstRetry(now time.Time) retry {
	return retry{since: now, next: now.Add(jitter(m.rc.Interval))}
}

// rememberSeeds records the seeds for the reconnect loop; a seed already
// known keeps its schedule.
func (m *Membership) rememberSeeds(seeds []string) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range seeds {
		if !slices.ContainsFunc(m.seeds, func(s *seedRetry) bool { return s.addr == a }) {
			m.seeds = append(m.seeds, &seedRetry{addr: a, retry: m.firstRetry(now)})
		}
	}
}

// reconnectLoop heals what memberlist does not: memberlist never contacts
// a member again once it has declared it dead (it stops probing it, and
// stops gossiping to it after GossipToTheDeadTime), so two sides of a
// partition that outlasted the dead timeout would stay apart until some
// node restarts (hashicorp/memberlist#222). This loop tries each dead
// member again with memberlist's Join (a TCP push/pull, through the same
// possibly fault-wrapped transport as all gossip), backing off from
// Interval to MaxInterval with jitter, until ReapTimeout. An answered Join
// is retried once more after Interval: the first exchange only makes each
// side learn that the other had declared it dead, so each refutes with a
// higher incarnation, and it is the second that carries those and marks
// both sides alive to each other. From then memberlist's own probes and
// gossip spread the news to the rest.
//
// Seeds given to Join are tried on the same schedule while this member has
// a dead member to heal or sees no one alive, unless the seed's address is
// a known member's (that member has its own schedule).
func (m *Membership) reconnectLoop() {
	defer m.wg.Done()
	tick := time.NewTicker(max(m.rc.Interval/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-tick.C:
		}
		m.reconnectRound(time.Now())
	}
}

// reconnectParallel bounds joins under way at once: one unreachable
// address can hold a join for the TCP timeout, and many dead members must
// not make this member dial all of them at once.
const reconnectParallel = 8

// reconnectRound starts the attempts that are due. It runs on the loop's
// goroutine, which holds a count in wg, so the attempts it starts are
// waited for by Shutdown.
func (m *Membership) reconnectRound(now time.Time) {
	type job struct {
		r        *retry
		id       ring.NodeID // empty for a seed
		joinAddr string
	}
	var jobs []job
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return
	}
	healing, othersAlive := false, false
	known := map[string]bool{m.addr: true}
	for _, e := range m.members {
		known[e.Addr] = true
		if e.ID == m.cfg.ID {
			continue
		}
		if e.Status != node.Dead {
			othersAlive = true
			continue
		}
		if e.left || e.retry.reaped {
			continue
		}
		if now.Sub(e.retry.since) > m.rc.ReapTimeout {
			e.retry.reaped = true
			m.log.Info("giving up reconnecting to a dead member", "member", string(e.ID), "addr", e.Addr, "dead_for", now.Sub(e.retry.since).Round(time.Second))
			continue
		}
		healing = true
		if e.retry.busy || now.Before(e.retry.next) || m.reconnecting+len(jobs) >= reconnectParallel {
			continue
		}
		// name/addr hands the node's name to the transport with the
		// address, as memberlist does for its own probes (Serf joins
		// failed members the same way).
		jobs = append(jobs, job{r: &e.retry, id: e.ID, joinAddr: string(e.ID) + "/" + e.Addr})
	}
	if healing || !othersAlive {
		for _, s := range m.seeds {
			if known[s.addr] || s.busy || now.Before(s.next) || m.reconnecting+len(jobs) >= reconnectParallel {
				continue
			}
			jobs = append(jobs, job{r: &s.retry, joinAddr: s.addr})
		}
	}
	for _, j := range jobs {
		j.r.busy = true
	}
	m.reconnecting += len(jobs)
	m.mu.Unlock()

	for _, j := range jobs {
		m.wg.Go(func() {
			m.stats.reconnectAttempts.Add(1)
			n, err := m.ml.Join([]string{j.joinAddr})
			answered := err == nil && n > 0
			if answered {
				m.stats.reconnectSuccesses.Add(1)
				m.log.Info("reconnected to gossip peer", "peer", j.joinAddr)
			} else {
				m.log.Debug("reconnect attempt failed", "peer", j.joinAddr, "err", err)
			}
			done := time.Now()
			m.mu.Lock()
			defer m.mu.Unlock()
			m.reconnecting--
			// The entry may have come back alive meanwhile (observe
			// cleared its retry); then there is nothing to schedule.
			if j.id != "" {
				if e, ok := m.members[j.id]; !ok || &e.retry != j.r || e.Status != node.Dead {
					return
				}
			}
			r := j.r
			r.busy = false
			r.tries++
			wait := m.backoff(r.tries)
			if answered && !r.followUp {
				r.followUp = true
				wait = m.rc.Interval
			}
			r.next = done.Add(jitter(wait))
		})
	}
}
