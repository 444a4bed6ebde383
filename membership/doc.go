// Package membership owns dynago's liveness detection and cluster-state
// gossip in the daemon. It wraps hashicorp/memberlist (SWIM with the
// Lifeguard extensions) and turns what memberlist learns into two streams
// for the daemon: member status changes (Event, mapped to node.Status) and
// newer versions of one opaque cluster-state blob (the daemon puts the
// encoded ring there).
//
// # Liveness
//
// memberlist reports joins, leaves and meta updates through its
// EventDelegate, but it never reports suspicion: the State field of the
// nodes it hands out is never updated (hashicorp/memberlist#266), so polling
// Members() cannot see Suspect. This package derives the three statuses as
// follows:
//
//   - Alive: memberlist reported the node joined (or updated it), or a node
//     this member had marked Suspect answered one of this member's direct pings.
//   - Suspect: this member's own SWIM probe of the node failed (direct,
//     indirect and TCP fallback) and memberlist started its suspicion timer.
//     memberlist offers no hook for that moment, so it is read from the one
//     log line memberlist writes right before it marks the node suspect
//     (suspectLogPrefix; the pinned memberlist version and a test keep this
//     honest). While a node is Suspect, it is pinged directly once per probe
//     interval, and the first answer makes it Alive again.
//   - Dead: memberlist declared the node dead (suspicion timed out) or the
//     node left gracefully; both arrive through NotifyLeave.
//
// Suspect is therefore this member's local view: a member that only heard
// of another's suspicion by gossip shows Alive until its own probe fails or
// the node is declared dead. That is all the daemon needs, since the
// protocol core treats Suspect as reachable and only Dead as down.
//
// Members that are declared dead stay in Members() (as Dead) until they
// come back: which nodes belong to the cluster is the ring's business, not
// the failure detector's.
//
// # Healing
//
// memberlist never contacts a member again once it has declared it dead
// (hashicorp/memberlist#222), so after a partition longer than the dead
// timeout both sides would mark each other dead until a node restarted.
// The reconnect loop (reconnect.go) tries every member marked dead again
// with memberlist's Join, backing off from Reconnect.Interval to
// Reconnect.MaxInterval with jitter, until Reconnect.ReapTimeout (24 h, as
// Serf's reconnect timeout); the seeds given to Join are retried the same
// way while this member has someone to heal or sees no one alive. Members
// that left gracefully announce it with a leave intent and are not
// retried. MaxInterval bounds the time from a heal to both sides seeing
// each other alive: 8 s by default, 2 s in the lab preset.
//
// hashicorp/serf solves the same problem with the same idea (a periodic
// reconnect to failed members, reaped after a timeout) and adds member
// states, tags, user events, queries and a keyring. dynago does not use
// Serf: this package already wraps memberlist with the delegates dynago
// needs (the cluster-state blob, suspicion from the probe log, meta), Serf
// would take those delegates over and put a second state machine and a
// second gossip layer between the daemon and memberlist, and the missing
// piece is one small loop. Unlike Serf, which reconnects to one random
// failed member per 30 s interval cluster-wide, each member here retries
// each dead member on its own capped backoff, so a heal is seen within
// MaxInterval whatever the cluster size; the cost is one refused or
// dropped TCP dial per dead member per MaxInterval on every member.
//
// # Cluster name
//
// Config.ClusterName is memberlist's label: it is on every packet and
// stream, and members drop traffic with another label, so a mistyped seed
// address can never merge two clusters.
//
// # Cluster state
//
// The cluster state is a (version, bytes) pair. States are totally ordered:
// a higher version wins, and equal versions are ordered by comparing the
// bytes, so every member converges on the same state even if two members
// publish different states with one version. A member adopts a remote state
// only when it is strictly newer than its own and valid, and then calls
// OnState. Valid means: version in 1..MaxStateVersion, and accepted by
// Config.ValidateState, which the daemon sets to decode and check the ring.
// Gossip is not authenticated, so any host that can reach the gossip port
// can send a state; validation is what keeps one forged packet from being
// adopted cluster-wide, and the version ceiling is what keeps a forged
// version 2^64-1 from making every later change stale. Rejected states are
// counted (Stats) and logged at Warn.
//
// States travel three ways: in every memberlist push/pull (TCP, on join and
// every push/pull interval), as a gossip broadcast when the encoded state
// fits in one UDP packet (maxBroadcastState), and otherwise as a direct TCP
// message (memberlist's SendReliable) from the member that published it to
// every member it believes alive. Push/pull repairs whatever the other two
// miss, so every live member holds the newest state within about one
// push/pull interval.
//
// # What it must never do
//
// The package must never interpret the state blob or the meaning of a
// status (the daemon decides what a dead node or a new ring means), never
// bind to an address other than the one configured, never call into
// memberlist while holding its own lock (memberlist calls its delegates with
// its own locks held), and never block memberlist's goroutines on the
// daemon: callbacks run on a goroutine of this package.
package membership
