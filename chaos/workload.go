package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dynago/dynago/client"
)

// keyName is the name of the i-th set.
func keyName(i int) string { return "chaos-set-" + strconv.Itoa(i) }

// history records what the clients did: which elements were attempted
// and which acknowledged, per key. It is the checker's ground truth.
type history struct {
	mu        sync.Mutex
	attempted map[string]int // element -> key index
	acked     []ackedElem    // append-only, in acknowledgement order
	unknown   int

	readErrs  map[string]int // error class -> count
	writeErrs map[string]int

	ackedPerKey []atomic.Int64
	reads       atomic.Int64
	readsOK     atomic.Int64
	notFound    atomic.Int64
}

type ackedElem struct {
	elem string
	key  int
}

func newHistory(keys int) *history {
	return &history{attempted: map[string]int{}, readErrs: map[string]int{}, writeErrs: map[string]int{}, ackedPerKey: make([]atomic.Int64, keys)}
}

func (h *history) attempt(elem string, key int) {
	h.mu.Lock()
	h.attempted[elem] = key
	h.mu.Unlock()
}

func (h *history) ack(elem string, key int) {
	h.mu.Lock()
	h.acked = append(h.acked, ackedElem{elem, key})
	h.mu.Unlock()
	h.ackedPerKey[key].Add(1)
}

func (h *history) fail(err error) {
	h.mu.Lock()
	h.unknown++
	h.writeErrs[errClass(err)]++
	h.mu.Unlock()
}

func (h *history) readFailed(err error) {
	h.mu.Lock()
	h.readErrs[errClass(err)]++
	h.mu.Unlock()
}

// errClass names the kind of a failed request, for the report: what a
// client saw while the nemesis acted.
func errClass(err error) string {
	var qe *client.QuorumError
	var ae *client.APIError
	var op *net.OpError
	switch {
	case errors.As(err, &qe):
		return "quorum_failed"
	case errors.As(err, &ae):
		if ae.Code == "" {
			return strconv.Itoa(ae.Status)
		}
		return strconv.Itoa(ae.Status) + "_" + ae.Code
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.As(err, &op):
		return "net_" + op.Op
	}
	return "other"
}

// ackedSoFar returns the elements acknowledged until now. The slice is
// shared: callers only read it.
func (h *history) ackedSoFar() []ackedElem {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.acked[:len(h.acked):len(h.acked)]
}

func (h *history) counts() (attempted, acked, unknown int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.attempted), len(h.acked), h.unknown
}

// workload runs the clients: each adds unique elements to random keys by
// read-modify-write through random nodes until stop is closed.
type workload struct {
	cfg     *Config
	nodes   []string
	clients map[string]*client.Client // one per node: each request goes to the node chosen
	hist    *history
	stop    chan struct{}
}

func newWorkload(cfg *Config, c Cluster, hc *http.Client, hist *history) (*workload, error) {
	w := &workload{cfg: cfg, nodes: c.Nodes(), clients: map[string]*client.Client{}, hist: hist, stop: make(chan struct{})}
	for _, id := range w.nodes {
		cl, err := client.New([]string{c.HTTPAddr(id)}, client.WithHTTPClient(hc), client.WithTimeout(cfg.RequestTimeout+time.Second))
		if err != nil {
			return nil, fmt.Errorf("chaos: node %s: %w", id, err)
		}
		w.clients[id] = cl
	}
	return w, nil
}

// run runs client i until stop is closed; the operation in flight then
// completes (its own timeouts bound it), so that no acknowledgement is
// cut off and miscounted.
func (w *workload) run(ctx context.Context, i int) {
	rng := rand.New(rand.NewPCG(w.cfg.Seed, uint64(i)+1))
	for seq := 0; ; {
		select {
		case <-w.stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		k := rng.IntN(w.cfg.Keys)
		key := keyName(k)
		cl := w.clients[w.nodes[rng.IntN(len(w.nodes))]]
		hadAcked := w.hist.ackedPerKey[k].Load() > 0
		w.hist.reads.Add(1)
		v, err := cl.Get(ctx, key, &client.GetOptions{Timeout: w.cfg.RequestTimeout})
		switch {
		case err == nil:
			w.hist.readsOK.Add(1)
		case errors.Is(err, client.ErrNotFound):
			// What a client does with a 404: start from the empty set
			// (with the tombstone's context, if any). If the key did hold
			// elements, the write without their context is concurrent
			// with them and they survive as a sibling; under LWW they
			// are gone, which the checker reports as lost.
			w.hist.readsOK.Add(1)
			if hadAcked {
				w.hist.notFound.Add(1)
			}
		default:
			w.hist.readFailed(err)
			w.pause(ctx, rng)
			continue
		}
		s := set{}
		s.addSiblings(v.Siblings)
		elem := fmt.Sprintf("c%d-%06d", i, seq)
		seq++
		s[elem] = struct{}{}
		w.hist.attempt(elem, k)
		if _, err := cl.Put(ctx, key, encodeSet(s), &client.PutOptions{Context: v.Context, Timeout: w.cfg.RequestTimeout}); err != nil {
			w.hist.fail(err)
			w.pause(ctx, rng)
			continue
		}
		w.hist.ack(elem, k)
	}
}

// pause waits a little after a failed request: a killed node refuses at
// once, and a client must not spin on it.
func (w *workload) pause(ctx context.Context, rng *rand.Rand) {
	t := time.NewTimer(time.Duration(50+rng.IntN(100)) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.stop:
	case <-ctx.Done():
	}
}
