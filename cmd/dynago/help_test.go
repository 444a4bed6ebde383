package main

import (
	"context"
	"os"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestEveryCommandHelpExitsZero runs each registered command with --help
// and -h, as a user would, and checks that it answers with exit status 0
// and prints something.
func TestEveryCommandHelpExitsZero(t *testing.T) {
	if len(commands) < 10 {
		t.Fatalf("only %d commands registered", len(commands))
	}
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, arg := range []string{"--help", "-h"} {
			out := captureOutput(t, func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				err := commands[name].run(ctx, []string{arg})
				if code := exitCode(err); code != 0 {
					t.Errorf("dynago %s %s: exit %d (%v)", name, arg, code, err)
				}
				return nil
			})
			if strings.TrimSpace(out) == "" {
				t.Errorf("dynago %s %s printed nothing", name, arg)
			}
		}
	}
}

// captureOutput runs f with the package's stdout/stderr writers and the
// process's os.Stdout/os.Stderr redirected to one pipe, and returns what was
// written.
func captureOutput(t *testing.T, f func() error) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	oldOut, oldErr, oldStdout, oldStderr := os.Stdout, os.Stderr, stdout, stderr
	os.Stdout, os.Stderr, stdout, stderr = w, w, w, w
	done := make(chan string)
	go func() {
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		done <- b.String()
	}()
	defer func() {
		os.Stdout, os.Stderr, stdout, stderr = oldOut, oldErr, oldStdout, oldStderr
	}()
	_ = f()
	w.Close()
	return <-done
}
