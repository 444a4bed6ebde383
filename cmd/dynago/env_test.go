package main

import (
	"strings"
	"testing"
	"time"
)

// refusals replaces envExit for one test and returns the exit codes asked for.
func refusals(t *testing.T) *[]int {
	var codes []int
	old := envExit
	envExit = func(code int) { codes = append(codes, code) }
	t.Cleanup(func() { envExit = old })
	return &codes
}

func TestEnvValuesParseStrictly(t *testing.T) {
	codes := refusals(t)
	t.Setenv("DYNAGO_T_INT", "7")
	t.Setenv("DYNAGO_T_DUR", "250ms")
	t.Setenv("DYNAGO_T_BOOL", "true")
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
	if len(*codes) != 0 {
		t.Fatalf("valid values refused: %v", *codes)
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
		codes := refusals(t)
		t.Setenv(tc.name, tc.value)
		out := captureOutput(t, func() error { tc.parse(tc.name); return nil })
		if len(*codes) != 1 || (*codes)[0] != 2 {
			t.Errorf("%s=%s: exit codes %v, want [2]", tc.name, tc.value, *codes)
		}
		if want := tc.name + `="` + tc.value + `"`; !strings.Contains(out, want) {
			t.Errorf("%s=%s: message %q does not name %s", tc.name, tc.value, out, want)
		}
	}
}

// TestServerRefusesBadEnvBeforeStarting checks the wiring: the server
// command itself consults the strict helpers for every numeric and boolean
// variable (no server is started: the refusal comes first and the test's
// envExit records it; flag parsing then stops at --help).
func TestServerRefusesBadEnvBeforeStarting(t *testing.T) {
	for _, name := range []string{"DYNAGO_N", "DYNAGO_R", "DYNAGO_W", "DYNAGO_PARTITIONS", "DYNAGO_MAX_KEY_SIZE",
		"DYNAGO_MAX_VALUE_SIZE", "DYNAGO_CACHE_SIZE", "DYNAGO_DRAIN_TIMEOUT", "DYNAGO_REQUEST_TIMEOUT",
		"DYNAGO_PPROF", "DYNAGO_DASHBOARD", "DYNAGO_LWW", "DYNAGO_LOG_JSON"} {
		codes := refusals(t)
		t.Setenv(name, "bogus")
		out := captureOutput(t, func() error { return runServer(t.Context(), []string{"--help"}) })
		if len(*codes) != 1 || (*codes)[0] != 2 || !strings.Contains(out, name+`="bogus"`) {
			t.Errorf("%s=bogus: exit codes %v, output %q", name, *codes, out)
		}
		t.Setenv(name, "")
	}
}
