package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynago/dynago/httpapi/httpapitest"
	"github.com/dynago/dynago/ring"
)

// cliNode starts the real HTTP API over a fake backend and points the
// client commands at it through DYNAGO_ADDR.
func cliNode(t *testing.T) (string, *httpapitest.Backend) {
	t.Helper()
	b := httpapitest.New()
	addr := httpapitest.Serve(t, b, 1)[0]
	t.Setenv("DYNAGO_ADDR", addr)
	return addr, b
}

// run runs a client command with in as stdin and returns its stdout.
func run(t *testing.T, in string, args ...string) (string, error) {
	t.Helper()
	out, _, err := run2(t, in, args...)
	return out, err
}

// run2 is run that also returns what the command wrote to stderr.
func run2(t *testing.T, in string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	oldIn, oldOut, oldErr := stdin, stdout, stderr
	stdin, stdout, stderr = strings.NewReader(in), &out, &errOut
	defer func() { stdin, stdout, stderr = oldIn, oldOut, oldErr }()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err := execute(ctx, args)
	return out.String(), errOut.String(), err
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(t, "", args...)
	if err != nil {
		t.Fatalf("dynago %s: %v (output %q)", strings.Join(args, " "), err, out)
	}
	return out
}

var contextLine = regexp.MustCompile(`(?m)^context: ([A-Za-z0-9_-]+)$`)

// token returns the context token printed in out.
func token(t *testing.T, out string) string {
	t.Helper()
	m := contextLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no context line in %q", out)
	}
	return m[1]
}

func TestCLIPutGetResolveDelete(t *testing.T) {
	_, b := cliNode(t)

	putTok := token(t, mustRun(t, "put", "cart", "milk"))
	out := mustRun(t, "get", "cart")
	if want := "milk\ncontext: " + putTok + "\n"; out != want {
		t.Fatalf("get = %q, want %q", out, want)
	}

	// A second blind put: two siblings, numbered.
	mustRun(t, "put", "cart", "eggs")
	out = mustRun(t, "get", "cart")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "sibling 1: ") || !strings.HasPrefix(lines[1], "sibling 2: ") ||
		!strings.Contains(out, ": milk\n") || !strings.Contains(out, ": eggs\n") {
		t.Fatalf("get of two siblings = %q", out)
	}

	// get says, on stderr, how to resolve them: a command that runs as
	// printed, once VALUE is filled in.
	_, hint, err := run2(t, "", "get", "cart")
	if err != nil || !strings.Contains(hint, "2 siblings") || !strings.Contains(hint, "dynago put --context "+token(t, out)+" -- cart VALUE") {
		t.Fatalf("get of two siblings said on stderr %q (%v), want the put that resolves them", hint, err)
	}
	// Run as printed (VALUE filled in), it leaves one value.
	hintLines := strings.Split(strings.TrimSpace(hint), "\n")
	cmdline := strings.Fields(strings.ReplaceAll(hintLines[len(hintLines)-1], "VALUE", "milk+eggs"))
	mustRun(t, cmdline[1:]...)
	if got := mustRun(t, "get", "cart"); !strings.HasPrefix(got, "milk+eggs\ncontext: ") {
		t.Fatalf("get after running the printed command = %q", got)
	}
	mustRun(t, "put", "cart", "milk")
	mustRun(t, "put", "cart", "eggs")
	out = mustRun(t, "get", "cart")

	// put --context supersedes both; flags may follow the arguments.
	mustRun(t, "put", "cart", "eggs,milk", "--context", token(t, out), "--w", "3", "--timeout", "1500ms")
	out = mustRun(t, "get", "--r", "1", "cart")
	if !strings.HasPrefix(out, "eggs,milk\ncontext: ") {
		t.Fatalf("get after resolving = %q", out)
	}
	reqs := b.Requests()
	if put := reqs[len(reqs)-2]; put.W != 3 || put.Timeout != 1500*time.Millisecond {
		t.Errorf("put --w 3 --timeout 1500ms reached the node as W=%d Timeout=%v", put.W, put.Timeout)
	}
	if get := reqs[len(reqs)-1]; get.R != 1 {
		t.Errorf("get --r 1 reached the node as R=%d", get.R)
	}

	// del without --context reads first and deletes what it read.
	if out := mustRun(t, "del", "cart"); out != "deleted\n" {
		t.Fatalf("del = %q", out)
	}
	out, err = run(t, "", "get", "cart")
	if !errors.Is(err, errNotFound) || errors.Is(err, errUsage) {
		t.Fatalf("get of a deleted key: %v, want not found", err)
	}
	if !contextLine.MatchString(out) {
		t.Errorf("get of a deleted key printed %q, want the tombstone's context", out)
	}
	if _, err := run(t, "", "del", "cart"); !errors.Is(err, errNotFound) {
		t.Fatalf("del of a deleted key: %v, want not found", err)
	}
}

func TestCLIGetMissingKey(t *testing.T) {
	cliNode(t)
	out, err := run(t, "", "get", "nothing")
	if !errors.Is(err, errNotFound) || out != "" || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("get of a never-written key = %q, %v", out, err)
	}
	out, err = run(t, "", "get", "--json", "nothing")
	if !errors.Is(err, errNotFound) || out != `{"key":"nothing","context":"","siblings":[]}`+"\n" {
		t.Fatalf("get --json of a never-written key = %q, %v", out, err)
	}
}

