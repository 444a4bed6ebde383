package client

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynago/dynago/api"
	"github.com/dynago/dynago/ring"
)

// downBackoff is how long a node that failed a request (a transport error,
// not an error answer) is passed over by routing, and how long routing
// waits before fetching a ring again after a failed fetch. Long enough that
// a dead node costs one failed attempt per interval rather than one per
// request, short enough that a restarted node gets its traffic back within
// a couple of seconds.
const downBackoff = 2 * time.Second

// ErrNoRoute reports that a routing client has no usable ring: no node
// answered /ring with one it can rebuild. Requests then rotate over the
// given addresses as without WithRouting; RouteOf returns the cause.
var ErrNoRoute = errors.New("client: no routing table")

// WithRouting makes the Client coordinate requests itself, as Dynamo's
// client-driven coordination does (SOSP 2007, §6.4): it reads the ring from
// GET /ring (lazily, on its first key request) and sends each put, get and
// delete straight to the first node of the key's preference list that is
// not marked down, so a write reaches its coordinator without a forwarding
// hop and a read is served by a node holding a copy. A node is marked down
// for two seconds after a transport error, or when the ring reports it
// dead; requests then go to the next preference-list node, the fallbacks,
// and finally the given addresses. A /kv/ answer carrying a newer ring
// version (header X-Dynago-Ring-Version) makes the client fetch the ring
// again in the background.
//
// Routing needs the nodes' advertised HTTP addresses (the http_addr of
// /cluster) to be reachable from the client; a node advertising none, or a
// wildcard address such as 0.0.0.0:9101, is reached through the given
// addresses instead. Routing never changes the retry rules: a write is
// sent to another node only when its connection could not be established.
func WithRouting() Option {
	return func(c *Client) { c.router = &router{down: make(map[string]time.Time)} }
}

// router is the routing state of a Client. The routing table itself is
// immutable and swapped atomically, so the request path reads it without a
// lock.
type router struct {
	table      atomic.Pointer[routeTable]
	refreshing atomic.Bool  // a background refresh is running (single flight)
	refreshAt  atomic.Int64 // unix ns before which no background refresh starts, after a failed one

	mu       sync.Mutex
	fetching chan struct{}        // closed when the running first fetch ends; nil when none runs
	retryAt  time.Time            // no first fetch before this, after one failed
	lastErr  error                // why the last fetch failed; reported by RouteOf
	down     map[string]time.Time // base URL -> when its backoff ends
}

// routeTable is one ring and the base URL of each node that has a usable
// HTTP address.
type routeTable struct {
	ring  *ring.Ring
	bases map[ring.NodeID]string
	dead  []string // bases of nodes the ring's source reported dead
}

// RouteOf returns the address ("host:port") that the next request for key
// would be sent to first. Without WithRouting that is the next address in
// rotation. With it, RouteOf fetches the ring if the client has none yet
// (bounded by the client's timeout) and returns an error wrapping
// ErrNoRoute when there is none to be had.
func (c *Client) RouteOf(key string) (string, error) {
	if c.router == nil {
		return hostOf(c.bases[c.next.Load()%uint64(len(c.bases))]), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmp.Or(c.timeout, DefaultTimeout))
	defer cancel()
	t := c.routes(ctx)
	if t == nil {
		c.router.mu.Lock()
		err := c.router.lastErr
		c.router.mu.Unlock()
		if err == nil {
			err = ctx.Err()
		}
		return "", fmt.Errorf("%w: %w", ErrNoRoute, err)
	}
	return hostOf(c.candidates(t, []byte(key), c.next.Load())[0]), nil
}

func hostOf(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base // bases are parsed by New; cannot happen
	}
	return u.Host
}

// order returns the bases to try for cl, in turn: the key's preference
// list and fallbacks when routing has a table, else every given address
// starting at the next one in rotation.
func (c *Client) order(ctx context.Context, cl call) []string {
	start := c.next.Add(1) - 1
	if c.router != nil && cl.keyed {
		if t := c.routes(ctx); t != nil {
			return c.candidates(t, []byte(cl.key), start)
		}
	}
	return c.rotation(start)
}

