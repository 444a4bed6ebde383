package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// RESPTarget runs operations through the nodes' RESP front ends
// (--resp-addr) with go-redis, each entering at a node drawn at random,
// as ClientTarget does over HTTP. It uses dynago's own commands so that
// the workload means what it means over HTTP: a get is DGET (every
// sibling, per-request R), a put DSET and a delete DDEL, blind unless
// ReadBeforeWrite, which sends the context a DGET returned. Routing
// (--route client) is HTTP's only: the ring is read over HTTP.
type RESPTarget struct {
	nodes []*redis.Client
	o     ClientOptions
}

// NewRESPTarget returns a RESPTarget over the RESP addresses addrs (host:port).
func NewRESPTarget(addrs []string, o ClientOptions) (*RESPTarget, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%w: no RESP address", ErrConfig)
	}
	if o.Routing {
		return nil, fmt.Errorf("%w: client routing needs the HTTP API's ring; use --route any with RESP", ErrConfig)
	}
	t := &RESPTarget{o: o}
	for _, a := range addrs {
		t.nodes = append(t.nodes, redis.NewClient(&redis.Options{
			Addr: a,
			// Every request is measured once: a retry would hide an error
			// and count two round trips as one.
			MaxRetries: -1,
			// One connection per request in flight, as the HTTP target's
			// idle pool, so that workers never queue for a connection.
			PoolSize: max(o.MaxConns, 2), MinIdleConns: 0,
			// Server-side timeouts decide; these only stop a hung node.
			ReadTimeout: 70 * time.Second, WriteTimeout: 10 * time.Second,
			// RESP2 at once: dynago answers HELLO 3 with NOPROTO anyway.
			Protocol: 2, DisableIdentity: true,
		}))
	}
	return t, nil
}

// Close closes the connections.
func (t *RESPTarget) Close() error {
	var errs []error
	for _, c := range t.nodes {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// Do implements Target.
func (t *RESPTarget) Do(ctx context.Context, op Op, key string, value []byte) error {
	c := t.nodes[rand.IntN(len(t.nodes))]
	var rctx string
	if op != OpGet && t.o.ReadBeforeWrite {
		vals, err := t.dget(ctx, c, key)
		if err != nil {
			return err
		}
		rctx = vals[0] // on not-found, the tombstone's context when there is one
	}
	switch op {
	case OpGet:
		vals, err := t.dget(ctx, c, key)
		if err != nil {
			return err
		}
		if len(vals) < 2 {
			return fmt.Errorf("%w: %s", ErrNotFound, key)
		}
		return nil
	case OpPut:
		return c.Do(ctx, t.writeArgs("DSET", key, value, rctx)...).Err()
	case OpDelete:
		return c.Do(ctx, t.writeArgs("DDEL", key, nil, rctx)...).Err()
	}
	return fmt.Errorf("%w: unknown operation %v", ErrConfig, op)
}

// dget answers [context, value...].
func (t *RESPTarget) dget(ctx context.Context, c *redis.Client, key string) ([]string, error) {
	args := []any{"DGET", key}
	if t.o.R > 0 {
		args = append(args, "R", strconv.Itoa(t.o.R))
	}
	args = t.timeout(args)
	vals, err := c.Do(ctx, args...).StringSlice()
	if err == nil && len(vals) == 0 {
		err = errors.New("DGET answered an empty array")
	}
	return vals, err
}

func (t *RESPTarget) writeArgs(cmd, key string, value []byte, rctx string) []any {
	args := []any{cmd, key}
	if cmd == "DSET" {
		args = append(args, value)
	}
	if rctx != "" {
		args = append(args, "CONTEXT", rctx)
	}
	if t.o.W > 0 {
		args = append(args, "W", strconv.Itoa(t.o.W))
	}
	return t.timeout(args)
}

func (t *RESPTarget) timeout(args []any) []any {
	if t.o.Timeout > 0 {
		args = append(args, "TIMEOUT", strconv.FormatInt(max(t.o.Timeout.Milliseconds(), 1), 10))
	}
	return args
}
