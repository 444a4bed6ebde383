// Package chaos runs a Jepsen-style set workload against a real dynago
// cluster while a nemesis kills, pauses, wipes and partitions its nodes,
// then heals everything and checks that no acknowledged element was lost.
//
// The cluster is reached only through the Cluster interface, so the same
// workload and checker run against local processes (dynago chaos) and
// against containers cut with docker network disconnect (deploy tests).
package chaos

import (
	"context"
	"errors"
)

// ErrUnsupported is returned by a Cluster that cannot perform a nemesis
// action (for example wiping a container's volume); the nemesis then picks
// another action.
var ErrUnsupported = errors.New("chaos: action not supported by this cluster")

// Cluster is what the workload and the nemesis need from a running cluster.
// Node names are the dynago node IDs ("n1", ...). Every method must be safe
// for concurrent use.
type Cluster interface {
	// Nodes lists the node IDs.
	Nodes() []string
	// HTTPAddr is the host:port at which a client on this machine reaches
	// the node's HTTP API.
	HTTPAddr(id string) string
	// Kill ends the node abruptly (SIGKILL); its data stays.
	Kill(ctx context.Context, id string) error
	// Start starts a killed node again on its data and returns once it
	// answers /healthz (or ctx ends).
	Start(ctx context.Context, id string) error
	// Pause freezes the node (SIGSTOP, docker pause); Resume undoes it.
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
	// Wipe kills the node, deletes its data directory and starts it again
	// empty (it comes back with a new epoch).
	Wipe(ctx context.Context, id string) error
	// Partition cuts every link between the two groups, both ways.
	Partition(ctx context.Context, a, b []string) error
	// Heal removes every cut, resumes every paused node and starts every
	// stopped one. It tries every node even when some fail, and returns
	// the errors joined.
	Heal(ctx context.Context) error
}