func (c *Client) rotation(start uint64) []string {
	if len(c.bases) == 1 {
		return c.bases[:1:1] // the one node; callers only read the list
	}
	n := uint64(len(c.bases))
	out := make([]string, n)
	for i := range n {
		out[i] = c.bases[(start+i)%n]
	}
	return out
}

// candidates lists where a request for key goes: the nodes of a walk from
// its partition (preference list, then fallbacks), then the given
// addresses in rotation, each once; nodes marked down come last rather than
// not at all, since trying a node that may have recovered beats failing.
func (c *Client) candidates(t *routeTable, key []byte, start uint64) []string {
	walk := t.ring.WalkOrder(t.ring.PartitionOf(key))
	all := make([]string, 0, len(walk)+len(c.bases))
	for _, id := range walk {
		if b := t.bases[id]; b != "" && !slices.Contains(all, b) {
			all = append(all, b)
		}
	}
	for _, b := range c.rotation(start) {
		if !slices.Contains(all, b) {
			all = append(all, b)
		}
	}
	now := time.Now()
	rt := c.router
	rt.mu.Lock()
	defer rt.mu.Unlock()
	up := make([]string, 0, len(all))
	var down []string
	for _, b := range all {
		if until, ok := rt.down[b]; ok && now.Before(until) {
			down = append(down, b)
		} else {
			up = append(up, b)
		}
	}
	return append(up, down...)
}

// markDown passes over base for downBackoff after a transport error.
func (c *Client) markDown(base string) {
	if c.router == nil {
		return
	}
	c.router.mu.Lock()
	c.router.down[base] = time.Now().Add(downBackoff)
	c.router.mu.Unlock()
}

// routes returns the routing table, fetching the first one if there is
// none. Concurrent first requests wait for one fetch rather than each
// fetching; after a failed fetch, requests rotate over the given addresses
// for downBackoff before the next attempt, so that a cluster without /ring
// does not cost every request a failed fetch. nil means no table.
func (c *Client) routes(ctx context.Context) *routeTable {
	rt := c.router
	if t := rt.table.Load(); t != nil {
		return t
	}
	rt.mu.Lock()
	if t := rt.table.Load(); t != nil {
		rt.mu.Unlock()
		return t
	}
	if w := rt.fetching; w != nil {
		rt.mu.Unlock()
		select {
		case <-w:
			return rt.table.Load()
		case <-ctx.Done():
			return nil
		}
	}
	if time.Now().Before(rt.retryAt) {
		rt.mu.Unlock()
		return nil
	}
	w := make(chan struct{})
	rt.fetching = w
	rt.mu.Unlock()

	t, err := c.fetchRing(ctx, "")
	if err == nil {
		c.install(t)
	}
	rt.mu.Lock()
	rt.fetching = nil
	if err != nil {
		rt.lastErr = err
		if ctx.Err() == nil {
			// The cluster's failure, not the caller's deadline: spare
			// the next requests the same failed fetch.
			rt.retryAt = time.Now().Add(downBackoff)
		}
	}
	rt.mu.Unlock()
	close(w)
	return rt.table.Load()
}

// install makes t the routing table unless the client already has the
// same or a newer ring: answers from nodes that have not heard of a change
// yet must not undo it.
func (c *Client) install(t *routeTable) bool {
	rt := c.router
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if cur := rt.table.Load(); cur != nil && cur.ring.Version() >= t.ring.Version() {
		return false
	}
	until := time.Now().Add(downBackoff)
	for _, b := range t.dead {
		// For one backoff only: the status is a snapshot, and the
		// ring will not be fetched again until its version changes.
		rt.down[b] = until
	}
	rt.table.Store(t)
	rt.lastErr = nil
	return true
}

