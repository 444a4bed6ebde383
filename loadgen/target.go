package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/dynago/dynago/client"
)

// ClientOptions tune a ClientTarget.
type ClientOptions struct {
	// Routing sends each request straight to a node of the key's
	// preference list, learned from the cluster's ring (--route client),
	// instead of entering at a random node (--route any).
	Routing bool
	R, W    int           // per-request quorums, 1..N; 0 = cluster default
	Timeout time.Duration // coordination timeout per request; 0 = node default
	// ReadBeforeWrite makes puts and deletes read the key first and write
	// with the context read, as an application resolving siblings would;
	// the latency of such a put or delete includes its read. Off, they are
	// blind writes, which leave every value already stored as a sibling.
	ReadBeforeWrite bool
	// MaxConns is the number of idle connections kept per node; set it to
	// the number of requests in flight, or connections churn.
	MaxConns int
	// Extra are further options of every client, applied after the
	// target's own: client.WithTLS and client.WithToken for a secure
	// cluster.
	Extra []client.Option
}

// ClientTarget runs operations through package client, each entering the
// cluster at a node drawn at random among the addresses ("route any"): the
// node coordinates or forwards, as for any application that does not know
// the ring.
type ClientTarget struct {
	nodes []*client.Client
	o     ClientOptions
}

// NewClientTarget returns a ClientTarget over the nodes at addrs.
func NewClientTarget(addrs []string, o ClientOptions) (*ClientTarget, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%w: %w", ErrConfig, client.ErrNoAddress)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 0
	tr.MaxIdleConnsPerHost = max(o.MaxConns, 2)
	hc := &http.Client{Transport: tr}
	t := &ClientTarget{o: o}
	if o.Routing {
		// One ring-aware client: it sends each request to the key's
		// preference list itself (Dynamo's client-driven coordination).
		c, err := client.New(addrs, append([]client.Option{client.WithHTTPClient(hc), client.WithRouting()}, o.Extra...)...)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		t.nodes = []*client.Client{c}
		return t, nil
	}
	for _, a := range addrs {
		// One client per node, so that this target, not the client's own
		// rotation, chooses the entry node. A failed node is therefore not
		// skipped: its requests are errors, which is what a benchmark
		// should show.
		c, err := client.New([]string{a}, append([]client.Option{client.WithHTTPClient(hc)}, o.Extra...)...)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		t.nodes = append(t.nodes, c)
	}
	return t, nil
}

// Do implements Target.
func (t *ClientTarget) Do(ctx context.Context, op Op, key string, value []byte) error {
	// The shared source of math/rand/v2 is safe for concurrent use and
	// the entry node need not be reproducible.
	c := t.nodes[rand.IntN(len(t.nodes))]
	get := &client.GetOptions{R: t.o.R, Timeout: t.o.Timeout}
	put := &client.PutOptions{W: t.o.W, Timeout: t.o.Timeout}
	if op != OpGet && t.o.ReadBeforeWrite {
		v, err := c.Get(ctx, key, get)
		if err != nil && !errors.Is(err, client.ErrNotFound) {
			return err
		}
		// On not-found, v.Context is the tombstone's, when there is one.
		put.Context = v.Context
	}
	switch op {
	case OpGet:
		_, err := c.Get(ctx, key, get)
		if errors.Is(err, client.ErrNotFound) {
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		}
		return err
	case OpPut:
		_, err := c.Put(ctx, key, value, put)
		return err
	case OpDelete:
		return c.Delete(ctx, key, put)
	}
	return fmt.Errorf("%w: unknown operation %v", ErrConfig, op)
}
