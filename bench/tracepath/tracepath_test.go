package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"runtime/trace"
	"strings"
	"testing"
	"time"

	"github.com/dynago/dynago/internal/testutil"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/server"
	"github.com/redis/go-redis/v9"
)

// TestCoordinatorPathOfARealNode traces a one-node dynago (N=1, real
// Pebble, RESP) while one client sets keys one at a time, and checks that
// the coordinator's path is found in every request, in its order: the
// names tracepath matches goroutines by are the server's, Pebble's and the
// RESP front end's own, so a rename there shows up here.
func TestCoordinatorPathOfARealNode(t *testing.T) {
	respAddr := testutil.FreeAddr(t)
	s, err := server.Start(server.Config{
		ID: "solo", DataDir: t.TempDir(), HTTPAddr: testutil.FreeAddr(t), RPCAddr: testutil.FreeAddr(t),
		GossipAddr: "127.0.0.1:0", RESPAddr: respAddr, Node: node.Config{N: 1},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rc := redis.NewClient(&redis.Options{Addr: respAddr, Protocol: 2})
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := rc.Set(ctx, "warm", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}

	const sets = 200
	var buf bytes.Buffer
	if err := trace.Start(&buf); err != nil {
		t.Fatal(err)
	}
	for i := range sets {
		if err := rc.Set(ctx, fmt.Sprintf("k%d", i), "v", 0).Err(); err != nil {
			trace.Stop()
			t.Fatal(err)
		}
	}
	trace.Stop()

	evs, err := read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	rep := analyze(evs, coordinatorPath)
	var out strings.Builder
	rep.print(&out)
	t.Logf("\n%s", out.String())
	// The client's own goroutines are in the trace too, but none of them
	// runs the RESP front end's code: only the node's requests count. A
	// request whose bytes were there before its goroutine read (the client
	// runs in this process, and is quick) has no arrival to start from.
	if rep.requests < sets/3 || rep.requests > sets+1 {
		t.Fatalf("found %d requests, want about %d", rep.requests, sets)
	}
	prev, prevName := 0.0, "arrival"
	for i, m := range coordinatorPath {
		if i == 0 {
			continue
		}
		n := len(rep.at[i])
		if m.peers {
			if n != 0 {
				t.Errorf("%q seen %d times on a one-node cluster, which sends nothing", m.name, n)
			}
			continue
		}
		if n < rep.requests*9/10 {
			t.Errorf("%q seen in %d of %d requests", m.name, n, rep.requests)
			continue
		}
		// The "event loop runs" of a request can come before its hand-off
		// is recorded when the loop was already running (it drains its
		// queue); every later step follows the previous one.
		p50 := rep.quantile(i, 0.5)
		if p50 < prev && m.name != "event loop runs" {
			t.Errorf("%q at %.1f µs (median), before %q at %.1f µs", m.name, p50, prevName, prev)
		}
		prev, prevName = p50, m.name
	}
}
