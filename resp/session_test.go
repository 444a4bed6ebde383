package resp_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dynago/dynago/fault"
	"github.com/dynago/dynago/internal/testutil"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/server"
	"github.com/dynago/dynago/session"
)

// sessionCluster is three nodes, N=3 R=1 W=1, where n1 cannot reach n3:
// a write through n1 is on n1 and n2, never on n3, whose own replica
// answers a read at R=1 first. Reads through n3 are stale unless the
// session makes the coordinator wait for n2's copy.
func sessionCluster(t *testing.T) []*server.Server {
	t.Helper()
	srvs := startCluster(t, 3, func(c *server.Config) { c.Node.R, c.Node.W = 1, 1 })
	// Warm every node's streams first: these in-process clusters run no
	// gossip, so nothing calls Reconnect, and a replica message sent while
	// a peer's first dial is still backing off is lost (the W=1 write
	// would then live on n1 alone, and the session read could only 503).
	for _, s := range srvs {
		testutil.Eventually(t, 10*time.Second, fmt.Sprintf("a W=3 warm-up write through %s succeeds", s.NodeID()), func() bool {
			return s.Do(context.Background(), node.Request{Op: node.OpPut, Key: []byte("warm-up"), Value: []byte("x"), W: 3}).Code == node.CodeOK
		})
	}
	if err := srvs[0].SetFaultRules(fault.Rules{Cut: []string{"n3"}}); err != nil {
		t.Fatal(err)
	}
	return srvs
}

// conn is one dedicated connection of a go-redis client: a session
// belongs to a connection, so a pooled client's commands, which may take
// any connection, would not all carry it.
func conn(t *testing.T, addr string) *redis.Conn {
	t.Helper()
	c := client(t, &redis.Options{Addr: addr}).Conn()
	t.Cleanup(func() { c.Close() })
	return c
}

func sessionToken(t *testing.T, ctx context.Context, c *redis.Conn) string {
	t.Helper()
	tok, err := c.Do(ctx, "SESSION", "TOKEN").Text()
	if err != nil {
		t.Fatalf("SESSION TOKEN: %v", err)
	}
	return tok
}

func mustDo(t *testing.T, ctx context.Context, c *redis.Conn, args ...any) {
	t.Helper()
	if err := c.Do(ctx, args...).Err(); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
}

