package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynago/dynago/devcluster"
	"github.com/dynago/dynago/internal/testutil"
)

func base(n *devcluster.Node) string { return "http://" + n.HTTPAddr }

// One cluster for the functional checks that do not disturb it.
func TestDevCluster(t *testing.T) {
	c := startCluster(t, devcluster.Config{Nodes: 5})

	t.Run("PutReadsBackEverywhereAndLivesOnPreferenceList", func(t *testing.T) {
		r := call(t, "PUT", base(c.Nodes[0])+"/kv/greeting", []byte("hello"), nil)
		if r.Status != http.StatusNoContent || r.context() == "" {
			t.Fatalf("PUT: %d %q context %q", r.Status, r.Body, r.context())
		}
		for _, n := range c.Nodes {
			g := call(t, "GET", base(n)+"/kv/greeting", nil, nil)
			if g.Status != 200 || string(g.Body) != "hello" || g.context() == "" {
				t.Errorf("GET via %s: %d %q", n.ID, g.Status, g.Body)
			}
		}
		var pl placement
		call(t, "GET", base(c.Nodes[2])+"/kv/greeting/placement", nil, nil).json(t, &pl)
		if len(pl.PreferenceList) != 3 || len(pl.Fallbacks) != 2 {
			t.Fatalf("placement %+v", pl)
		}
		for _, n := range c.Nodes {
			l := call(t, "GET", base(n)+"/admin/local/greeting", nil, nil)
			replica := slices.Contains(pl.PreferenceList, n.ID)
			switch {
			case replica && l.Status != 200:
				t.Errorf("%s is in the preference list but /admin/local says %d", n.ID, l.Status)
			case replica:
				var lb localBody
				l.json(t, &lb)
				if len(lb.Siblings) != 1 || string(lb.Siblings[0].Value) != "hello" || lb.Node != n.ID {
					t.Errorf("%s local copy %+v", n.ID, lb)
				}
			case l.Status != 404:
				t.Errorf("%s is not a replica but /admin/local says %d %q", n.ID, l.Status, l.Body)
			}
		}
	})

	t.Run("BlindWritesBecomeSiblingsAndContextResolves", func(t *testing.T) {
		call(t, "PUT", base(c.Nodes[0])+"/kv/cart", []byte("apples"), nil)
		call(t, "PUT", base(c.Nodes[3])+"/kv/cart", []byte("pears"), nil)
		g := call(t, "GET", base(c.Nodes[1])+"/kv/cart", nil, nil)
		if g.Status != http.StatusMultipleChoices {
			t.Fatalf("GET after two blind writes: %d %q, want 300", g.Status, g.Body)
		}
		var sb siblingsBody
		g.json(t, &sb)
		got := []string{string(sb.Siblings[0]), string(sb.Siblings[1])}
		slices.Sort(got)
		if len(sb.Siblings) != 2 || !slices.Equal(got, []string{"apples", "pears"}) || sb.Context == "" || sb.Key != "cart" {
			t.Fatalf("siblings body %+v", sb)
		}
		p := call(t, "PUT", base(c.Nodes[2])+"/kv/cart", []byte("apples,pears"), map[string]string{"X-Dynago-Context": sb.Context})
		if p.Status != 204 {
			t.Fatalf("resolving PUT: %d %q", p.Status, p.Body)
		}
		for _, n := range c.Nodes {
			g := call(t, "GET", base(n)+"/kv/cart", nil, nil)
			if g.Status != 200 || string(g.Body) != "apples,pears" {
				t.Errorf("GET via %s after resolve: %d %q", n.ID, g.Status, g.Body)
			}
		}
	})

	t.Run("DeleteThenWriteWithTombstoneContext", func(t *testing.T) {
		call(t, "PUT", base(c.Nodes[0])+"/kv/doc", []byte("v1"), nil)
		g := call(t, "GET", base(c.Nodes[1])+"/kv/doc", nil, nil)
		d := call(t, "DELETE", base(c.Nodes[2])+"/kv/doc", nil, map[string]string{"X-Dynago-Context": g.context()})
		if d.Status != 204 {
			t.Fatalf("DELETE: %d %q", d.Status, d.Body)
		}
		nf := call(t, "GET", base(c.Nodes[3])+"/kv/doc", nil, nil)
		if nf.Status != 404 || nf.context() == "" {
			t.Fatalf("GET after delete: %d, context %q; want 404 with the tombstone's context", nf.Status, nf.context())
		}
		p := call(t, "PUT", base(c.Nodes[4])+"/kv/doc", []byte("v2"), map[string]string{"X-Dynago-Context": nf.context()})
		if p.Status != 204 {
			t.Fatalf("PUT with tombstone context: %d", p.Status)
		}
		for _, n := range c.Nodes {
			g := call(t, "GET", base(n)+"/kv/doc", nil, nil)
			if g.Status != 200 || string(g.Body) != "v2" {
				t.Errorf("GET via %s: %d %q; only v2 may remain", n.ID, g.Status, g.Body)
			}
		}
	})

	t.Run("BadInputGetsJSON4xxAndChangesNothing", func(t *testing.T) {
		n := base(c.Nodes[0])
		cases := []struct {
			name, method, path string
			body               []byte
			header             map[string]string
			status             int
		}{
			{"key too long", "PUT", "/kv/" + strings.Repeat("k", 1025), []byte("v"), nil, 400},
			{"value too large", "PUT", "/kv/bad-big", make([]byte, 1<<20+1), nil, 413},
			{"w zero", "PUT", "/kv/bad-w?w=0", []byte("v"), nil, 400},
			{"w above N", "PUT", "/kv/bad-w?w=4", []byte("v"), nil, 400},
			{"w not a number", "PUT", "/kv/bad-w?w=two", []byte("v"), nil, 400},
			{"r zero", "GET", "/kv/bad-r?r=0", nil, nil, 400},
			{"r above N", "GET", "/kv/bad-r?r=9", nil, nil, 400},
			{"r not a number", "GET", "/kv/bad-r?r=x", nil, nil, 400},
			{"context not base64", "PUT", "/kv/bad-ctx", []byte("v"), map[string]string{"X-Dynago-Context": "!!!"}, 400},
			{"context garbage", "PUT", "/kv/bad-ctx", []byte("v"), map[string]string{"X-Dynago-Context": "AAECAwQFBgc"}, 400},
			{"timeout not a number", "PUT", "/kv/bad-t?timeout=soon", []byte("v"), nil, 400},
		}
		for _, tc := range cases {
			r := call(t, tc.method, n+tc.path, tc.body, tc.header)
			if r.Status != tc.status {
				t.Errorf("%s: status %d %q, want %d", tc.name, r.Status, r.Body, tc.status)
				continue
			}
			r.errorCode(t)
		}
		// Malformed percent-encoding, sent raw (a client library would refuse).
		raw := rawRequest(t, c.Nodes[0].HTTPAddr, "GET /kv/%zz HTTP/1.1\r\nHost: x\r\n\r\n")
		if !strings.HasPrefix(raw, "HTTP/1.1 400") {
			t.Errorf("malformed percent-encoding: %q", raw)
		}
		for _, k := range []string{"bad-big", "bad-w", "bad-ctx", "bad-t"} {
			if g := call(t, "GET", n+"/kv/"+k, nil, nil); g.Status != 404 {
				t.Errorf("rejected request stored %q: GET says %d", k, g.Status)
			}
		}
		if h := call(t, "GET", n+"/healthz", nil, nil); h.Status != 200 {
			t.Fatalf("node unhealthy after bad input: %d", h.Status)
		}
	})

	t.Run("EscapedKeysRoundTrip", func(t *testing.T) {
		key := "a/b c%d?é"
		u := base(c.Nodes[1]) + "/kv/" + url.PathEscape(key)
		if r := call(t, "PUT", u, []byte("odd"), nil); r.Status != 204 {
			t.Fatalf("PUT: %d %q", r.Status, r.Body)
		}
		if g := call(t, "GET", base(c.Nodes[4])+"/kv/"+url.PathEscape(key), nil, nil); string(g.Body) != "odd" {
			t.Fatalf("GET: %d %q", g.Status, g.Body)
		}
	})
}

