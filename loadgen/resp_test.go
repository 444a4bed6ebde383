package loadgen

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/dynago/dynago/httpapi/httpapitest"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/resp"
)

// TestRESPTarget runs puts, gets and deletes through a real RESP server
// over the in-memory backend: the requests carry the options' quorums,
// timeout and (read before write) the context read.
func TestRESPTarget(t *testing.T) {
	b := httpapitest.New()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := resp.New(b, resp.Config{})
	go srv.Serve(ln)
	defer srv.Close()

	if _, err := NewRESPTarget([]string{ln.Addr().String()}, ClientOptions{Routing: true}); !errors.Is(err, ErrConfig) {
		t.Fatalf("RESP with client routing: %v, want ErrConfig", err)
	}
	tg, err := NewRESPTarget([]string{ln.Addr().String()}, ClientOptions{R: 3, W: 1, Timeout: 700 * time.Millisecond, ReadBeforeWrite: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	ctx := context.Background()
	if err := tg.Do(ctx, OpGet, "k", nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get of a missing key: %v, want ErrNotFound", err)
	}
	for range 2 {
		if err := tg.Do(ctx, OpPut, "k", []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := tg.Do(ctx, OpGet, "k", nil); err != nil {
		t.Fatalf("get after put: %v", err)
	}
	if err := tg.Do(ctx, OpDelete, "k", nil); err != nil {
		t.Fatal(err)
	}
	if err := tg.Do(ctx, OpGet, "k", nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v, want ErrNotFound", err)
	}
	var writes, withContext int
	for _, r := range b.Requests() {
		if r.Timeout != 700*time.Millisecond {
			t.Errorf("%s with timeout %v, want 700ms", r.Op, r.Timeout)
		}
		switch r.Op {
		case node.OpGet:
			if r.R != 3 {
				t.Errorf("get with R=%d, want 3", r.R)
			}
		default:
			writes++
			if r.W != 1 {
				t.Errorf("%s with W=%d, want 1", r.Op, r.W)
			}
			if len(r.Context) > 0 {
				withContext++
			}
		}
	}
	// The first put found nothing to read; the second put and the delete
	// carried the context they read.
	if writes != 3 || withContext != 2 {
		t.Errorf("%d writes, %d with a context; want 3 and 2", writes, withContext)
	}
}
