// Package cluster owns dynago's versioned cluster state: the ring's owner
// table, the pending owner table while partitions move, the staged leaves
// waiting for a commit, and the progress of the handoffs of a transition.
// Every node persists it and gossips it; the highest version wins.
//
// Ownership changes only by an operator's commit, and only one transition
// runs at a time. The node that committed it (the claimant) is the only
// node that changes the state during the transition: it records each
// completed handoff and switches the ring when all are done. That single
// writer is what makes "highest version wins" gossip safe: two nodes never
// race to produce the same version with different contents except by
// operator error (two commits at once), and then one wins and the other's
// commit visibly did not happen.
//
// The package is pure: no I/O, no clocks.
package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/dynago/dynago/ring"
)

// ErrCorrupt reports a state that does not decode or is inconsistent.
var ErrCorrupt = errors.New("cluster: corrupt state")

// Handoff names one data transfer of a transition: the data of Partition
// moving to To, which enters its preference list.
type Handoff struct {
	Partition int         `json:"p"`
	To        ring.NodeID `json:"to"`
}

// State is the cluster state. It is a value: methods return modified copies.
type State struct {
	Version    uint64        `json:"version"`
	Partitions int           `json:"partitions"`
	N          int           `json:"n"`
	Owners     []ring.NodeID `json:"owners"`
	// Next is the owner table the cluster is moving to; nil when no
	// transition runs.
	Next []ring.NodeID `json:"next,omitempty"`
	// Claimant committed the running transition and tracks it.
	Claimant ring.NodeID `json:"claimant,omitempty"`
	// Done lists the handoffs of the running transition already complete.
	Done []Handoff `json:"done,omitempty"`
	// Leaving lists nodes staged to leave at the next commit.
	Leaving []ring.NodeID `json:"leaving,omitempty"`
}

// Initial returns the version-1 state of a new cluster of nodes.
func Initial(partitions, n int, nodes []ring.NodeID) (State, error) {
	r, err := ring.New(ring.Config{Partitions: partitions, N: n}, nodes)
	if err != nil {
		return State{}, err
	}
	return State{Version: 1, Partitions: partitions, N: n, Owners: r.Owners()}, nil
}

// Ring returns the ring requests are routed by.
func (s State) Ring() (*ring.Ring, error) {
	return ring.FromOwners(ring.Config{Partitions: s.Partitions, N: s.N}, s.Version, s.Owners)
}

// NextRing returns the ring being moved to, or nil when none is.
func (s State) NextRing() (*ring.Ring, error) {
	if s.Next == nil {
		return nil, nil
	}
	return ring.FromOwners(ring.Config{Partitions: s.Partitions, N: s.N}, s.Version, s.Next)
}

// InTransition reports whether partitions are moving.
func (s State) InTransition() bool { return s.Next != nil }

// IsDone reports whether a handoff of the running transition is complete.
func (s State) IsDone(h Handoff) bool { return slices.Contains(s.Done, h) }

// Clone returns a deep copy.
func (s State) Clone() State {
	s.Owners = slices.Clone(s.Owners)
	s.Next = slices.Clone(s.Next)
	s.Done = slices.Clone(s.Done)
	s.Leaving = slices.Clone(s.Leaving)
	return s
}

// Encode returns the state's gossip and disk form (JSON: small, and
// readable when an operator needs to look).
func Encode(s State) []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic("cluster: encoding a state cannot fail: " + err.Error())
	}
	return b
}

// Decode parses and validates a state.
func Decode(b []byte) (State, error) {
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if err := s.Validate(); err != nil {
		return State{}, err
	}
	return s, nil
}

// Validate checks that the state's tables are usable.
func (s State) Validate() error {
	if s.Version == 0 {
		return fmt.Errorf("%w: version 0", ErrCorrupt)
	}
	if _, err := s.Ring(); err != nil {
		return fmt.Errorf("%w: owners: %v", ErrCorrupt, err)
	}
	if _, err := s.NextRing(); err != nil {
		return fmt.Errorf("%w: next: %v", ErrCorrupt, err)
	}
	if s.Next != nil && s.Claimant == "" {
		return fmt.Errorf("%w: transition without a claimant", ErrCorrupt)
	}
	return nil
}