func rawRequest(t *testing.T, addr, req string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, _ := conn.Read(buf)
	return string(buf[:n])
}

// SIGKILL a node right after 1,000 acknowledged writes (N=3, W=2, and W=1,
// where the replicas' copies wait for a later fsync: --lazy-sync-delay),
// restart it on the same data: every key reads back and the node holds its
// keys.
func TestCrashAfterAcknowledgedWrites(t *testing.T) {
	for _, quorum := range []int{2, 1} {
		t.Run(fmt.Sprintf("W=%d", quorum), func(t *testing.T) { crashAfterAcknowledgedWrites(t, quorum) })
	}
}

func crashAfterAcknowledgedWrites(t *testing.T, quorum int) {
	c := startCluster(t, devcluster.Config{Nodes: 5, N: 3, R: 2, W: quorum})
	victim := c.Nodes[1]
	const total = 1000
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errMu   sync.Mutex
		errs    []string
		entered [total]string // the node each put was sent to
	)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				k := fmt.Sprintf("crash-%04d", i)
				entry := c.Nodes[(int(i)+w)%5]
				entered[i] = entry.ID
				r := call(t, "PUT", base(entry)+"/kv/"+k, []byte(k), nil)
				if r.Status != 204 {
					errMu.Lock()
					errs = append(errs, fmt.Sprintf("%s: %d %s", k, r.Status, r.Body))
					errMu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d puts failed, first: %s", len(errs), errs[0])
	}
	if err := c.Kill(victim); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Restart(ctx, victim); err != nil {
		t.Fatal(err)
	}

	// Keys the victim coordinated (a put sent to a replica is coordinated
	// there) were on its disk before it acknowledged them: they must be
	// there without any repair.
	var mine, coordinated []string
	for i := range total {
		k := fmt.Sprintf("crash-%04d", i)
		var pl placement
		call(t, "GET", base(c.Nodes[0])+"/kv/"+k+"/placement", nil, nil).json(t, &pl)
		if slices.Contains(pl.PreferenceList, victim.ID) {
			mine = append(mine, k)
			if entered[i] == victim.ID {
				coordinated = append(coordinated, k)
			}
		}
	}
	for _, k := range coordinated {
		if l := call(t, "GET", base(victim)+"/admin/local/"+k, nil, nil); l.Status != 200 {
			t.Errorf("%s coordinated %s and acknowledged it, but lost it in the crash (%d)", victim.ID, k, l.Status)
		}
	}
	for i := range total {
		k := fmt.Sprintf("crash-%04d", i)
		g := call(t, "GET", base(c.Nodes[i%5])+"/kv/"+k, nil, nil)
		if g.Status != 200 || string(g.Body) != k {
			t.Errorf("GET %s after crash: %d %q", k, g.Status, g.Body)
		}
	}
	// Reads repaired whatever the victim had not yet stored when it died.
	for _, k := range mine {
		testutil.EventuallyNil(t, 10*time.Second, func() error {
			if l := call(t, "GET", base(victim)+"/admin/local/"+k, nil, nil); l.Status != 200 {
				return fmt.Errorf("%s is a replica of %s but does not hold it after restart and reads (%d)", victim.ID, k, l.Status)
			}
			return nil
		})
	}
	t.Logf("%s is a replica of %d keys, coordinated %d", victim.ID, len(mine), len(coordinated))
}
