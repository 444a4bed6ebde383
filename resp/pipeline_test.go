package resp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/dynago/dynago/httpapi/httpapitest"
	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/object"
)

// slowBackend stores values in a map and takes delay per request, counting
// how many requests are in flight at once.
type slowBackend struct {
	delay time.Duration

	mu          sync.Mutex
	data        map[string][]byte
	inFlight    int
	maxInFlight int
	order       []string // "op key value" in the order requests started
}

func (b *slowBackend) Defaults() (n, r, w int) { return 3, 2, 2 }

func (b *slowBackend) Do(ctx context.Context, req node.Request) node.Reply {
	b.mu.Lock()
	b.inFlight++
	b.maxInFlight = max(b.maxInFlight, b.inFlight)
	o := fmt.Sprintf("%s %s %s", req.Op, req.Key, req.Value)
	if req.Replace {
		o += " replace"
	}
	b.order = append(b.order, o)
	b.mu.Unlock()
	select {
	case <-time.After(b.delay):
	case <-ctx.Done():
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.inFlight--
	switch req.Op {
	case node.OpPut:
		b.data[string(req.Key)] = req.Value
		return node.Reply{Code: node.CodeOK}
	case node.OpDelete:
		delete(b.data, string(req.Key))
		return node.Reply{Code: node.CodeOK}
	case node.OpGet:
		if v, ok := b.data[string(req.Key)]; ok {
			return node.Reply{Code: node.CodeOK, Siblings: []object.Sibling{{Value: v}}}
		}
	}
	return node.Reply{Code: node.CodeNotFound}
}

func (b *slowBackend) max() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.maxInFlight
}

// serve runs a Server over b on a loopback port until the test ends.
func serve(t testing.TB, b Backend, cfg Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(b, cfg)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// TestPipelineRunsDistinctKeysAtOnce: a pipeline's writes to distinct keys
// are in flight together (so that they can share fsyncs), writes to one key
// run one after the other in order, and replies keep the command order.
func TestPipelineRunsDistinctKeysAtOnce(t *testing.T) {
	b := &slowBackend{delay: 20 * time.Millisecond, data: map[string][]byte{}}
	addr := serve(t, b, Config{})
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	ctx := context.Background()

	pipe := c.Pipeline()
	var gets []*redis.StringCmd
	for i := range 16 {
		pipe.Do(ctx, "DSET", fmt.Sprintf("k%d", i), fmt.Sprint(i))
	}
	for i := range 16 {
		gets = append(gets, pipe.Get(ctx, fmt.Sprintf("k%d", i)))
	}
	start := time.Now()
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	for i, g := range gets {
		if v, err := g.Result(); v != fmt.Sprint(i) || err != nil {
			t.Errorf("GET k%d after its DSET in the pipeline: %q %v", i, v, err)
		}
	}
	if m := b.max(); m < 2 {
		t.Errorf("at most %d request in flight for 16 writes to distinct keys; want them concurrent", m)
	}
	// 32 requests one at a time would take 640 ms.
	if took > 500*time.Millisecond {
		t.Logf("pipeline took %v (a loaded machine?)", took)
	}

	// One key: each SET is a read then a write, strictly in order.
	b.mu.Lock()
	b.maxInFlight, b.order = 0, nil
	b.mu.Unlock()
	pipe = c.Pipeline()
	for i := range 5 {
		pipe.Set(ctx, "same", fmt.Sprint(i), 0)
	}
	final := pipe.Get(ctx, "same")
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := final.Result(); v != "4" {
		t.Errorf("GET after 5 SETs of one key in a pipeline: %q, want 4", v)
	}
	if m := b.max(); m != 1 {
		t.Errorf("%d requests on one key in flight at once; want 1", m)
	}
	var puts []string
	for _, o := range b.order {
		if strings.HasPrefix(o, "put") {
			puts = append(puts, o)
		}
	}
	if strings.Join(puts, ",") != "put same 0 replace,put same 1 replace,put same 2 replace,put same 3 replace,put same 4 replace" {
		t.Errorf("writes to one key ran as %q", puts)
	}
}

// TestOversizedCommandClosesConnection: a client that streams more than a
// command can hold gets an error and is cut off, instead of being buffered.
func TestOversizedCommandClosesConnection(t *testing.T) {
	b := &slowBackend{data: map[string][]byte{}}
	addr := serve(t, b, Config{MaxValueSize: 1024, MaxKeySize: 16})
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	// Declare a 1 GiB value and send 1 MiB of it, more than the limit of
	// 1024 + 16 + 64 KiB bytes per command.
	go func() {
		_, _ = conn.Write([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1073741824\r\n"))
		chunk := make([]byte, 64<<10)
		for range 16 {
			if _, err := conn.Write(chunk); err != nil {
				return
			}
		}
	}()
	line, err := bufio.NewReader(conn).ReadString('\n')
	if !strings.HasPrefix(line, "-TOO_LARGE") {
		t.Fatalf("reply to an oversized command: %q %v", line, err)
	}
	// The server closes with the client's bytes unread: a reset, or EOF.
	if _, err := io.ReadAll(conn); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("connection not closed after an oversized command: %v", err)
	}
}

// TestInlineCommandsAndQuit: redcon also reads telnet-style inline
// commands; QUIT answers and closes after the replies before it.
func TestInlineCommandsAndQuit(t *testing.T) {
	addr := serve(t, &slowBackend{data: map[string][]byte{}}, Config{})
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("PING\r\nDSET a 1\r\nGET a\r\nQUIT\r\nPING\r\n")); err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	if want := "+PONG\r\n$0\r\n\r\n$1\r\n1\r\n+OK\r\n"; string(all) != want {
		t.Fatalf("inline session: %q, want %q", all, want)
	}
}

// TestHTTPRequestClosesConnection: a browser's POST to the RESP port (a
// cross-protocol attack carrying commands in its body) runs nothing.
func TestHTTPRequestClosesConnection(t *testing.T) {
	b := &slowBackend{data: map[string][]byte{}}
	addr := serve(t, b, Config{})
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	body := "DSET evil 1\r\n"
	req := fmt.Sprintf("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(conn)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatal(err)
	}
	if len(all) != 0 {
		t.Errorf("answered an HTTP request: %q", all)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.order) != 0 {
		t.Errorf("an HTTP request ran %q", b.order)
	}
}

// TestMultiKeyCommandBoundsConcurrency: EXISTS of many keys runs at most
// MaxInFlight requests at once, and counts every key.
func TestMultiKeyCommandBoundsConcurrency(t *testing.T) {
	b := &slowBackend{delay: 2 * time.Millisecond, data: map[string][]byte{"k7": []byte("x"), "k100": []byte("y")}}
	addr := serve(t, b, Config{MaxInFlight: 4})
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	keys := make([]string, 200)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
	}
	n, err := c.Exists(context.Background(), keys...).Result()
	if n != 2 || err != nil {
		t.Fatalf("EXISTS of 200 keys, 2 present: %d %v", n, err)
	}
	if m := b.max(); m > 4 || m < 2 {
		t.Errorf("%d requests in flight at most; want 2..4 (MaxInFlight 4)", m)
	}
}

