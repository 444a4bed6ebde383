package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// envRefusals runs f as the tree builder runs flag definitions and returns
// the DYNAGO_* values it refused.
func envRefusals(f func()) []error {
	buildMu.Lock()
	defer buildMu.Unlock()
	envErrs = nil
	f()
	errs := envErrs
	envErrs = nil
	return errs
}

func TestEnvValuesParseStrictly(t *testing.T) {
	t.Setenv("DYNAGO_T_INT", "7")
	t.Setenv("DYNAGO_T_DUR", "250ms")
	t.Setenv("DYNAGO_T_BOOL", "true")
	errs := envRefusals(func() {
		if got := envInt("DYNAGO_T_INT", 3); got != 7 {
			t.Errorf("envInt = %d, want 7", got)
		}
		if got := envDuration("DYNAGO_T_DUR", time.Second); got != 250*time.Millisecond {
			t.Errorf("envDuration = %v, want 250ms", got)
		}
		// DYNAGO_LOG_JSON=true used to be ignored: only "1" counted.
		for _, v := range []string{"true", "1", "T", "TRUE"} {
			t.Setenv("DYNAGO_T_BOOL", v)
			if !envBool("DYNAGO_T_BOOL", false) {
				t.Errorf("envBool(%q) = false", v)
			}
		}
		for _, v := range []string{"false", "0", "F"} {
			t.Setenv("DYNAGO_T_BOOL", v)
			if envBool("DYNAGO_T_BOOL", true) {
				t.Errorf("envBool(%q) = true", v)
			}
		}
	})
	if len(errs) != 0 {
		t.Fatalf("valid values refused: %v", errs)
	}
}

func TestEnvInvalidValuesRefuseWithExit2(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		parse       func(string)
	}{
		{"DYNAGO_N", "abc", func(n string) { envInt(n, 3) }},
		{"DYNAGO_DRAIN_TIMEOUT", "5", func(n string) { envDuration(n, time.Second) }},
		{"DYNAGO_LOG_JSON", "yes", func(n string) { envBool(n, false) }},
	} {
		t.Setenv(tc.name, tc.value)
		errs := envRefusals(func() { tc.parse(tc.name) })
		if len(errs) != 1 || exitCode(errs[0]) != 2 {
			t.Errorf("%s=%s: refusals %v, want one with exit 2", tc.name, tc.value, errs)
			continue
		}
		if want := tc.name + `="` + tc.value + `"`; !strings.Contains(errs[0].Error(), want) {
			t.Errorf("%s=%s: message %q does not name %s", tc.name, tc.value, errs[0], want)
		}
	}
}

// TestServerRefusesBadEnvBeforeStarting checks the wiring: the server
// command consults the strict helpers for every numeric and boolean
// variable, and refuses before anything else, even --help (which the
// Kubernetes and systemd tests use to validate an environment). No server
// is started: without the refusal, --help would answer.
func TestServerRefusesBadEnvBeforeStarting(t *testing.T) {
	for _, name := range []string{"DYNAGO_N", "DYNAGO_R", "DYNAGO_W", "DYNAGO_PARTITIONS", "DYNAGO_MAX_KEY_SIZE",
		"DYNAGO_MAX_VALUE_SIZE", "DYNAGO_CACHE_SIZE", "DYNAGO_MEMTABLE_SIZE", "DYNAGO_DRAIN_TIMEOUT", "DYNAGO_REQUEST_TIMEOUT",
		"DYNAGO_PPROF", "DYNAGO_DASHBOARD", "DYNAGO_LWW", "DYNAGO_LOG_JSON", "DYNAGO_INSECURE"} {
		t.Setenv(name, "bogus")
		out, err := run(t, "", "server", "--help")
		if exitCode(err) != 2 || !strings.Contains(err.Error(), name+`="bogus"`) || strings.Contains(out, "Usage:") {
			t.Errorf("%s=bogus: server --help gave %v (exit %d), output %q", name, err, exitCode(err), out)
		}
		t.Setenv(name, "")
	}
}

// A bad value concerns the server only: other commands, help and shell
// completion still run.
func TestBadEnvLeavesOtherCommandsAlone(t *testing.T) {
	t.Setenv("DYNAGO_N", "bogus")
	for _, args := range [][]string{{"version"}, {"help", "server"}, {"completion", "bash"}, {"dev", "--help"}} {
		out, err := run(t, "", args...)
		if err != nil || out == "" {
			t.Errorf("dynago %s with DYNAGO_N=bogus: %v, output %q", strings.Join(args, " "), err, out)
		}
	}
}

// A memtable size Pebble could not use, or one far outside what a node
// needs, is a usage error before anything starts.
func TestServerRefusesBadMemtableSize(t *testing.T) {
	for _, size := range []string{"0", "1000", "2000000000"} {
		_, err := run(t, "", "server", "--memtable-size", size, "--data-dir", t.TempDir())
		if exitCode(err) != 2 || !strings.Contains(err.Error(), "--memtable-size") {
			t.Errorf("--memtable-size %s: %v (exit %d), want a usage error naming the flag", size, err, exitCode(err))
		}
	}
}

// A negative lazy-sync delay, or one past the bound a coordinator's put
// state allows, is a usage error before anything starts.
func TestServerRefusesBadLazySyncDelay(t *testing.T) {
	for _, d := range []string{"-1ms", "2s"} {
		_, err := run(t, "", "server", "--id", "n1", "--lazy-sync-delay", d, "--data-dir", t.TempDir())
		if exitCode(err) != 2 || !strings.Contains(err.Error(), "--lazy-sync-delay") {
			t.Errorf("--lazy-sync-delay %s: %v (exit %d), want a usage error naming the flag", d, err, exitCode(err))
		}
	}
}

func TestServerRefusesNegativeLimits(t *testing.T) {
	for _, flag := range []string{"--max-hint-bytes", "--max-inflight"} {
		_, err := run(t, "", "server", "--id", "n1", flag, "-1", "--data-dir", t.TempDir())
		if exitCode(err) != 2 || !strings.Contains(err.Error(), flag) {
			t.Errorf("%s -1: %v (exit %d), want a usage error naming the flag", flag, err, exitCode(err))
		}
	}
}

// TestServerRefusesABadRingBeforeTouchingTheDisk: flags that cannot make a
// ring are a usage error (exit 2) found before the data directory is
// created, and the message names the command once.
func TestServerRefusesABadRingBeforeTouchingTheDisk(t *testing.T) {
	for _, args := range [][]string{{"--partitions", "3"}, {"--n", "0"}} {
		dir := filepath.Join(t.TempDir(), "data")
		_, err := run(t, "", append([]string{"server", "--id", "n1", "--data-dir", dir}, args...)...)
		if exitCode(err) != 2 || !strings.Contains(err.Error(), args[0]) || strings.Contains(err.Error(), "server: ") {
			t.Errorf("%v: %v (exit %d), want a usage error naming %s, without a repeated \"server: \"", args, err, exitCode(err), args[0])
		}
		if _, serr := os.Stat(dir); !os.IsNotExist(serr) {
			t.Errorf("%v: the data directory was created (%v)", args, serr)
		}
	}
}