// TestSessionReadYourWritesThroughAnotherNode: at R=1 W=1, a session that
// writes through n1 and carries its token (SESSION TOKEN, SESSION RESUME)
// to a connection on n3 always reads its writes there, and its deletes;
// the same reads without the session miss writes.
func TestSessionReadYourWritesThroughAnotherNode(t *testing.T) {
	srvs := sessionCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w, r := conn(t, srvs[0].RESPAddr()), conn(t, srvs[2].RESPAddr())
	plainW := client(t, &redis.Options{Addr: srvs[0].RESPAddr()})
	plainR := client(t, &redis.Options{Addr: srvs[2].RESPAddr()})
	mustDo(t, ctx, w, "SESSION", "START")

	const rounds = 20
	stale := 0
	for i := range rounds {
		// The control first, on its own key: its read may repair n3's
		// replica of that key, never of the session's.
		ck, cv := fmt.Sprintf("ctrl-%d", i), fmt.Sprintf("c%d", i)
		if err := plainW.Set(ctx, ck, cv, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if got, err := plainR.Get(ctx, ck).Result(); got != cv {
			if err != nil && !errors.Is(err, redis.Nil) {
				t.Fatalf("control GET %s: %v", ck, err)
			}
			stale++
		}

		key, val := fmt.Sprintf("sess-%d", i), fmt.Sprintf("v%d", i)
		mustDo(t, ctx, w, "SET", key, val)
		mustDo(t, ctx, r, "SESSION", "RESUME", sessionToken(t, ctx, w))
		if got, err := r.Get(ctx, key).Result(); got != val || err != nil {
			t.Fatalf("round %d: session GET %s through n3: %q %v, want %q (read-your-writes)", i, key, got, err, val)
		}
		// A second write, DSET without a context, still replaces the
		// first (monotonic writes), through either node.
		val2 := val + "'"
		mustDo(t, ctx, w, "SESSION", "RESUME", sessionToken(t, ctx, r))
		mustDo(t, ctx, w, "DSET", key, val2)
		mustDo(t, ctx, r, "SESSION", "RESUME", sessionToken(t, ctx, w))
		if _, vals := dgetConn(t, ctx, r, key); len(vals) != 1 || vals[0] != val2 {
			t.Fatalf("round %d: session DGET %s through n3: %q, want only %q", i, key, vals, val2)
		}
		if i%5 == 0 {
			if n, err := w.Del(ctx, key).Result(); n != 1 || err != nil {
				t.Fatalf("DEL %s: %d %v", key, n, err)
			}
			mustDo(t, ctx, r, "SESSION", "RESUME", sessionToken(t, ctx, w))
			if got, err := r.Get(ctx, key).Result(); !errors.Is(err, redis.Nil) {
				t.Fatalf("session GET %s through n3 after the session's DEL: %q %v, want nil", key, got, err)
			}
			if n, err := r.Exists(ctx, key).Result(); n != 0 || err != nil {
				t.Fatalf("session EXISTS %s after DEL: %d %v", key, n, err)
			}
		}
	}
	t.Logf("control without a session: %d of %d reads through n3 missed the write", stale, rounds)
	// The control shows the fault makes reads stale; without that the
	// session's reads above prove nothing.
	if stale == 0 {
		t.Errorf("no control read was stale: the setup does not exercise the session")
	}

	// SESSION END: the connection's commands carry no token any more.
	mustDo(t, ctx, r, "SESSION", "END")
	if err := r.Do(ctx, "SESSION", "TOKEN").Err(); errCode(err) != "ERR" {
		t.Fatalf("SESSION TOKEN after END: %v, want ERR", err)
	}
}

func dgetConn(t *testing.T, ctx context.Context, c *redis.Conn, args ...any) (string, []string) {
	t.Helper()
	v, err := c.Do(ctx, append([]any{"DGET"}, args...)...).StringSlice()
	if err != nil || len(v) < 1 {
		t.Fatalf("DGET %v: %v %v", args, v, err)
	}
	return v[0], v[1:]
}

// TestSessionUnavailable: when the only nodes holding the session's
// version cannot answer, a session read is -SESSION_UNAVAILABLE (never a
// stale answer) and the token stays as it was.
func TestSessionUnavailable(t *testing.T) {
	srvs := startCluster(t, 3, func(c *server.Config) { c.Node.R, c.Node.W = 1, 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// n1 reaches nobody: its W=1 write stays on n1 alone.
	if err := srvs[0].SetFaultRules(fault.Rules{Cut: []string{fault.Any}}); err != nil {
		t.Fatal(err)
	}
	w, r := conn(t, srvs[0].RESPAddr()), conn(t, srvs[2].RESPAddr())
	mustDo(t, ctx, w, "SESSION", "START")
	mustDo(t, ctx, w, "SET", "lonely", "v")
	tok := sessionToken(t, ctx, w)
	mustDo(t, ctx, r, "SESSION", "RESUME", tok)
	err := r.Do(ctx, "DGET", "lonely", "TIMEOUT", "1000").Err()
	if errCode(err) != "SESSION_UNAVAILABLE" || !strings.Contains(err.Error(), "acks=") {
		t.Fatalf("session DGET of a version only an unreachable node holds: %v, want -SESSION_UNAVAILABLE acks=...", err)
	}
	if got := sessionToken(t, ctx, r); got != tok {
		t.Fatalf("token changed by a failed read: %q, was %q", got, tok)
	}
	// Without the session the same read answers, stale.
	mustDo(t, ctx, r, "SESSION", "END")
	if _, err := r.Get(ctx, "lonely").Result(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET without the session: %v, want nil (stale)", err)
	}
	// Once n1 is reachable again the session read succeeds; it may take
	// n3 a moment to see n1 alive again (gossip was cut too), and until
	// then the read may still be unavailable, never stale.
	if err := srvs[0].SetFaultRules(fault.Rules{}); err != nil {
		t.Fatal(err)
	}
	mustDo(t, ctx, r, "SESSION", "RESUME", tok)
	attempt := 0
	testutil.EventuallyNil(t, 20*time.Second, func() error {
		attempt++
		got, err := r.Get(ctx, "lonely").Result()
		if got == "v" && err == nil {
			return nil
		}
		if errCode(err) != "SESSION_UNAVAILABLE" {
			t.Fatalf("session GET %d after the cut healed: %q %v, want \"v\" (or SESSION_UNAVAILABLE for a while)", attempt, got, err)
		}
		return fmt.Errorf("session GET %d after the cut healed: still %v", attempt, err)
	})
}

// TestSessionBadTokens: tokens that do not decode are -BAD_SESSION and
// leave the connection's session as it was; SESSION's other mistakes are
// -ERR.
func TestSessionBadTokens(t *testing.T) {
	srv := startCluster(t, 1, nil)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := conn(t, srv.RESPAddr())
	mustDo(t, ctx, c, "SESSION", "START")
	mustDo(t, ctx, c, "SET", "k", "v")
	good := sessionToken(t, ctx, c)
	if good == "" {
		t.Fatal("empty token after a session's SET")
	}
	flipped := []byte(good)
	flipped[len(flipped)-2] ^= 1 // breaks the checksum
	for name, tok := range map[string]string{
		"not base64url":  "not a token!",
		"bad checksum":   string(flipped),
		"unknown format": "AAAAAAAA",
		"over 8 KiB":     strings.Repeat("A", 9000),
	} {
		if err := c.Do(ctx, "SESSION", "RESUME", tok).Err(); errCode(err) != "BAD_SESSION" {
			t.Errorf("%s: SESSION RESUME: %v, want -BAD_SESSION", name, err)
		}
	}
	if got := sessionToken(t, ctx, c); got != good {
		t.Fatalf("token after refused RESUMEs: %q, want the session's %q", got, good)
	}
	for _, args := range [][]any{{"SESSION", "RESUME"}, {"SESSION", "START", "x"}, {"SESSION", "NOPE"}, {"SESSION"}} {
		if err := c.Do(ctx, args...).Err(); errCode(err) != "ERR" {
			t.Errorf("%v: %v, want -ERR", args, err)
		}
	}
	// A token from HTTP's X-Dynago-Session has the same form: the empty
	// token is a new session.
	mustDo(t, ctx, c, "SESSION", "RESUME", "")
	if got := sessionToken(t, ctx, c); got != "" {
		t.Fatalf("token after RESUME \"\": %q", got)
	}
}

// TestSessionPipeline: a pipeline's commands on distinct keys run at once;
// every one of them is recorded in the session's token, and a SESSION
// command in the pipeline applies exactly to the commands after it.
func TestSessionPipeline(t *testing.T) {
	srvs := sessionCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w, r := conn(t, srvs[0].RESPAddr()), conn(t, srvs[2].RESPAddr())

	const keys = 40
	var tokCmd, tokAfterCmd *redis.Cmd
	_, err := w.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "before", "x", 0) // not in the session
		p.Do(ctx, "SESSION", "START")
		for i := range keys {
			p.Set(ctx, fmt.Sprintf("p-%d", i), fmt.Sprintf("v%d", i), 0)
		}
		p.Do(ctx, "DSET", "p-extra", "e")
		tokCmd = p.Do(ctx, "SESSION", "TOKEN")
		p.Do(ctx, "SESSION", "END")
		p.Set(ctx, "after", "y", 0) // not in the session either
		p.Do(ctx, "SESSION", "START")
		tokAfterCmd = p.Do(ctx, "SESSION", "TOKEN")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tokStr, err := tokCmd.Text()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := session.Parse(tokStr)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Len() != keys+1 || tok.Dropped != 0 {
		t.Fatalf("token of the pipeline holds %d keys (%d dropped), want the %d written in the session", tok.Len(), tok.Dropped, keys+1)
	}
	for _, k := range []string{"before", "after"} {
		if vv, _ := tok.Floor([]byte(k)); vv != nil {
			t.Errorf("the session's token records %q, written outside it", k)
		}
	}
	if s, err := tokAfterCmd.Text(); s != "" || err != nil {
		t.Fatalf("token of a session started after the writes: %q %v, want empty", s, err)
	}

	// The token carried to n3: a pipeline of reads sees every write.
	var gets []*redis.StringCmd
	_, err = r.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Do(ctx, "SESSION", "RESUME", tokStr)
		for i := range keys {
			gets = append(gets, p.Get(ctx, fmt.Sprintf("p-%d", i)))
		}
		gets = append(gets, p.Get(ctx, "p-extra"))
		return nil
	})
	if err != nil {
		t.Fatalf("pipeline of session reads through n3: %v", err)
	}
	for i, g := range gets {
		want := "e"
		if i < keys {
			want = fmt.Sprintf("v%d", i)
		}
		if got, err := g.Result(); got != want || err != nil {
			t.Errorf("session read %d through n3: %q %v, want %q", i, got, err, want)
		}
	}
	// Reads are recorded too: the token still names every key.
	if tok, err := session.Parse(sessionToken(t, ctx, r)); err != nil || tok.Len() != keys+1 {
		t.Fatalf("token after the reads: %v keys, %v", tok, err)
	}
}