// TestRandomCommandsAnswerEachOnce sends seeded random commands (names
// from the command table and junk, arguments of every shape) in
// pipelines over the in-memory backend: every command gets exactly one
// reply, none crashes the server, and the connection stays usable.
func TestRandomCommandsAnswerEachOnce(t *testing.T) {
	addr := serve(t, httpapitest.New(), Config{MaxValueSize: 4096, MaxKeySize: 64})
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, PoolSize: 1, Protocol: 2})
	defer c.Close()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 11))
	var names []string
	for n := range commands {
		if n != "quit" { // QUIT ends the connection by design
			names = append(names, n)
		}
	}
	slices.Sort(names)
	names = append(names, "nosuch", "")
	words := []string{"", "R", "W", "TIMEOUT", "CONTEXT", "0", "1", "3", "4", "-1", "99999999999999999999",
		"AUTH", "SETNAME", "GET", "2", "3", "k", "key", strings.Repeat("k", 65), strings.Repeat("v", 5000), "\x00\xff\r\n", "AQELbjE6"}
	for round := range 20 {
		pipe := c.Pipeline()
		var cmds []*redis.Cmd
		for range 50 {
			args := []any{names[rng.IntN(len(names))]}
			for range rng.IntN(6) {
				args = append(args, words[rng.IntN(len(words))])
			}
			if args[0] == "" {
				args[0] = "x" // go-redis cannot send an empty command name
			}
			cmds = append(cmds, pipe.Do(ctx, args...))
		}
		_, _ = pipe.Exec(ctx)
		for _, cmd := range cmds {
			var re redis.Error
			if err := cmd.Err(); err != nil && !errors.Is(err, redis.Nil) && !errors.As(err, &re) {
				t.Fatalf("round %d: %v answered %v, not a reply", round, cmd.Args(), err)
			}
		}
		if pong, err := c.Ping(ctx).Result(); pong != "PONG" || err != nil {
			t.Fatalf("round %d: PING after random commands: %q %v", round, pong, err)
		}
	}
}

