package pebbledb

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dynago/dynago/storage"
)

// crashChildEnv, when set to a directory, turns the test binary into the
// writer process of TestSIGKILLKeepsAcknowledgedWrites; crashRoundEnv
// names the round, so that every round writes new keys.
const (
	crashChildEnv = "DYNAGO_PEBBLEDB_CRASH_CHILD_DIR"
	crashRoundEnv = "DYNAGO_PEBBLEDB_CRASH_ROUND"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		os.Exit(runCrashChild(dir, os.Getenv(crashRoundEnv)))
	}
	os.Exit(m.Run())
}

const (
	crashWriters = 8
	// crashChildLifetime bounds the child if the parent dies before
	// killing it.
	crashChildLifetime = 60 * time.Second
)

func crashValue(key string) string { return "value-of-" + key }

// runCrashChild writes keys from several goroutines to Pebble as the
// daemon does (Apply without sync, then a Sync that covers it; concurrent
// Syncs share fsyncs) and prints each key once its Sync has returned, i.e.
// once it is acknowledged. It runs until killed.
func runCrashChild(dir, round string) int {
	time.AfterFunc(crashChildLifetime, func() { os.Exit(3) })
	p, err := Open(dir, Options{MemTableSize: 1 << 20, Logger: quietLogger})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var out sync.Mutex
	var wg sync.WaitGroup
	for w := range crashWriters {
		wg.Go(func() {
			var b storage.Batch
			for i := 0; ; i++ {
				key := fmt.Sprintf("r%s-w%d-%07d", round, w, i)
				b.Reset()
				b.Set([]byte(key), []byte(crashValue(key)))
				// A second key in the same batch checks atomicity
				// across the crash too.
				b.Set([]byte(key+"/twin"), []byte(crashValue(key)))
				if err := p.Apply(&b, false); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				if err := p.Sync(); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				// One write per line keeps lines whole on the pipe.
				out.Lock()
				_, _ = os.Stdout.WriteString(key + "\n")
				out.Unlock()
			}
		})
	}
	wg.Wait()
	return 0
}

// A writer process is SIGKILLed while committing; every key it printed
// (its Sync had returned) must be in the store when it is reopened. Several
// rounds run on the same directory, so later rounds also crash a store that
// was itself recovered from a crash. SIGKILL loses whatever the process had
// not yet handed to the kernel, which is exactly the window a Sync
// returning too early would expose; power loss (unsynced kernel buffers) is
// modelled by Mem and Faulty instead.
func TestSIGKILLKeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	const rounds = 3
	dir := t.TempDir()
	var acked []string
	for round := range rounds {
		acked = append(acked, runAndKillWriter(t, dir, round)...)
		p := openTestPebble(t, dir)
		missing := 0
		for _, key := range acked {
			for _, k := range []string{key, key + "/twin"} {
				v, err := p.Get([]byte(k))
				if err != nil || string(v) != crashValue(key) {
					missing++
					if missing <= 5 {
						t.Errorf("round %d: acknowledged key %s: %q, %v", round, k, v, err)
					}
				}
			}
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if missing > 0 {
			t.Fatalf("round %d: %d of %d acknowledged keys lost", round, missing, 2*len(acked))
		}
	}
	t.Logf("%d acknowledged batches survived %d SIGKILLs", len(acked), rounds)
}

// runAndKillWriter starts a writer child on dir, SIGKILLs it once it has
// acknowledged enough writes and returns every key it acknowledged.
func runAndKillWriter(t *testing.T, dir string, round int) []string {
	t.Helper()
	const wantAcked = 1000
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprintf("%s=%d", crashRoundEnv, round))
	var stderr safeBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	kill := func() { once.Do(func() { _ = cmd.Process.Kill() }) } // SIGKILL on Unix
	defer kill()
	deadline := time.AfterFunc(30*time.Second, kill)
	defer deadline.Stop()

	var acked []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		acked = append(acked, sc.Text())
		if len(acked) == wantAcked {
			kill() // mid-stream: the writers are committing right now
		}
	}
	// Lines printed before the kill are still read: the pipe drains to EOF.
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("child: %v, want death by SIGKILL; stderr: %s", err, stderr.String())
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want SIGKILL; stderr: %s", err, stderr.String())
	}
	if len(acked) < wantAcked {
		t.Fatalf("child acknowledged only %d writes before the deadline; stderr: %s", len(acked), stderr.String())
	}
	return acked
}

// safeBuffer collects the child's stderr, written by exec's copying
// goroutine and read by the test.
type safeBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, p...)
	return len(p), nil
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.buf)
}
