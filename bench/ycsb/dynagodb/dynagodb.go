// Package dynagodb is a go-ycsb (github.com/pingcap/go-ycsb) database
// binding for dynago, over dynago's Go client. Importing it registers the
// database "dynago" with ycsb.RegisterDBCreator.
//
// # Properties
//
//	dynago.addrs   comma-separated host:port HTTP addresses of nodes (default 127.0.0.1:9101)
//	dynago.route   any: enter the cluster at the given nodes in rotation, the entry
//	               node coordinates or forwards; client: send each request to the
//	               key's preference list, learned from the ring (default any)
//	dynago.r       replicas a read waits for, 1..N (default 0: the cluster's R)
//	dynago.w       replicas a write waits for, 1..N (default 0: the cluster's W)
//
// Idle HTTP connections are kept for threadcount requests per node.
//
// # Records
//
// A YCSB record (field name -> bytes) of table T and key K is stored as one
// dynago value under the key "T:K", encoded as described at record.encode:
// a version byte, the field count, then per field in ascending name order
// its name, an 8-byte write stamp and its value, each length-prefixed with
// uvarints. The stamp (the writer's Unix nanoseconds, raised above the
// stamp it replaces) exists for sibling merging only.
//
// # Operations
//
//   - Insert is a blind put of the whole record (all stamps now).
//   - Read gets the key and returns the requested fields (all when the list
//     is empty); fields the record lacks are left out. A missing key is an
//     error wrapping client.ErrNotFound.
//   - Update is a read-modify-write: it reads the record, sets the given
//     fields (stamped now) and puts the result with the context read, so the
//     write supersedes every version read instead of adding a sibling. A
//     missing key is created (with the tombstone's context, if there is one).
//   - Delete reads the key and deletes with the context read. A key already
//     missing is not an error.
//   - Scan is not supported: keys are hashed onto the ring and dynago has no
//     ordered scan, so it returns ErrScanUnsupported and YCSB workload E
//     cannot run.
//
// # Siblings
//
// When a read returns siblings (concurrent writes), they are merged into one
// record: the union of their fields and, for a field several siblings hold,
// the value with the newest stamp (equal stamps: the larger value in byte
// order). The result depends only on the siblings, not on the order the
// node returns them in. Update writes the merged record back with the
// context read, which resolves the siblings.
package dynagodb

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/magiconair/properties"
	"github.com/pingcap/go-ycsb/pkg/prop"
	"github.com/pingcap/go-ycsb/pkg/ycsb"

	"github.com/dynago/dynago/client"
)

// Property names and defaults.
const (
	PropAddrs    = "dynago.addrs"
	PropRoute    = "dynago.route"
	PropR        = "dynago.r"
	PropW        = "dynago.w"
	DefaultAddrs = "127.0.0.1:9101"
	RouteAny     = "any"
	RouteClient  = "client"
)

// ErrScanUnsupported is what Scan returns: dynago has no ordered scan.
var ErrScanUnsupported = errors.New("dynagodb: scan is not supported: dynago hashes keys onto its ring and has no ordered scan (YCSB workload E cannot run)")

// ErrConfig reports invalid properties.
var ErrConfig = errors.New("dynagodb: invalid properties")

func init() {
	ycsb.RegisterDBCreator("dynago", creator{})
}

type creator struct{}

// Create implements ycsb.DBCreator.
func (creator) Create(p *properties.Properties) (ycsb.DB, error) {
	return New(p)
}

// DB is the binding; it implements ycsb.DB and is safe for concurrent use.
type DB struct {
	c    *client.Client
	tr   *http.Transport
	r, w int

	mu        sync.Mutex
	lastStamp uint64 // the largest stamp handed out, so stamps never repeat
}

var _ ycsb.DB = (*DB)(nil)