// TestMaxConns: connections beyond MaxConns are closed at once and
// counted; the gauge counts the open ones.
func TestMaxConns(t *testing.T) {
	reg := prometheus.NewRegistry()
	addr := serve(t, &slowBackend{data: map[string][]byte{}}, Config{MaxConns: 1, Registry: reg})
	first, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if err := first.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(first)
	if _, err := first.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadString('\n'); line != "+PONG\r\n" || err != nil {
		t.Fatalf("first connection: %q %v", line, err)
	}
	second, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if err := second.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, _ = second.Write([]byte("PING\r\n"))
	if all, err := io.ReadAll(second); len(all) != 0 || (err != nil && !errors.Is(err, syscall.ECONNRESET)) {
		t.Fatalf("connection over MaxConns: %q %v, want it closed unanswered", all, err)
	}
	if got := metricValue(t, reg, "dynago_resp_connections_rejected_total"); got != 1 {
		t.Errorf("rejected connections: %v, want 1", got)
	}
	if got := metricValue(t, reg, "dynago_resp_connections"); got != 1 {
		t.Errorf("open connections: %v, want 1", got)
	}
}

// metricValue reads the counter or gauge named name from reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// SET is one write that replaces the coordinator's copy (node.Request.
// Replace), not a read followed by a write; DSET without CONTEXT is blind.
func TestSetIsOneReplacingWrite(t *testing.T) {
	b := &slowBackend{data: map[string][]byte{}}
	c := redis.NewClient(&redis.Options{Addr: serve(t, b, Config{}), MaxRetries: -1})
	defer c.Close()
	if err := c.Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(t.Context(), "DSET", "d", "w").Err(); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	got := slices.Clone(b.order)
	b.mu.Unlock()
	if want := []string{"put k v replace", "put d w"}; !slices.Equal(got, want) {
		t.Fatalf("SET k v, DSET d w sent %q to the node, want %q", got, want)
	}
}

// batchingBackend is a slowBackend that also takes batches (Batcher),
// recording their sizes; each request of a batch runs as Do would.
type batchingBackend struct {
	*slowBackend
	bmu     sync.Mutex
	batches []int
}

func (b *batchingBackend) DoBatch(ctx context.Context, reqs []node.Request, reps []node.Reply) {
	b.bmu.Lock()
	b.batches = append(b.batches, len(reqs))
	b.bmu.Unlock()
	var wg sync.WaitGroup
	for i := range reqs {
		wg.Go(func() { reps[i] = b.Do(ctx, reqs[i]) })
	}
	wg.Wait()
}

// TestPipelineWaveIsOneBatch: with a Batcher, a wave's single-request
// commands reach the backend as one batch, commands of several requests
// (DEL, EXISTS) still run beside it, replies keep the command order, and a
// command that must see an earlier one's write waits for the next wave.
func TestPipelineWaveIsOneBatch(t *testing.T) {
	b := &batchingBackend{slowBackend: &slowBackend{delay: 5 * time.Millisecond, data: map[string][]byte{"gone": []byte("x")}}}
	addr := serve(t, b, Config{})
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	ctx := context.Background()

	pipe := c.Pipeline()
	var sets []*redis.StatusCmd
	for i := range 8 {
		sets = append(sets, pipe.Set(ctx, fmt.Sprintf("k%d", i), fmt.Sprint(i), 0))
	}
	del := pipe.Del(ctx, "gone")
	exists := pipe.Exists(ctx, "other")
	var gets []*redis.StringCmd
	for i := range 8 {
		gets = append(gets, pipe.Get(ctx, fmt.Sprintf("k%d", i)))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for i, s := range sets {
		if err := s.Err(); err != nil {
			t.Errorf("SET k%d: %v", i, err)
		}
	}
	if n, err := del.Result(); n != 1 || err != nil {
		t.Errorf("DEL of a live key in the pipeline: %d %v, want 1", n, err)
	}
	if n, err := exists.Result(); n != 0 || err != nil {
		t.Errorf("EXISTS of a missing key in the pipeline: %d %v, want 0", n, err)
	}
	for i, g := range gets {
		if v, err := g.Result(); v != fmt.Sprint(i) || err != nil {
			t.Errorf("GET k%d after its SET in the pipeline: %q %v", i, v, err)
		}
	}
	b.bmu.Lock()
	defer b.bmu.Unlock()
	// The GETs read keys the SETs write: two waves, each one batch of 8.
	if !slices.Equal(b.batches, []int{8, 8}) {
		t.Errorf("batches of sizes %v, want [8 8]", b.batches)
	}
}
