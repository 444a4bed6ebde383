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
// factor. They run while the command tree is built, before any flag is
// parsed; a bad value is recorded against the command whose flags read it,
// and execute refuses to run that command (even for --help, even if a flag
// would override the value). Other commands, help and completion still
// work: a stray DYNAGO_N must not break 'dynago completion bash'.

// envErrs collects the refusals of the flag set being built; newCLI holds
// buildMu while it is in use.
var envErrs []error

func refuseEnv(name, value, want string, err error) {
	envErrs = append(envErrs, usageError{fmt.Sprintf("invalid %s=%q: want %s (%v)", name, value, want, err)})
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
