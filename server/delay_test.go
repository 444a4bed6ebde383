package server

import (
	"context"
	"testing"
	"time"

	"github.com/dynago/dynago/fault"
	"github.com/dynago/dynago/internal/testutil"
	"github.com/dynago/dynago/node"
)

// The fault lab's rule: an injected delay holds up its own message and
// nothing else. With every message from n1 to n2 held for a long time, n1
// still answers at once what needs no answer from n2: a W=1 put and an R=1
// get from its own copy, and a W=2 put whose second acknowledgement comes
// from n3. An R=3 get, which needs n2, shows that the delay is in force.
func TestInjectedDelayHoldsUpOnlyItsOwnMessage(t *testing.T) {
	// Long against any scheduling hiccup of a loaded machine, so "at once"
	// can be a generous bound and the test still tells the two apart.
	const delay = 3 * time.Second
	const prompt = delay / 2
	// N=3: every node holds every key. The replica timeout outlasts the
	// delay, so that n2 stays a replica the coordinator waits for rather
	// than one it gives up on.
	srvs := startCluster(t, 3, func(c *Config) { c.Node.ReplicaTimeout = 4 * delay })
	n1 := srvs[0]
	ctx := context.Background()
	for _, s := range srvs {
		// Warm the streams first: a message sent while a first dial is
		// still failing is lost, and the puts below count on their acks.
		testutil.Eventually(t, 10*time.Second, string(s.NodeID())+" reaches every replica", func() bool {
			return s.Do(ctx, node.Request{Op: node.OpGet, Key: []byte("warm-up"), R: 3}).Code == node.CodeNotFound
		})
	}
	if err := n1.SetFaultRules(fault.Rules{Delay: map[string]fault.Delay{"n2": fault.Fixed(delay)}}); err != nil {
		t.Fatal(err)
	}

	timed := func(req node.Request) (node.Reply, time.Duration) {
		start := time.Now()
		r := n1.Do(ctx, req)
		return r, time.Since(start)
	}
	for _, tc := range []struct {
		name string
		req  node.Request
		want node.Code
	}{
		{"W=1 put", node.Request{Op: node.OpPut, Key: []byte("k1"), Value: []byte("v"), W: 1, Timeout: 3 * delay}, node.CodeOK},
		{"R=1 get", node.Request{Op: node.OpGet, Key: []byte("k1"), R: 1, Timeout: 3 * delay}, node.CodeOK},
		{"W=2 put acknowledged by n3", node.Request{Op: node.OpPut, Key: []byte("k2"), Value: []byte("v"), W: 2, Timeout: 3 * delay}, node.CodeOK},
	} {
		r, took := timed(tc.req)
		if r.Code != tc.want {
			t.Fatalf("%s: %v %s", tc.name, r.Code, r.Err)
		}
		if took >= prompt {
			t.Errorf("%s took %v with only n1→n2 delayed by %v: held up by a message it does not need", tc.name, took, delay)
		}
	}
	// The control: this one needs n2's answer, which crosses the delay.
	r, took := timed(node.Request{Op: node.OpGet, Key: []byte("k1"), R: 3, Timeout: 3 * delay})
	if r.Code != node.CodeOK {
		t.Fatalf("R=3 get: %v %s", r.Code, r.Err)
	}
	if took < delay {
		t.Errorf("R=3 get took %v, want at least the injected %v: the delay is not in force", took, delay)
	}
}
