package e2e

import (
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSystemdNotify: under a Type=notify unit (NOTIFY_SOCKET set), a node
// tells systemd READY=1 once it serves, RELOADING=1 and READY=1 around a
// SIGHUP reload, and STOPPING=1 when SIGTERM starts its drain; it exits 0.
func TestSystemdNotify(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	port := freeBase(t, 1)
	http := hostPort(port)
	cmd := exec.Command(binary, "server", "--id", "n1", "--data-dir", filepath.Join(dir, "data"),
		"--http-addr", http, "--rpc-addr", hostPort(port+100), "--gossip-addr", hostPort(port+200), "--drain-timeout", "200ms")
	cmd.Env = cleanEnv("NOTIFY_SOCKET=" + sock)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
	}()
	// next reads the next notification, within 30 s.
	next := func(want string) string {
		t.Helper()
		buf := make([]byte, 4096)
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %s: %v", want, err)
		}
		msg := string(buf[:n])
		if !strings.Contains(msg, want) {
			t.Fatalf("notification %q, want %s", msg, want)
		}
		return msg
	}
	next("READY=1")
	// Ready means serving: the API answers at once.
	if r := call(t, "GET", "http://"+http+"/healthz", nil, nil); r.Status != 200 {
		t.Fatalf("/healthz right after READY=1: %d", r.Status)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	next("RELOADING=1")
	next("READY=1")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	next("STOPPING=1")
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit 30 s after SIGTERM")
	}
}
