package resp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dynago/dynago/security"
	"github.com/dynago/dynago/server"
	"github.com/dynago/dynago/server/servertest"
)

// startCluster runs n in-process nodes, each with a RESP listener.
func startCluster(t testing.TB, n int, mut func(*server.Config)) []*server.Server {
	t.Helper()
	return servertest.StartCluster(t, n, func(c *server.Config) {
		c.RESPAddr = "127.0.0.1:0"
		if mut != nil {
			mut(c)
		}
	})
}

// client is a go-redis client of one node, closed with the test.
func client(t testing.TB, opt *redis.Options) *redis.Client {
	t.Helper()
	opt.MaxRetries = -1 // a test sees each command's own reply
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = 5*time.Second, 10*time.Second, 5*time.Second
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// errCode is the first word of a RESP error reply ("" for no error).
func errCode(err error) string {
	var re redis.Error
	if err == nil || !errors.As(err, &re) {
		if err != nil {
			return "not a server error: " + err.Error()
		}
		return ""
	}
	code, _, _ := strings.Cut(re.Error(), " ")
	return code
}

func dget(t *testing.T, ctx context.Context, c *redis.Client, args ...any) (string, []string) {
	t.Helper()
	v, err := c.Do(ctx, append([]any{"DGET"}, args...)...).StringSlice()
	if err != nil || len(v) < 1 {
		t.Fatalf("DGET %v: %v %v", args, v, err)
	}
	vals := v[1:]
	slices.Sort(vals)
	return v[0], vals
}

// TestRedisClient drives a 3-node cluster through go-redis, connected to
// different nodes for writes and reads.
func TestRedisClient(t *testing.T) {
	srvs := startCluster(t, 3, nil)
	ctx := context.Background()
	c1 := client(t, &redis.Options{Addr: srvs[0].RESPAddr()})
	c2 := client(t, &redis.Options{Addr: srvs[1].RESPAddr()})

	t.Run("round trips", func(t *testing.T) {
		if got, err := c1.Ping(ctx).Result(); got != "PONG" || err != nil {
			t.Fatalf("PING: %q %v", got, err)
		}
		if err := c1.Set(ctx, "greeting", "hello", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if got, err := c2.Get(ctx, "greeting").Result(); got != "hello" || err != nil {
			t.Fatalf("GET through another node: %q %v", got, err)
		}
		// SET replaces, as in Redis: no sibling of the earlier value.
		if err := c2.Set(ctx, "greeting", "bonjour", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if got, err := c1.Get(ctx, "greeting").Result(); got != "bonjour" || err != nil {
			t.Fatalf("GET after a second SET: %q %v", got, err)
		}
		if err := c1.Set(ctx, "empty", "", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if got, err := c2.Get(ctx, "empty").Result(); got != "" || err != nil {
			t.Fatalf("GET of an empty value: %q %v", got, err)
		}
		if _, err := c1.Get(ctx, "never-written").Result(); !errors.Is(err, redis.Nil) {
			t.Fatalf("GET of a missing key: %v, want redis.Nil", err)
		}
		if n, err := c2.Exists(ctx, "greeting", "empty", "never-written", "greeting").Result(); n != 3 || err != nil {
			t.Fatalf("EXISTS: %d %v, want 3 (a repeated key counts twice, as in Redis)", n, err)
		}
		if n, err := c1.Del(ctx, "greeting", "never-written", "greeting").Result(); n != 1 || err != nil {
			t.Fatalf("DEL: %d %v, want 1", n, err)
		}
		if _, err := c2.Get(ctx, "greeting").Result(); !errors.Is(err, redis.Nil) {
			t.Fatalf("GET after DEL: %v, want redis.Nil", err)
		}
		if n, err := c2.Exists(ctx, "greeting").Result(); n != 0 || err != nil {
			t.Fatalf("EXISTS after DEL: %d %v", n, err)
		}
		// A deleted key comes back with a SET.
		if err := c1.Set(ctx, "greeting", "again", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if got, err := c2.Get(ctx, "greeting").Result(); got != "again" || err != nil {
			t.Fatalf("GET after DEL and SET: %q %v", got, err)
		}
		big := strings.Repeat("v", 300<<10)
		if err := c1.Set(ctx, "big", big, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if got, err := c2.Get(ctx, "big").Result(); got != big || err != nil {
			t.Fatalf("GET of a 300 KiB value: %d bytes %v", len(got), err)
		}
	})

	t.Run("siblings and contexts", func(t *testing.T) {
		// Two blind writes through two coordinators are concurrent.
		for i, c := range []*redis.Client{c1, c2} {
			if tok, err := c.Do(ctx, "DSET", "cart", fmt.Sprintf("v%d", i+1)).Text(); tok == "" || err != nil {
				t.Fatalf("DSET: %q %v", tok, err)
			}
		}
		cctx, vals := dget(t, ctx, c1, "cart")
		if !slices.Equal(vals, []string{"v1", "v2"}) || cctx == "" {
			t.Fatalf("DGET after two blind DSETs: ctx %q values %q, want both values and a context", cctx, vals)
		}
		if err := c2.Get(ctx, "cart").Err(); errCode(err) != "SIBLINGS" {
			t.Fatalf("GET of a key with siblings: %v, want a SIBLINGS error", err)
		}
		// Writing with the context resolves them.
		tok, err := c2.Do(ctx, "DSET", "cart", "merged", "CONTEXT", cctx, "W", 3).Text()
		if err != nil {
			t.Fatal(err)
		}
		if c, vals := dget(t, ctx, c1, "cart", "R", 3); !slices.Equal(vals, []string{"merged"}) || c != tok {
			t.Fatalf("DGET after resolving: %q %q, want [merged] with the write's context %q", c, vals, tok)
		}
		if got, err := c1.Get(ctx, "cart").Result(); got != "merged" || err != nil {
			t.Fatalf("GET after resolving: %q %v", got, err)
		}
		// DDEL with the context leaves a tombstone: DGET answers its
		// context alone, and GET nil.
		if _, err := c1.Do(ctx, "DDEL", "cart", "CONTEXT", tok).Text(); err != nil {
			t.Fatal(err)
		}
		if c, vals := dget(t, ctx, c2, "cart"); len(vals) != 0 || c == "" {
			t.Fatalf("DGET of a deleted key: %q %q, want a context and no value", c, vals)
		}
		if err := c2.Get(ctx, "cart").Err(); !errors.Is(err, redis.Nil) {
			t.Fatalf("GET of a deleted key: %v", err)
		}
		if c, vals := dget(t, ctx, c2, "no-such-key"); c != "" || len(vals) != 0 {
			t.Fatalf("DGET of a key never written: %q %q, want [\"\"]", c, vals)
		}
	})

	t.Run("pipeline order", func(t *testing.T) {
		// One connection, one write: replies must match the commands in
		// order, and commands on one key must take effect in order.
		pipe := c1.Pipeline()
		var cmds []redis.Cmder
		for i := range 8 {
			cmds = append(cmds, pipe.Set(ctx, "p", fmt.Sprint(i), 0), pipe.Get(ctx, "p"))
			cmds = append(cmds, pipe.Set(ctx, fmt.Sprintf("p%d", i), fmt.Sprint(i*10), 0))
		}
		bad := pipe.Do(ctx, "NOSUCHCOMMAND", "x")
		for i := range 8 {
			cmds = append(cmds, pipe.Get(ctx, fmt.Sprintf("p%d", i)))
		}
		_, _ = pipe.Exec(ctx) // the unknown command fails; the others must not
		for i := range 8 {
			if got, err := cmds[3*i+1].(*redis.StringCmd).Result(); got != fmt.Sprint(i) || err != nil {
				t.Errorf("GET after SET p %d in a pipeline: %q %v", i, got, err)
			}
			if got, err := cmds[24+i].(*redis.StringCmd).Result(); got != fmt.Sprint(i*10) || err != nil {
				t.Errorf("GET p%d at the end of the pipeline: %q %v", i, got, err)
			}
		}
		if !strings.Contains(fmt.Sprint(bad.Err()), "unknown command") {
			t.Errorf("unknown command in a pipeline: %v", bad.Err())
		}
		if got, err := c2.Get(ctx, "p").Result(); got != "7" || err != nil {
			t.Errorf("p after the pipeline: %q %v, want the last SET", got, err)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		// One connection throughout: every refusal leaves it usable.
		conn := c1.Conn()
		defer conn.Close()
		otherCtx, err := conn.Do(ctx, "DSET", "other", "x").Text()
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			args []any
			code string
		}{
			{[]any{"GET"}, "ERR"},
			{[]any{"SET", "k"}, "ERR"},
			{[]any{"GET", "a", "b"}, "ERR"},
			{[]any{"SET", "k", "v", "EX", "10"}, "ERR"},
			{[]any{"GET", strings.Repeat("k", 1025)}, "BAD_KEY"},
			{[]any{"SET", "", "v"}, "BAD_KEY"},
			{[]any{"DEL", "ok", strings.Repeat("k", 1025)}, "BAD_KEY"},
			{[]any{"SET", "k", strings.Repeat("v", 1<<20+1)}, "TOO_LARGE"},
			{[]any{"DSET", "k", "v", "CONTEXT", "!!!not-base64"}, "BAD_CONTEXT"},
			{[]any{"DSET", "k", "v", "CONTEXT", otherCtx}, "BAD_CONTEXT"},
			{[]any{"DSET", "k", "v", "W", "4"}, "BAD_PARAMETER"},
			{[]any{"DSET", "k", "v", "W", "0"}, "BAD_PARAMETER"},
			{[]any{"DGET", "k", "R"}, "BAD_PARAMETER"},
			{[]any{"DGET", "k", "R", "1", "R", "2"}, "BAD_PARAMETER"},
			{[]any{"DGET", "k", "TIMEOUT", "-5"}, "BAD_PARAMETER"},
			{[]any{"DGET", "k", "NOPE", "1"}, "BAD_PARAMETER"},
			{[]any{"SELECT", "1"}, "ERR"},
			{[]any{"HELLO", "3"}, "NOPROTO"},
		} {
			err := conn.Do(ctx, tc.args...).Err()
			if got := errCode(err); got != tc.code {
				t.Errorf("%.60v: %v, want a %s error", tc.args, err, tc.code)
			}
			if pong, err := conn.Ping(ctx).Result(); pong != "PONG" || err != nil {
				t.Fatalf("connection unusable after %.60v: %q %v", tc.args, pong, err)
			}
		}
		// Nothing refused was written.
		if n, err := conn.Exists(ctx, "k").Result(); n != 0 || err != nil {
			t.Errorf("EXISTS after refused writes: %d %v", n, err)
		}
	})

	t.Run("quorum failure", func(t *testing.T) {
		// With two nodes stopped, W=3 cannot be met; the error carries
		// the HTTP API's code. The surviving node keeps answering.
		srvs[1].Close()
		srvs[2].Close()
		conn := c1.Conn()
		defer conn.Close()
		err := conn.Do(ctx, "DSET", "q", "v", "W", "3", "TIMEOUT", "500").Err()
		if code := errCode(err); code != "QUORUM_FAILED" && code != "UNAVAILABLE" {
			t.Fatalf("DSET W=3 with two nodes down: %v, want QUORUM_FAILED", err)
		}
		if !strings.Contains(err.Error(), "required=3") && errCode(err) == "QUORUM_FAILED" {
			t.Errorf("quorum error without required=3: %v", err)
		}
		if pong, err := conn.Ping(ctx).Result(); pong != "PONG" || err != nil {
			t.Fatalf("after a quorum failure: %q %v", pong, err)
		}
	})
}

// writeFile writes a test fixture.
func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestAuthAndRoles: with a tokens file, commands need AUTH (PING does
// not), a read token can GET and not SET, Redis 6's AUTH user pass works.
func TestAuthAndRoles(t *testing.T) {
	tokFile := filepath.Join(t.TempDir(), "tokens")
	writeFile(t, tokFile, "reader-token-0123456789 read\nwriter-token-0123456789 write\n")
	srv := startCluster(t, 1, func(c *server.Config) { c.Security.TokensFile = tokFile })[0]
	ctx := context.Background()

	anon := client(t, &redis.Options{Addr: srv.RESPAddr()})
	if pong, err := anon.Ping(ctx).Result(); pong != "PONG" || err != nil {
		t.Fatalf("PING without AUTH: %q %v", pong, err)
	}
	if err := anon.Get(ctx, "k").Err(); errCode(err) != "NOAUTH" {
		t.Fatalf("GET without AUTH: %v, want NOAUTH", err)
	}
	if err := anon.Set(ctx, "k", "v", 0).Err(); errCode(err) != "NOAUTH" {
		t.Fatalf("SET without AUTH: %v, want NOAUTH", err)
	}
	wrong := client(t, &redis.Options{Addr: srv.RESPAddr(), Password: "wrong-token-0123456789"})
	if err := wrong.Get(ctx, "k").Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("GET with an unknown token: %v, want WRONGPASS", err)
	}

	writer := client(t, &redis.Options{Addr: srv.RESPAddr(), Password: "writer-token-0123456789"})
	if err := writer.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET with a write token: %v", err)
	}
	// Redis 6's AUTH username password form.
	reader := client(t, &redis.Options{Addr: srv.RESPAddr(), Username: "default", Password: "reader-token-0123456789"})
	if got, err := reader.Get(ctx, "k").Result(); got != "v" || err != nil {
		t.Fatalf("GET with a read token: %q %v", got, err)
	}
	// HELLO 2 AUTH user token authenticates too (HELLO 3 is NOPROTO).
	hc := anon.Conn()
	defer hc.Close()
	if err := hc.Do(ctx, "HELLO", "2").Err(); errCode(err) != "NOAUTH" {
		t.Fatalf("HELLO 2 without AUTH: %v, want NOAUTH", err)
	}
	hello, err := hc.Do(ctx, "HELLO", "2", "AUTH", "app", "reader-token-0123456789").Slice()
	if err != nil || len(hello) != 14 || hello[1] != "dynago" {
		t.Fatalf("HELLO 2 AUTH: %v %v", hello, err)
	}
	if got, err := hc.Get(ctx, "k").Result(); got != "v" || err != nil {
		t.Fatalf("GET after HELLO 2 AUTH: %q %v", got, err)
	}
	if n, err := reader.Exists(ctx, "k").Result(); n != 1 || err != nil {
		t.Fatalf("EXISTS with a read token: %d %v", n, err)
	}
	for _, args := range [][]any{{"SET", "k", "w"}, {"DEL", "k"}, {"DSET", "k", "w"}, {"DDEL", "k"}} {
		if err := reader.Do(ctx, args...).Err(); errCode(err) != "NOPERM" {
			t.Errorf("%v with a read token: %v, want NOPERM", args, err)
		}
	}
	if got, err := writer.Get(ctx, "k").Result(); got != "v" || err != nil {
		t.Fatalf("k after refused writes: %q %v", got, err)
	}

	// AUTH on one connection changes its role; a failed AUTH keeps it.
	conn := anon.Conn()
	defer conn.Close()
	if err := conn.Do(ctx, "AUTH", "reader-token-0123456789").Err(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Set(ctx, "k", "x", 0).Err(); errCode(err) != "NOPERM" {
		t.Fatalf("SET after AUTH with a read token: %v", err)
	}
	if err := conn.Do(ctx, "AUTH", "nobody", "bad-token-0123456789").Err(); errCode(err) != "WRONGPASS" {
		t.Fatalf("AUTH with a bad token: %v", err)
	}
	if got, err := conn.Get(ctx, "k").Result(); got != "v" || err != nil {
		t.Fatalf("GET after a failed AUTH: %q %v, want the read role kept", got, err)
	}
	if err := conn.Do(ctx, "AUTH", "default", "writer-token-0123456789").Err(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Set(ctx, "k", "y", 0).Err(); err != nil {
		t.Fatalf("SET after AUTH with a write token: %v", err)
	}
	// A revoked token no longer authenticates new AUTHs after a reload.
	writeFile(t, tokFile, "writer-token-0123456789 write\n")
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Do(ctx, "AUTH", "reader-token-0123456789").Err(); errCode(err) != "WRONGPASS" {
		t.Fatalf("AUTH with a removed token after reload: %v", err)
	}
}

// TestTLS: with certificates, RESP speaks TLS with the node's certificate;
// plaintext gets nothing; a client certificate's role authenticates.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	for _, err := range []error{
		security.CreateCA(dir, time.Hour, false),
		security.CreateNode(dir, []string{"127.0.0.1"}, time.Hour),
		security.CreateClient(dir, "reader", security.RoleRead, time.Hour),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	tokFile := filepath.Join(dir, "tokens")
	writeFile(t, tokFile, "writer-token-0123456789 write\n")
	srv := startCluster(t, 1, func(c *server.Config) {
		c.Security = server.Security{CertsDir: dir, TokensFile: tokFile}
	})[0]
	ctx := context.Background()

	tlsCfg, err := security.ClientConfig(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	writer := client(t, &redis.Options{Addr: srv.RESPAddr(), Password: "writer-token-0123456789", TLSConfig: tlsCfg})
	if err := writer.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET over TLS with a token: %v", err)
	}
	certCfg, err := security.ClientConfig(dir, "reader")
	if err != nil {
		t.Fatal(err)
	}
	reader := client(t, &redis.Options{Addr: srv.RESPAddr(), TLSConfig: certCfg})
	if got, err := reader.Get(ctx, "k").Result(); got != "v" || err != nil {
		t.Fatalf("GET with a read client certificate: %q %v", got, err)
	}
	if err := reader.Set(ctx, "k", "w", 0).Err(); errCode(err) != "NOPERM" {
		t.Fatalf("SET with a read client certificate: %v, want NOPERM", err)
	}
	noCert := client(t, &redis.Options{Addr: srv.RESPAddr(), TLSConfig: tlsCfg})
	if err := noCert.Get(ctx, "k").Err(); errCode(err) != "NOAUTH" {
		t.Fatalf("GET over TLS without credentials: %v, want NOAUTH", err)
	}
	plain := client(t, &redis.Options{Addr: srv.RESPAddr(), Password: "writer-token-0123456789", DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
	plainCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if got, err := plain.Get(plainCtx, "k").Result(); err == nil || got == "v" {
		t.Fatalf("plaintext client on the TLS port: %q %v, want a failure", got, err)
	}
}

// TestPlaintextBeyondLoopbackNeedsInsecure: like HTTP, a RESP listener
// beyond loopback without certificates is refused unless --insecure.
func TestPlaintextBeyondLoopbackNeedsInsecure(t *testing.T) {
	cfg := server.Config{
		ID: "a", DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", RPCAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
		RESPAddr: "0.0.0.0:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	_, err := server.Start(cfg)
	if !errors.Is(err, server.ErrConfig) || !strings.Contains(err.Error(), "--resp-addr") || !strings.Contains(err.Error(), "--insecure") {
		t.Fatalf("plain RESP on 0.0.0.0: %v, want a refusal naming --resp-addr and --insecure", err)
	}
}
