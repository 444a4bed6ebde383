package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dynago/dynago/devcluster"
	"github.com/dynago/dynago/internal/testutil"
)

// Reads that do not lie, on real processes: N=3, R=2, W=2 on five nodes.

// putKeys writes keys (value = key) through the given nodes, a few at a
// time, and fails the test on any write not acknowledged.
func putKeys(t *testing.T, via []*devcluster.Node, keys []string) {
	t.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		fail []string
	)
	work := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				r, err := do("PUT", base(via[i%len(via)])+"/kv/"+keys[i], []byte(keys[i]))
				if err != nil || r.Status != 204 {
					mu.Lock()
					fail = append(fail, fmt.Sprintf("%s: %v %d %s", keys[i], err, r.Status, r.Body))
					mu.Unlock()
				}
			}
		}()
	}
	for i := range keys {
		work <- i
	}
	close(work)
	wg.Wait()
	if len(fail) > 0 {
		t.Fatalf("%d writes not acknowledged, e.g. %s", len(fail), fail[0])
	}
}

// do is call without t, for goroutines.
func do(method, url string, body []byte) (response, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return response{}, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}, err
}

// (a) A node SIGKILLed and restarted on its data answers every
// acknowledged key, read through it immediately: its failure detector
// still marks the other primaries dead for a while, and hints for the keys
// written while it was down have not reached it yet, yet no read says 404.
func TestRestartedNodeNeverAnswers404ForAcknowledgedKeys(t *testing.T) {
	c := startCluster(t, devcluster.Config{Nodes: 5, N: 3, R: 2, W: 2})
	victim := c.Nodes[0]
	var keys []string
	for i := range 600 {
		keys = append(keys, fmt.Sprintf("restart-%d", i))
	}
	putKeys(t, c.Nodes, keys[:300])
	if err := c.Kill(victim); err != nil {
		t.Fatal(err)
	}
	// Half of the keys are written while it is down: it misses those it
	// replicates, and their hints wait on the fallbacks.
	testutil.Eventually(t, 20*time.Second, "the killed node is reported dead", func() bool {
		return statusOf(t, c.Nodes[1], victim.ID) == "dead"
	})
	putKeys(t, c.Nodes[1:], keys[300:])
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Restart(ctx, victim); err != nil {
		t.Fatal(err)
	}
	var (
		wg                   sync.WaitGroup
		mu                   sync.Mutex
		notFound, wrong, bad []string
		unavailable          int
	)
	start := time.Now()
	work := make(chan string)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				r, err := do("GET", base(victim)+"/kv/"+k, nil)
				mu.Lock()
				switch {
				case err != nil:
					bad = append(bad, fmt.Sprintf("%s: %v", k, err))
				case r.Status == 404:
					notFound = append(notFound, fmt.Sprintf("%s: %s", k, r.Body))
				case r.Status == 503:
					unavailable++
				case r.Status != 200:
					bad = append(bad, fmt.Sprintf("%s: %d %s", k, r.Status, r.Body))
				case string(r.Body) != k:
					wrong = append(wrong, fmt.Sprintf("%s: %q", k, r.Body))
				}
				mu.Unlock()
			}
		}()
	}
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()
	t.Logf("%d reads through the restarted %s in %v: %d 404, %d 503, %d wrong, %d other",
		len(keys), victim.ID, time.Since(start).Round(time.Millisecond), len(notFound), unavailable, len(wrong), len(bad))
	if len(notFound) > 0 {
		t.Fatalf("%d acknowledged keys read 404 through the restarted node, e.g. %s", len(notFound), notFound[0])
	}
	if len(wrong) > 0 || len(bad) > 0 {
		t.Fatalf("wrong values %v, failed reads %v", wrong, bad)
	}
	// 503 is honest (R could not be reached), but with every other node up
	// it should be rare.
	if unavailable > len(keys)/20 {
		t.Fatalf("%d of %d reads answered 503 with four of five nodes up", unavailable, len(keys))
	}
}

// (b) Two of a key's three primaries are paused (SIGSTOP: alive to the
// failure detector for a while, silent on the wire). A read with R=2 moves
// to the fallbacks after the replica timeout, as writes do: a key written
// after the pause reads back from their hints, and a key written before it
// gets an honest 503, both well inside the 5 s request timeout.
func TestReadWithTwoPrimariesPausedAnswersFast(t *testing.T) {
	c := startCluster(t, devcluster.Config{Nodes: 5, N: 3, R: 2, W: 2})
	var pl placement
	call(t, "GET", base(c.Nodes[0])+"/kv/paused/placement", nil, nil).json(t, &pl)
	// A second key on the same preference list, written before the pause.
	before := ""
	for i := 0; i < 2000 && before == ""; i++ {
		k := fmt.Sprintf("before-%d", i)
		var p placement
		call(t, "GET", base(c.Nodes[0])+"/kv/"+k+"/placement", nil, nil).json(t, &p)
		if slices.Equal(p.PreferenceList, pl.PreferenceList) {
			before = k
		}
	}
	if before == "" {
		t.Fatal("setup: no key shares the preference list")
	}
	live := nodeByID(t, c, pl.PreferenceList[0])
	if r := call(t, "PUT", base(live)+"/kv/"+before, []byte("old"), nil); r.Status != 204 {
		t.Fatalf("PUT %s: %d %s", before, r.Status, r.Body)
	}
	// Let the third replica have it too, so the pause is all that matters.
	time.Sleep(500 * time.Millisecond)

	var paused []*devcluster.Node
	for _, id := range pl.PreferenceList[1:] {
		n := nodeByID(t, c, id)
		pid := n.PID()
		if pid <= 0 {
			t.Fatalf("%s has no process", id)
		}
		t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		paused = append(paused, n)
	}

	start := time.Now()
	if r := call(t, "PUT", base(live)+"/kv/paused", []byte("v"), nil); r.Status != 204 {
		t.Fatalf("PUT with two primaries paused: %d %s", r.Status, r.Body)
	}
	t.Logf("write with %s and %s paused took %v", paused[0].ID, paused[1].ID, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	r := call(t, "GET", base(live)+"/kv/paused", nil, nil)
	took := time.Since(start)
	t.Logf("read of a key written after the pause: %d in %v", r.Status, took.Round(time.Millisecond))
	if r.Status != 200 || string(r.Body) != "v" {
		t.Fatalf("read with two primaries paused: %d %s; want 200 v from the fallbacks' hints", r.Status, r.Body)
	}
	if took > 2*time.Second {
		t.Fatalf("read took %v; want about the replica timeout (200 ms), not the 5 s request timeout", took)
	}

	start = time.Now()
	r = call(t, "GET", base(live)+"/kv/"+before, nil, nil)
	took = time.Since(start)
	t.Logf("read of a key written before the pause: %d in %v", r.Status, took.Round(time.Millisecond))
	if r.Status != 503 {
		// One primary answers and no fallback holds the key: R=2 is out of
		// reach, and a 404 would be a lie.
		t.Fatalf("read: %d %s; want 503", r.Status, r.Body)
	}
	if took > 2*time.Second {
		t.Fatalf("answer after %v; want it as soon as R is known to be out of reach, not after the 5 s timeout", took)
	}
}
