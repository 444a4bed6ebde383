package chaos

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dynago/dynago/client"
)

// fakeStore is a one-copy key-value store with the API's read and write
// semantics, enough to run the workload and the checker in-process: a
// write carrying the context of a read supersedes exactly the siblings that
// read saw, a write without one is concurrent with everything stored.
type fakeStore struct {
	mu   sync.Mutex
	ver  map[string]int
	sibs map[string][]fakeSibling

	lww      bool // keep only the newest sibling: loses concurrent adds
	junk     bool // slip an element no client wrote into every write
	dead     bool // /cluster reports a member dead forever
	lagging  bool // the last node's own copy stays empty
	crashed  bool // the final heal finds a node that crashed by itself
	puts     int
	maxSibs  int
	requests int
}

type fakeSibling struct {
	ver   int
	value []byte
}

func newFakeStore() *fakeStore {
	return &fakeStore{ver: map[string]int{}, sibs: map[string][]fakeSibling{}}
}

// fakeCluster serves one fakeStore through several node addresses.
type fakeCluster struct {
	store *fakeStore
	srv   []*httptest.Server
	ids   []string

	mu    sync.Mutex
	calls []string
}

func newFakeCluster(t *testing.T, store *fakeStore, nodes int) *fakeCluster {
	t.Helper()
	fc := &fakeCluster{store: store}
	for i := range nodes {
		id := "f" + strconv.Itoa(i+1)
		fc.ids = append(fc.ids, id)
		srv := httptest.NewServer(store.handler(id, fc))
		t.Cleanup(srv.Close)
		fc.srv = append(fc.srv, srv)
	}
	return fc
}

func (fc *fakeCluster) record(call string) error {
	fc.mu.Lock()
	fc.calls = append(fc.calls, call)
	fc.mu.Unlock()
	return nil
}

func (fc *fakeCluster) count(prefix string) int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	n := 0
	for _, c := range fc.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func (fc *fakeCluster) Nodes() []string { return slices.Clone(fc.ids) }
func (fc *fakeCluster) HTTPAddr(id string) string {
	return strings.TrimPrefix(fc.srv[slices.Index(fc.ids, id)].URL, "http://")
}
func (fc *fakeCluster) Kill(_ context.Context, id string) error   { return fc.record("kill " + id) }
func (fc *fakeCluster) Start(_ context.Context, id string) error  { return fc.record("start " + id) }
func (fc *fakeCluster) Pause(_ context.Context, id string) error  { return fc.record("pause " + id) }
func (fc *fakeCluster) Resume(_ context.Context, id string) error { return fc.record("resume " + id) }
func (fc *fakeCluster) Wipe(_ context.Context, id string) error   { return fc.record("wipe " + id) }
func (fc *fakeCluster) Partition(_ context.Context, a, b []string) error {
	return fc.record("partition " + strings.Join(a, ",") + "|" + strings.Join(b, ","))
}
func (fc *fakeCluster) Heal(context.Context) error {
	fc.record("heal")
	if fc.store.crashed {
		return errors.New("f2 exited without being killed")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (s *fakeStore) handler(id string, fc *fakeCluster) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cluster", func(w http.ResponseWriter, r *http.Request) {
		type member struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		}
		var ms []member
		for i, o := range fc.ids {
			st := "alive"
			if s.dead && i == len(fc.ids)-1 {
				st = "dead"
			}
			ms = append(ms, member{o, st})
		}
		writeJSON(w, 200, map[string]any{"node": id, "n": len(fc.ids), "nodes": ms})
	})
	mux.HandleFunc("GET /kv/{key}/placement", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"key": r.PathValue("key"), "preference_list": fc.ids})
	})
	mux.HandleFunc("GET /admin/local/{key}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		key := r.PathValue("key")
		if len(s.sibs[key]) == 0 || (s.lagging && id == fc.ids[len(fc.ids)-1]) {
			writeJSON(w, 404, map[string]string{"error": "nothing", "code": "not_found"})
			return
		}
		type sib struct {
			Value   []byte `json:"value"`
			Deleted bool   `json:"deleted"`
		}
		var out []sib
		for _, x := range s.sibs[key] {
			out = append(out, sib{Value: x.value})
		}
		writeJSON(w, 200, map[string]any{"key": key, "node": id, "siblings": out})
	})
	mux.HandleFunc("GET /kv/{key}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.requests++
		key := r.PathValue("key")
		if len(s.sibs[key]) == 0 {
			writeJSON(w, 404, map[string]string{"error": "not found", "code": "not_found"})
			return
		}
		var vals [][]byte
		for _, x := range s.sibs[key] {
			vals = append(vals, x.value)
		}
		ctx := base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(s.ver[key])))
		w.Header().Set("X-Dynago-Context", ctx)
		writeJSON(w, 200, map[string]any{"key": key, "context": ctx, "siblings": vals})
	})
	mux.HandleFunc("PUT /kv/{key}", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			writeJSON(w, 400, map[string]string{"error": err.Error(), "code": "bad_request"})
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.requests++
		s.puts++
		key := r.PathValue("key")
		seen := 0
		if h := r.Header.Get("X-Dynago-Context"); h != "" {
			b, _ := base64.RawURLEncoding.DecodeString(h)
			seen, _ = strconv.Atoi(string(b))
		}
		if s.junk {
			body = append(body, []byte("\nnobody-wrote-this")...)
		}
		s.ver[key]++
		var keep []fakeSibling
		if !s.lww {
			for _, x := range s.sibs[key] {
				if x.ver > seen {
					keep = append(keep, x)
				}
			}
		}
		s.sibs[key] = append(keep, fakeSibling{ver: s.ver[key], value: body})
		s.maxSibs = max(s.maxSibs, len(s.sibs[key]))
		w.Header().Set("X-Dynago-Context", base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(s.ver[key]))))
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func fakeConfig(t *testing.T, nemesis ...string) Config {
	return Config{
		Duration: 2500 * time.Millisecond, Clients: 4, Keys: 2, Seed: 7, Nemesis: nemesis,
		DeadTimeout: 200 * time.Millisecond, ConvergeTimeout: time.Second,
		Log: t.Logf,
	}
}

