package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// The env* helpers give a flag its default from a DYNAGO_* variable. A value
// that does not parse refuses to start (exit 2, naming the variable and the
// value), as etcd and Consul do: silently falling back to the default would
// turn a typo such as DYNAGO_N=e into a cluster with a different replication
// factor. They run while the flag set is built, before any flag is parsed,
// so a bad variable is refused even if a flag would override it.

// envExit is os.Exit, replaceable by tests.
var envExit = os.Exit

func refuseEnv(name, value, want string, err error) {
	fmt.Fprintf(os.Stderr, "dynago: invalid %s=%q: want %s (%v)\n", name, value, want, err)
	envExit(2)
}

func envInt(name string, def int) int {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			refuseEnv(name, v, "an integer", err)
			return def
		}
		return n
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			refuseEnv(name, v, "a duration such as 5s or 250ms", err)
			return def
		}
		return d
	}
	return def
}

// envBool accepts what strconv.ParseBool does: 1, t, T, TRUE, true, True,
// 0, f, F, FALSE, false, False.
func envBool(name string, def bool) bool {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			refuseEnv(name, v, "a boolean (true, false, 1 or 0)", err)
			return def
		}
		return b
	}
	return def
}