// New returns a DB configured by p (see the package documentation).
func New(p *properties.Properties) (*DB, error) {
	var addrs []string
	for _, a := range strings.Split(p.GetString(PropAddrs, DefaultAddrs), ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%w: %s is empty", ErrConfig, PropAddrs)
	}
	var opts []client.Option
	switch route := p.GetString(PropRoute, RouteAny); route {
	case RouteAny:
	case RouteClient:
		opts = append(opts, client.WithRouting())
	default:
		return nil, fmt.Errorf("%w: %s=%q, want %s or %s", ErrConfig, PropRoute, route, RouteAny, RouteClient)
	}
	db := &DB{r: p.GetInt(PropR, 0), w: p.GetInt(PropW, 0)}
	if db.r < 0 || db.w < 0 {
		return nil, fmt.Errorf("%w: %s and %s must be 0 (cluster default) or 1..N", ErrConfig, PropR, PropW)
	}
	// Keep a connection per worker thread and node, or connections churn.
	db.tr = http.DefaultTransport.(*http.Transport).Clone()
	db.tr.MaxIdleConns = 0
	db.tr.MaxIdleConnsPerHost = max(p.GetInt(prop.ThreadCount, 1), 2)
	opts = append(opts, client.WithHTTPClient(&http.Client{Transport: db.tr}))
	c, err := client.New(addrs, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	db.c = c
	return db, nil
}

// Close implements ycsb.DB.
func (db *DB) Close() error {
	db.tr.CloseIdleConnections()
	return nil
}

// InitThread implements ycsb.DB; the binding keeps no per-thread state.
func (db *DB) InitThread(ctx context.Context, _, _ int) context.Context { return ctx }

// CleanupThread implements ycsb.DB.
func (db *DB) CleanupThread(context.Context) {}

func dbKey(table, key string) string { return table + ":" + key }

// stamp returns a write stamp: now in Unix nanoseconds, above every stamp
// this DB handed out before and above floor.
func (db *DB) stamp(floor uint64) uint64 {
	db.mu.Lock()
	defer db.mu.Unlock()
	s := max(uint64(time.Now().UnixNano()), db.lastStamp+1, floor+1)
	db.lastStamp = s
	return s
}

// get reads key and merges its siblings; a missing key is a nil record and
// an error wrapping client.ErrNotFound, with the tombstone's context.
func (db *DB) get(ctx context.Context, key string) (record, client.Context, error) {
	v, err := db.c.Get(ctx, key, &client.GetOptions{R: db.r})
	if err != nil {
		return nil, v.Context, err
	}
	r, err := merge(v.Siblings)
	if err != nil {
		return nil, nil, fmt.Errorf("key %q: %w", key, err)
	}
	return r, v.Context, nil
}

// Read implements ycsb.DB.
func (db *DB) Read(ctx context.Context, table, key string, fields []string) (map[string][]byte, error) {
	r, _, err := db.get(ctx, dbKey(table, key))
	if err != nil {
		return nil, err
	}
	if len(fields) == 0 {
		out := make(map[string][]byte, len(r))
		for name, f := range r {
			out[name] = f.value
		}
		return out, nil
	}
	out := make(map[string][]byte, len(fields))
	for _, name := range fields {
		if f, ok := r[name]; ok {
			out[name] = f.value
		}
	}
	return out, nil
}

// Scan implements ycsb.DB: it always fails with ErrScanUnsupported.
func (db *DB) Scan(context.Context, string, string, int, []string) ([]map[string][]byte, error) {
	return nil, ErrScanUnsupported
}

// Update implements ycsb.DB: read, set the fields, write with the context
// read.
func (db *DB) Update(ctx context.Context, table, key string, values map[string][]byte) error {
	k := dbKey(table, key)
	r, vctx, err := db.get(ctx, k)
	if err != nil && !errors.Is(err, client.ErrNotFound) {
		return err
	}
	if r == nil {
		r = make(record, len(values))
	}
	for name, v := range values {
		// The new value must win over the one it replaces in any later
		// merge, whatever the clocks of other writers said.
		r[name] = field{value: v, stamp: db.stamp(r[name].stamp)}
	}
	_, err = db.c.Put(ctx, k, r.encode(), &client.PutOptions{Context: vctx, W: db.w})
	return err
}

// Insert implements ycsb.DB: a blind put of the whole record.
func (db *DB) Insert(ctx context.Context, table, key string, values map[string][]byte) error {
	s := db.stamp(0)
	r := make(record, len(values))
	for name, v := range values {
		r[name] = field{value: v, stamp: s}
	}
	_, err := db.c.Put(ctx, dbKey(table, key), r.encode(), &client.PutOptions{W: db.w})
	return err
}

// Delete implements ycsb.DB: read for the context, then delete with it.
func (db *DB) Delete(ctx context.Context, table, key string) error {
	k := dbKey(table, key)
	v, err := db.c.Get(ctx, k, &client.GetOptions{R: db.r})
	if errors.Is(err, client.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return db.c.Delete(ctx, k, &client.PutOptions{Context: v.Context, W: db.w})
}