func TestRunCorrectStoreLosesNothing(t *testing.T) {
	store := newFakeStore()
	fc := newFakeCluster(t, store, 3)
	rep, err := Run(context.Background(), fc, fakeConfig(t, Kill, Pause, Partition))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Valid || rep.Lost != 0 || rep.Unexpected != 0 || !rep.Converged {
		t.Fatalf("a correct store failed the check: %+v", rep)
	}
	if rep.Acked < 20 || rep.Attempted < rep.Acked || rep.ReadAvailability != 1 || rep.WriteAvailability != 1 {
		t.Fatalf("workload did not run as expected: %+v", rep)
	}
	// Concurrent adds to 2 keys by 4 clients must have made siblings, or
	// the LWW test below proves nothing about merging.
	store.mu.Lock()
	puts, maxSibs := store.puts, store.maxSibs
	store.mu.Unlock()
	if puts != rep.Attempted {
		t.Fatalf("store saw %d writes, report says %d attempted", puts, rep.Attempted)
	}
	if maxSibs < 2 {
		t.Fatalf("no concurrent adds (at most %d sibling): the workload tests no merging", maxSibs)
	}
	faults := fc.count("kill") + fc.count("pause") + fc.count("partition")
	if faults == 0 || fc.count("heal") == 0 {
		t.Fatalf("nemesis did nothing: %v", fc.calls)
	}
	if fc.count("kill") != fc.count("start") || fc.count("pause") != fc.count("resume") {
		t.Fatalf("a fault was not undone: %v", fc.calls)
	}
}