// TestReloadRevokesTokensOnOpenConnections: a token removed from the
// tokens file (SIGHUP, Reload) stops working on connections that
// authenticated with it, at their next command; a token whose role
// changed gets the new role; other connections carry on.
func TestReloadRevokesTokensOnOpenConnections(t *testing.T) {
	tokFile := filepath.Join(t.TempDir(), "tokens")
	writeFile(t, tokFile, "writer-token-0123456789 write\nother-token-01234567890 write\nkeeper-token-0123456789 write\n")
	srv := startCluster(t, 1, func(c *server.Config) { c.Security.TokensFile = tokFile })[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	revoked := conn(t, srv.RESPAddr())
	demoted := conn(t, srv.RESPAddr())
	keeper := conn(t, srv.RESPAddr())
	mustDo(t, ctx, revoked, "AUTH", "writer-token-0123456789")
	mustDo(t, ctx, demoted, "AUTH", "other-token-01234567890")
	mustDo(t, ctx, keeper, "AUTH", "keeper-token-0123456789")
	for _, c := range []*redis.Conn{revoked, demoted, keeper} {
		mustDo(t, ctx, c, "SET", "k", "v")
	}

	writeFile(t, tokFile, "other-token-01234567890 read\nkeeper-token-0123456789 write\n")
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := revoked.Get(ctx, "k").Err(); errCode(err) != "NOAUTH" {
		t.Fatalf("GET on a connection whose token was removed: %v, want NOAUTH", err)
	}
	if err := revoked.Set(ctx, "k", "w", 0).Err(); errCode(err) != "NOAUTH" {
		t.Fatalf("SET on a connection whose token was removed: %v, want NOAUTH", err)
	}
	if err := demoted.Set(ctx, "k", "w", 0).Err(); errCode(err) != "NOPERM" {
		t.Fatalf("SET on a connection whose token became read-only: %v, want NOPERM", err)
	}
	if got, err := demoted.Get(ctx, "k").Result(); got != "v" || err != nil {
		t.Fatalf("GET on a connection whose token became read-only: %q %v", got, err)
	}
	if err := keeper.Set(ctx, "k", "w", 0).Err(); err != nil {
		t.Fatalf("SET on a connection whose token was kept: %v", err)
	}
	// The revoked connection can authenticate again with a valid token.
	mustDo(t, ctx, revoked, "AUTH", "keeper-token-0123456789")
	if got, err := revoked.Get(ctx, "k").Result(); got != "w" || err != nil {
		t.Fatalf("GET after a new AUTH: %q %v", got, err)
	}
	// A token put back by a later reload works again on a new AUTH only:
	// the revoked connection's old token was forgotten.
	writeFile(t, tokFile, "writer-token-0123456789 write\nkeeper-token-0123456789 write\n")
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := demoted.Get(ctx, "k").Err(); errCode(err) != "NOAUTH" {
		t.Fatalf("GET on a connection whose token was removed by a second reload: %v, want NOAUTH", err)
	}
}