// observe starts a background refresh of the ring when an answer from base
// reports a newer ring version than the client's.
func (c *Client) observe(base string, r response) {
	rt := c.router
	if rt == nil {
		return
	}
	h := r.header.Get(api.RingVersionHeader)
	if h == "" {
		return
	}
	v, err := strconv.ParseUint(h, 10, 64)
	cur := rt.table.Load()
	// Without a table yet, the next request's own fetch takes care of it.
	if err != nil || cur == nil || v <= cur.ring.Version() {
		return
	}
	if time.Now().UnixNano() < rt.refreshAt.Load() || !rt.refreshing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer rt.refreshing.Store(false)
		if rt.table.Load().ring.Version() >= v {
			return // a refresh that ended after cur was read brought it
		}
		ctx, cancel := context.WithTimeout(context.Background(), cmp.Or(c.timeout, DefaultTimeout))
		defer cancel()
		// Ask the node that reported the new version first: it has it.
		t, err := c.fetchRing(ctx, base)
		if err != nil || (!c.install(t) && t.ring.Version() < v) {
			if err == nil {
				err = fmt.Errorf("client: ring version %d announced, %d fetched", v, t.ring.Version())
			}
			rt.mu.Lock()
			rt.lastErr = err
			rt.mu.Unlock()
			// Do not let every answer start a fetch while this keeps failing.
			rt.refreshAt.Store(time.Now().Add(downBackoff).UnixNano())
		}
	}()
}

// fetchRing reads GET /ring from first (if given), then from the given
// addresses in turn, until one answers with a ring it can rebuild.
func (c *Client) fetchRing(ctx context.Context, first string) (*routeTable, error) {
	bases := c.rotation(c.next.Load())
	if first != "" {
		bases = slices.Insert(slices.DeleteFunc(bases, func(b string) bool { return b == first }), 0, first)
	}
	cl := call{method: http.MethodGet, path: "/ring", read: true}
	var err error
	for _, base := range bases {
		var r response
		r, err = c.once(ctx, base, cl)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			c.markDown(base)
			continue
		}
		if r.status != http.StatusOK {
			// A node that has not joined yet, or one older than /ring.
			err = r.err("get")
			continue
		}
		var t *routeTable
		if t, err = c.routeTable(base, r.body); err == nil {
			return t, nil
		}
	}
	return nil, err
}

// routeTable rebuilds the ring of a /ring answer and resolves each node's
// HTTP address to a base URL, with the scheme of the base that answered.
func (c *Client) routeTable(from string, body []byte) (*routeTable, error) {
	var a api.Ring
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, fmt.Errorf("client: decoding the answer of GET /ring: %w", err)
	}
	// api.RingHash is the only key hash routing can reproduce
	// (ring.DefaultHash).
	if a.Hash != api.RingHash {
		return nil, fmt.Errorf("client: ring hash %q: only %q can be routed", a.Hash, api.RingHash)
	}
	rg, err := ring.FromOwners(ring.Config{Partitions: a.Partitions, N: a.N}, a.Version, a.Owners)
	if err != nil {
		return nil, fmt.Errorf("client: the ring of GET /ring: %w", err)
	}
	scheme := "http"
	if u, err := url.Parse(from); err == nil {
		scheme = u.Scheme
	}
	t := &routeTable{ring: rg, bases: make(map[ring.NodeID]string, len(a.Nodes))}
	for _, n := range a.Nodes {
		b := c.nodeBase(scheme, n.HTTPAddr)
		if b == "" {
			continue
		}
		t.bases[n.ID] = b
		if n.Status == "dead" {
			t.dead = append(t.dead, b)
		}
	}
	return t, nil
}

// nodeBase returns the base URL of a node advertising addr: the given
// address for that host:port if there is one (keeping its path prefix),
// else scheme://addr. It is "" for an address the client cannot dial as
// such: none, or a wildcard (0.0.0.0, [::], empty host) that means
// "every interface" on the node's side.
func (c *Client) nodeBase(scheme, addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || host == "" {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return ""
	}
	for _, b := range c.bases {
		if hostOf(b) == addr {
			return b
		}
	}
	return scheme + "://" + addr
}