func TestCLIPutFromStdin(t *testing.T) {
	cliNode(t)
	if _, err := run(t, "line one\nline two\n", "put", "doc", "-"); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, "get", "--json", "doc")
	var v struct {
		Key      string
		Context  string
		Siblings [][]byte
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("get --json printed %q: %v", out, err)
	}
	if v.Key != "doc" || v.Context == "" || len(v.Siblings) != 1 || string(v.Siblings[0]) != "line one\nline two\n" {
		t.Fatalf("get --json = %q", out)
	}
	// "--" lets a value start with a dash.
	mustRun(t, "put", "--context", v.Context, "doc", "--", "-v")
	if out := mustRun(t, "get", "doc"); !strings.HasPrefix(out, "-v\n") {
		t.Fatalf("get after put -- -v = %q", out)
	}
}

func TestCLIDelWithContext(t *testing.T) {
	_, b := cliNode(t)
	tok := token(t, mustRun(t, "put", "k", "v"))
	mustRun(t, "del", "--context", tok, "k")
	if n := len(b.Requests()); n != 2 {
		t.Fatalf("del --context sent %d requests in all, want put and delete only", n)
	}
	if _, err := run(t, "", "get", "k"); !errors.Is(err, errNotFound) {
		t.Fatalf("get after del = %v", err)
	}
}

func TestCLIStatus(t *testing.T) {
	_, b := cliNode(t)
	b.SetStatus("n4", "dead")
	out := mustRun(t, "status")
	counts := b.Ring().PartitionCounts()
	if !strings.HasPrefix(out, "ring version 1, 8 partitions, N=3 R=2 W=2 (as seen by n1)\n\n") {
		t.Fatalf("status header = %q", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")[2:]
	if len(lines) != 5 || strings.Join(strings.Fields(lines[0]), " ") != "NODE HTTP ADDR STATUS PARTITIONS VERSION" {
		t.Fatalf("status table = %q", lines)
	}
	for i, id := range []string{"n1", "n2", "n3", "n4"} {
		status := "alive"
		if id == "n4" {
			status = "dead"
		}
		version := "v1.2.0 (0123456789ab)"
		if id == "n4" {
			version = "-" // a node that gossips no build
		}
		want := strings.Join([]string{id, "127.0.0.1:910" + id[1:], status, strconv.Itoa(counts[ring.NodeID(id)]), version}, " ")
		if got := strings.Join(strings.Fields(lines[i+1]), " "); got != want {
			t.Errorf("status row %d = %q, want %q", i, got, want)
		}
	}
}

func TestCLIWhere(t *testing.T) {
	_, b := cliNode(t)
	out := mustRun(t, "where", "a/b")
	rg := b.Ring()
	p := rg.PartitionOf([]byte("a/b"))
	var pref, fall []string
	for _, id := range rg.PreferenceList(p) {
		pref = append(pref, string(id))
	}
	for _, id := range rg.Fallbacks(p) {
		fall = append(fall, string(id))
	}
	want := "partition:       " + strconv.Itoa(p) + "\npreference list: " + strings.Join(pref, " ") + "\nfallbacks:       " + strings.Join(fall, " ") + "\n"
	if out != want {
		t.Fatalf("where = %q, want %q", out, want)
	}
}

func TestCLIAddr(t *testing.T) {
	addr, b := cliNode(t)
	t.Setenv("DYNAGO_ADDR", "")
	// --addr takes a comma-separated list; an unreachable node is skipped.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	for range 2 {
		mustRun(t, "put", "--addr", dead+", "+addr, "k", "v")
	}
	if n := len(b.Requests()); n != 2 {
		t.Fatalf("node saw %d puts, want 2", n)
	}
	// Without --addr or DYNAGO_ADDR the default is 127.0.0.1:9101, which a
	// test cannot own; an unusable list is a usage error.
	if _, err := run(t, "", "get", "--addr", " , ", "k"); !errors.Is(err, errUsage) {
		t.Fatalf("get --addr ' , ' = %v, want a usage error", err)
	}
}

func TestCLIUsageErrors(t *testing.T) {
	cliNode(t)
	for _, args := range [][]string{
		{"put", "k"},
		{"put", "k", "v", "extra"},
		{"put", "--w", "-1", "k", "v"},
		{"put", "--w", "many", "k", "v"},
		{"put", "--timeout", "5", "k", "v"},
		{"put", "--context", "!!", "k", "v"},
		{"put", "--nope", "k", "v"},
		{"get"},
		{"get", "a", "b"},
		{"get", "--r", "-2", "k"},
		{"del"},
		{"status", "extra"},
		{"where"},
		{"get", "--addr", "ftp://x", "k"},
	} {
		if _, err := run(t, "", args...); !errors.Is(err, errUsage) {
			t.Errorf("dynago %s: %v, want a usage error", strings.Join(args, " "), err)
		}
	}
	if out, err := run(t, "", "get", "-h"); err != nil || !strings.Contains(out, "--r int") {
		t.Errorf("get -h = %v, %q; want its help and no error", err, out)
	}
	// A value the node rejects is an error, but not one of usage.
	_, err := run(t, "", "put", "--w", "9", "k", "v")
	if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), "bad_parameter") {
		t.Errorf("put --w 9 = %v, want the node's bad_parameter", err)
	}
}

func TestCLIUsageTextDocumentsExitStatus(t *testing.T) {
	out, err := run(t, "", "get", "-h")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "1 on failure, and when the key is not found") {
		t.Fatalf("get -h does not document the exit status:\n%s", out)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"cart":         "cart",
		"user:42/cart": "user:42/cart",
		"two words":    "'two words'",
		"it's":         `'it'\''s'`,
		"":             "''",
		"$HOME":        "'$HOME'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
