package dashboard_test

// The harness behind the browser tests: it builds the dynago binary, runs
// `dynago dev` as a subprocess, starts headless Debian chromium through
// chromedp, and offers small polling helpers. Everything it starts is
// bounded in time and killed on cleanup, also when a test fails.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/dynago/dynago/devcluster"
	"github.com/dynago/dynago/internal/testutil"
)

// chromiumPath is where Debian's chromium package (installed by
// scripts/install-test-deps.sh) puts its launcher.
const chromiumPath = "/usr/bin/chromium"

// stepTimeout bounds each browser step. The machine running `make test` has
// two cores shared with everything else, so steps are generous; the total
// is still bounded by the test's own deadline.
const stepTimeout = 60 * time.Second

// requireChromium returns the chromium executable, or skips the test when
// it is missing on a developer machine. In CI a missing browser is a
// broken setup, not a reason to pass silently.
func requireChromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err == nil {
		return chromiumPath
	}
	msg := chromiumPath + " not found: install it with scripts/install-test-deps.sh (Debian package chromium) to run the dashboard browser tests"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// moduleRoot is the directory of the go.mod this test belongs to.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatal("go env GOMOD: not inside a module")
	}
	return filepath.Dir(gomod)
}

// buildDynago compiles ./cmd/dynago into a temporary directory. It builds
// without -race on purpose: the nodes are the system under observation,
// not the code under test, and a race-instrumented cluster would slow the
// loaded machine for no gain here.
func buildDynago(t *testing.T, root string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dynago")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/dynago")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/dynago: %v\n%s", err, out)
	}
	return bin
}

// devCluster is a running `dynago dev` subprocess.
type devCluster struct {
	cmd       *exec.Cmd
	dataDir   string
	dashboard string   // base URL of the dashboard, ending in "/"
	nodeHTTP  []string // node i (0-based) serves HTTP here
	stdout    *lockedBuffer
}

// lockedBuffer collects a subprocess's output for failure messages.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var dashboardLine = regexp.MustCompile(`dashboard: (http://\S+)`)