func TestRunCatchesLastWriteWins(t *testing.T) {
	store := newFakeStore()
	store.lww = true
	rep, err := Run(context.Background(), newFakeCluster(t, store, 3), fakeConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Lost == 0 || rep.Valid || len(rep.LostElements) == 0 {
		t.Fatalf("last-write-wins lost nothing by the checker's account: %+v", rep)
	}
}

func TestRunCatchesUnexpectedElements(t *testing.T) {
	store := newFakeStore()
	store.junk = true
	rep, err := Run(context.Background(), newFakeCluster(t, store, 3), fakeConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Unexpected == 0 || rep.Valid || !slices.Contains(rep.UnexpectedElements, "chaos-set-0/nobody-wrote-this") {
		t.Fatalf("junk element not reported: %+v", rep)
	}
}

func TestRunReportsNoConvergence(t *testing.T) {
	store := newFakeStore()
	store.dead = true
	start := time.Now()
	rep, err := Run(context.Background(), newFakeCluster(t, store, 3), fakeConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Converged || rep.Valid || !strings.Contains(rep.Unconverged, "f3 dead") || rep.ConvergenceS != 1 {
		t.Fatalf("a member dead forever passed as converged: %+v", rep)
	}
	if rep.Lost != 0 {
		t.Fatalf("lost %d on a store that loses nothing", rep.Lost)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("run took %v: convergence wait not bounded", took)
	}
}

func TestRunFailsWhenTheHealFails(t *testing.T) {
	store := newFakeStore()
	store.crashed = true
	rep, err := Run(context.Background(), newFakeCluster(t, store, 3), fakeConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Valid || !strings.Contains(rep.HealError, "exited without being killed") || rep.Lost != 0 {
		t.Fatalf("a node that crashed by itself passed unnoticed: %+v", rep)
	}
}

func TestWipeWaitsForFullReplication(t *testing.T) {
	old := wipeWait
	wipeWait = 300 * time.Millisecond
	defer func() { wipeWait = old }()

	store := newFakeStore()
	fc := newFakeCluster(t, store, 3)
	rep, err := Run(context.Background(), fc, fakeConfig(t, Wipe))
	if err != nil {
		t.Fatal(err)
	}
	if fc.count("wipe") == 0 || rep.Nemesis[Wipe] != fc.count("wipe") {
		t.Fatalf("fully replicated store: wipes %d, report %v", fc.count("wipe"), rep.Nemesis)
	}

	lag := newFakeStore()
	lag.lagging = true
	fc = newFakeCluster(t, lag, 3)
	rep, err = Run(context.Background(), fc, fakeConfig(t, Wipe))
	if err != nil {
		t.Fatal(err)
	}
	if fc.count("wipe") != 0 || rep.NemesisSkipped[Wipe] == 0 {
		t.Fatalf("wiped although a replica lacked acknowledged elements: calls %v, report %+v", fc.calls, rep)
	}
	// The lagging replica is a convergence failure too.
	if rep.Converged {
		t.Fatalf("a replica missing elements passed as converged: %+v", rep)
	}
}

func TestCheck(t *testing.T) {
	attempted := map[string]int{"c0-1": 0, "c0-2": 0, "c1-1": 1, "c1-2": 1}
	acked := []ackedElem{{"c0-1", 0}, {"c1-1", 1}, {"c1-2", 1}}
	final := []set{
		{"c0-1": {}, "c0-2": {}, "c1-2": {}}, // c0-2 unknown outcome: fine; c1-2 on the wrong key
		{"c1-1": {}, "x": {}},
	}
	lost, unexpected := check(attempted, acked, final)
	if !slices.Equal(lost, []string{"chaos-set-1/c1-2"}) {
		t.Errorf("lost = %v", lost)
	}
	if !slices.Equal(unexpected, []string{"chaos-set-0/c1-2", "chaos-set-1/x"}) {
		t.Errorf("unexpected = %v", unexpected)
	}
}

func TestSetEncoding(t *testing.T) {
	s := set{}
	s.addSiblings([][]byte{[]byte("b\na"), []byte(""), []byte("c\n\na")})
	if got := string(encodeSet(s)); got != "a\nb\nc" {
		t.Fatalf("union of siblings = %q", got)
	}
}

func TestParseNemesis(t *testing.T) {
	for in, want := range map[string][]string{
		"all": AllNemeses, "none": {}, "": {}, "kill, wipe,kill": {Kill, Wipe},
	} {
		got, err := ParseNemesis(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseNemesis(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseNemesis("kill,meteor"); err == nil {
		t.Error("unknown nemesis accepted")
	}
	if err := (&Config{Nemesis: []string{"meteor"}}).validate(); err == nil {
		t.Error("Config accepted an unknown nemesis")
	}
}

func TestErrClass(t *testing.T) {
	for want, err := range map[string]error{
		"quorum_failed":   &client.QuorumError{Acks: 1, Required: 2, Op: "get"},
		"503_unavailable": &client.APIError{Status: 503, Code: "unavailable"},
		"502":             &client.APIError{Status: 502},
		"timeout":         fmt.Errorf("get: %w", context.DeadlineExceeded),
		"refused":         &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)},
		"reset":           fmt.Errorf("put: %w", io.ErrUnexpectedEOF),
		"net_dial":        &net.OpError{Op: "dial", Err: errors.New("no route")},
		"other":           errors.New("odd"),
	} {
		if got := errClass(err); got != want {
			t.Errorf("errClass(%v) = %q, want %q", err, got, want)
		}
	}
}
