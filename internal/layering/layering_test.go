package layering

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/dynago/dynago"

// core are the packages of the protocol core, the roots of the check.
var core = []string{"ring", "dvv", "object", "merkle", "coord", "cluster", "node"}

// forbidden are the packages (and everything under them) the core must not
// reach: the storage engine, RPC, gossip, metrics and HTTP, and dynago's
// own drivers and adapters, which import those.
var forbidden = []string{
	"github.com/cockroachdb/pebble",
	"google.golang.org/grpc",
	"github.com/hashicorp/memberlist",
	"github.com/prometheus",
	"net/http",
	module + "/storage/pebbledb",
	module + "/transport",
	module + "/membership",
	module + "/fault",
	module + "/server",
	module + "/httpapi",
	module + "/client",
	module + "/dashboard",
	module + "/devcluster",
}

// pkg is the part of `go list -json` output the check reads.
type pkg struct {
	ImportPath string
	Standard   bool
	Imports    []string
	Error      *struct{ Err string }
}

// graph is import path -> the packages it imports.
type graph map[string]*pkg

// goList runs `go list -deps -json` on the given packages.
func goList(t *testing.T, paths ...string) graph {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(goCmd, append([]string{"list", "-deps", "-json"}, paths...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	g := graph{}
	dec := json.NewDecoder(&stdout)
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		if p.Error != nil {
			t.Fatalf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		g[p.ImportPath] = &p
	}
	return g
}

// under reports whether path is prefix or a package under it.
func under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// chain returns the shortest import chain from root to a package that
// bad accepts, or nil if root reaches none. A breadth-first walk, so the
// chain shown is the most direct one and a reader can cut it.
func (g graph) chain(root string, bad func(string) bool) []string {
	prev := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if bad(p) {
			var out []string
			for ; p != ""; p = prev[p] {
				out = append(out, p)
			}
			slices.Reverse(out)
			return out
		}
		if g[p] == nil {
			continue
		}
		for _, q := range g[p].Imports {
			if _, seen := prev[q]; !seen {
				prev[q] = p
				queue = append(queue, q)
			}
		}
	}
	return nil
}

// violations lists, per root, the chains that reach each forbidden package
// (one chain per forbidden prefix, so the message stays short).
func (g graph) violations(roots, forbidden []string) []string {
	var out []string
	for _, r := range roots {
		for _, f := range forbidden {
			if c := g.chain(r, func(p string) bool { return under(p, f) }); c != nil {
				out = append(out, strings.Join(c, " -> "))
			}
		}
	}
	return out
}

func TestCoreLinksNoEngineRPCGossipMetricsOrHTTP(t *testing.T) {
	var roots []string
	for _, c := range core {
		roots = append(roots, module+"/"+c)
	}
	g := goList(t, roots...)
	for _, r := range roots {
		if g[r] == nil {
			t.Fatalf("go list did not list core package %s", r)
		}
	}
	for _, v := range g.violations(roots, forbidden) {
		t.Errorf("the protocol core must not link this (see docs/ARCHITECTURE.md, the dependency rule):\n\t%s", v)
	}
}

// storage is what the core stands on: its key layout, Engine and the
// in-memory engines. Its only imports outside the standard library and
// itself are btree (for Mem) and internal/wire (the varint helpers it
// shares with the core's encodings, itself standard library only); the
// daemon's engine is storage/pebbledb.
func TestStorageImportsOnlyBtree(t *testing.T) {
	root := module + "/storage"
	g := goList(t, root)
	allowed := func(p string) bool {
		return p == root || p == module+"/internal/wire" || under(p, "github.com/google/btree")
	}
	if c := g.chain(root, func(p string) bool { return !g[p].Standard && !allowed(p) }); c != nil {
		t.Errorf("storage links a package other than btree and internal/wire outside the standard library:\n\t%s", strings.Join(c, " -> "))
	}
}

// The check itself must catch an indirect import and name its chain: a
// synthetic graph where the core reaches gRPC two steps away.
func TestViolationsNameTheChain(t *testing.T) {
	g := graph{
		"a/node":                          {ImportPath: "a/node", Imports: []string{"a/storage", "fmt"}},
		"a/storage":                       {ImportPath: "a/storage", Imports: []string{"a/engine"}},
		"a/engine":                        {ImportPath: "a/engine", Imports: []string{"google.golang.org/grpc/codes"}},
		"google.golang.org/grpc/codes":    {ImportPath: "google.golang.org/grpc/codes"},
		"fmt":                             {ImportPath: "fmt", Standard: true},
		"google.golang.org/grpcfake/norm": {ImportPath: "google.golang.org/grpcfake/norm"},
	}
	got := g.violations([]string{"a/node"}, []string{"google.golang.org/grpc", "net/http"})
	want := []string{"a/node -> a/storage -> a/engine -> google.golang.org/grpc/codes"}
	if !slices.Equal(got, want) {
		t.Errorf("violations = %q, want %q", got, want)
	}
	// A prefix matches whole path elements only.
	if under("google.golang.org/grpcfake/norm", "google.golang.org/grpc") {
		t.Error(`under("google.golang.org/grpcfake/norm", "google.golang.org/grpc") = true`)
	}
	if got := g.violations([]string{"a/node"}, []string{"net/http"}); len(got) != 0 {
		t.Errorf("violations without a forbidden package = %q", got)
	}
}

// api is the HTTP contract as Go types, read by clients, the dashboard and
// the CLI: it must stay linkable by anything, so its own imports are ring
// and the standard library only, and it links no net/http. internal/wire is
// shared by the core's encodings and imports the standard library only.
func TestAPIAndWireImportOnlyRingAndStdlib(t *testing.T) {
	for root, allowed := range map[string][]string{
		module + "/api":           {module + "/ring"},
		module + "/internal/wire": nil,
	} {
		g := goList(t, root)
		if g[root] == nil {
			t.Fatalf("go list did not list %s", root)
		}
		for _, p := range g[root].Imports {
			if !g[p].Standard && !slices.Contains(allowed, p) {
				t.Errorf("%s imports %s; it may import only %v and the standard library", root, p, allowed)
			}
		}
		if c := g.chain(root, func(p string) bool { return under(p, "net/http") }); c != nil {
			t.Errorf("%s links net/http:\n\t%s", root, strings.Join(c, " -> "))
		}
	}
}

// testHelpers are the shared test helpers. They import "testing", start
// whole clusters or fake a node in memory, so only _test.go files may
// import them: a production package that did would ship test code (and
// the testing flags) in the daemon and the CLI.
var testHelpers = []string{
	module + "/internal/testutil",
	module + "/server/servertest",
	module + "/httpapi/httpapitest",
}

func TestNoProductionPackageLinksTestHelpers(t *testing.T) {
	// go list without -test lists the packages' own imports only, so any
	// path from a module package to a helper is a production import.
	g := goList(t, module+"/...")
	var roots []string
	for p := range g {
		if under(p, module) && !slices.Contains(testHelpers, p) && !strings.HasPrefix(p, module+"/internal/layering") {
			roots = append(roots, p)
		}
	}
	slices.Sort(roots)
	for _, v := range g.violations(roots, testHelpers) {
		t.Errorf("only tests may import the shared test helpers:\n\t%s", v)
	}
}