// startDev runs `dynago dev` with n nodes on free ports and waits until its
// dashboard answers. The nodes run in their own process groups (dev puts
// them there so that Ctrl-C reaches dev first), so cleanup asks dev to stop
// them with SIGINT and then kills whatever is left of this cluster: dev's
// group, and every process whose command line names this test's private
// data directory.
func startDev(t *testing.T, bin string, nodes int, extra ...string) *devCluster {
	t.Helper()
	base, err := devcluster.FreePortBase(nodes)
	if err != nil {
		t.Fatal(err)
	}
	dashAddr := testutil.FreeAddr(t)
	d := &devCluster{dataDir: t.TempDir(), stdout: &lockedBuffer{}}
	d.cmd = exec.Command(bin, "dev",
		"--nodes", strconv.Itoa(nodes),
		"--http-base-port", strconv.Itoa(base),
		"--dashboard-addr", dashAddr,
		"--data-dir", d.dataDir,
		"--quiet")
	d.cmd.Args = append(d.cmd.Args, extra...)
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The nodes inherit the environment: each also serves the dashboard
	// under /dashboard/, as `dynago server --dashboard` does.
	d.cmd.Env = append(os.Environ(), "DYNAGO_DASHBOARD=1")
	d.cmd.Stdout, d.cmd.Stderr = d.stdout, d.stdout
	for i := range nodes {
		d.nodeHTTP = append(d.nodeHTTP, net.JoinHostPort("127.0.0.1", strconv.Itoa(base+i)))
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("starting dynago dev: %v", err)
	}
	exited := make(chan struct{})
	go func() { d.cmd.Wait(); close(exited) }()
	t.Cleanup(func() { d.stop(t, exited) })

	// Prefer the URL dev prints (the spec promises the line); fall back to
	// the address we asked for, since both must work.
	d.dashboard = "http://" + dashAddr + "/"
	deadline := time.Now().Add(90 * time.Second)
	for {
		if m := dashboardLine.FindStringSubmatch(d.stdout.String()); m != nil {
			d.dashboard = strings.TrimSuffix(m[1], "/") + "/"
		}
		if httpOK(d.dashboard) {
			break
		}
		select {
		case <-exited:
			t.Fatalf("dynago dev exited before its dashboard answered:\n%s", d.stdout.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("dashboard %s did not answer within 90s; dev output:\n%s", d.dashboard, d.stdout.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
	// The page is only meaningful once every node serves its API.
	for _, addr := range d.nodeHTTP {
		if err := devcluster.WaitHealthy(context.Background(), addr, 60*time.Second); err != nil {
			t.Fatalf("node %s: %v\n%s", addr, err, d.stdout.String())
		}
	}
	return d
}

func httpOK(url string) bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (d *devCluster) stop(t *testing.T, exited <-chan struct{}) {
	pgid := d.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGINT)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		t.Logf("dynago dev did not stop within 15s of SIGINT; killing it")
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-exited
	}
	// Nodes restarted from the page are children of dev in their own
	// groups; if dev was killed they would outlive the test.
	for _, pid := range pidsMentioning(d.dataDir) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if t.Failed() {
		t.Logf("dynago dev output:\n%s", d.stdout.String())
	}
}

// pidsMentioning lists processes whose command line contains s. s is this
// test's private temp directory, so only this test's nodes match.
func pidsMentioning(s string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(s)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// nodeAddr is node id's HTTP address ("n3" → the third node).
func (d *devCluster) nodeAddr(t *testing.T, id string) string {
	t.Helper()
	i, err := strconv.Atoi(strings.TrimPrefix(id, "n"))
	if err != nil || i < 1 || i > len(d.nodeHTTP) {
		t.Fatalf("unknown node %q", id)
	}
	return d.nodeHTTP[i-1]
}

// getJSON fetches url into v, bounded in time.
func getJSON(url string, v any) error {
	c := http.Client{Timeout: 10 * time.Second}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return json.Unmarshal(body, v)
}

// browser is one headless chromium tab and what it reported on the console.
type browser struct {
	ctx    context.Context
	mu     sync.Mutex
	errors []string // console.error calls and uncaught exceptions
	// browserLog holds the browser's own error entries, such as "Failed
	// to load resource: 502" while a node is down. They are reported, not
	// failed on: the browser logs them for any failed fetch, even one
	// the page handles and shows in #errors as the spec asks.
	browserLog []string
}

// newBrowser starts headless chromium with the flags a root user on a
// container needs (no sandbox, no /dev/shm, no GPU) and records every
// console error and uncaught exception for the whole test. JavaScript
// dialogs (confirm before kill, say) are accepted, as a user would.
func newBrowser(t *testing.T, parent context.Context, exe string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1440, 1000),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(parent, opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	b := &browser{ctx: ctx}
	// Listen starts the browser. chromedp forbids a timeout on the context
	// of that first call (it would end the browser with it), so the start
	// is bounded from outside instead.
	started := make(chan error, 1)
	go func() {
		started <- chromedp.Listen(ctx, func(ev any) {
			switch ev := ev.(type) {
			case *runtime.EventConsoleAPICalled:
				if ev.Type == runtime.ConsoleAPICalledTypeError {
					var parts []string
					for _, a := range ev.Args {
						if a.Description != "" {
							parts = append(parts, a.Description)
						} else {
							parts = append(parts, string(a.Value))
						}
					}
					b.record("console.error: " + strings.Join(parts, " "))
				}
			case *runtime.EventExceptionThrown:
				d := ev.ExceptionDetails
				msg := d.Text
				if d.Exception != nil && d.Exception.Description != "" {
					msg += " " + d.Exception.Description
				}
				b.record(fmt.Sprintf("uncaught exception at %s:%d: %s", d.URL, d.LineNumber, msg))
			case *cdplog.EventEntryAdded:
				if e := ev.Entry; e != nil && e.Level == cdplog.EntryLevelError {
					b.mu.Lock()
					b.browserLog = append(b.browserLog, fmt.Sprintf("%s: %s %s", e.Source, e.Text, e.URL))
					b.mu.Unlock()
				}
			case *page.EventJavascriptDialogOpening:
				// The listener must not run commands itself: answer from
				// another goroutine.
				go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
			}
		})
	}()
	stop := func() { cancelTab(); cancelAlloc() }
	select {
	case err := <-started:
		if err != nil {
			stop()
			t.Fatalf("starting chromium %s: %v", exe, err)
		}
	case <-time.After(stepTimeout):
		stop()
		t.Fatalf("starting chromium %s: no answer within %v", exe, stepTimeout)
	}
	ctx2, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.Call(ctx2, cdplog.Enable, cdp.Empty{}); err != nil {
		stop()
		t.Fatalf("enabling the browser log: %v", err)
	}
	t.Cleanup(func() {
		b.mu.Lock()
		if len(b.browserLog) > 0 {
			// The page polls; one failing URL repeats. Count, don't repeat.
			counts := map[string]int{}
			var order []string
			for _, e := range b.browserLog {
				if counts[e] == 0 {
					order = append(order, e)
				}
				counts[e]++
			}
			var lines []string
			for _, e := range order {
				lines = append(lines, fmt.Sprintf("%dx %s", counts[e], e))
			}
			t.Logf("browser log errors (reported, not failures):\n  %s", strings.Join(lines, "\n  "))
		}
		b.mu.Unlock()
		stop()
	})
	return b
}

func (b *browser) record(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errors = append(b.errors, s)
}

// networkErrors returns the browser's own error log so far: failed
// requests, mostly.
func (b *browser) networkErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.browserLog...)
}

// consoleErrors returns what the page reported so far.
func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}

// run performs actions within one step's time bound.
func (b *browser) run(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression and decodes its value into out
// (nil: discard it).
func (b *browser) eval(t *testing.T, js string, out any) {
	t.Helper()
	if err := b.evalWithin(stepTimeout, js, out); err != nil {
		t.Fatalf("evaluating %s: %v", js, err)
	}
}

// evalErr is eval for polling: it reports failure instead of failing.
func (b *browser) evalErr(js string, out any) error {
	return b.evalWithin(10*time.Second, js, out)
}

func (b *browser) evalWithin(d time.Duration, js string, out any) error {
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](js))
	if err != nil || out == nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

// errPending is what a poll condition returns while it is not yet true.
var errPending = errors.New("not yet")

// waitFor polls cond every 250ms until it returns nil, failing the test
// with the last reason after timeout. Polling the DOM from Go instead of
// chromedp's WaitVisible lets every wait say what it last saw.
func (b *browser) waitFor(t *testing.T, what string, timeout time.Duration, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	var last error
	for {
		if last = cond(); last == nil {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %v: %v", what, timeout, last)
		}
		select {
		case <-b.ctx.Done():
			t.Fatalf("%s: browser gone: %v", what, b.ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}
