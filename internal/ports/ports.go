// Package ports knows which loopback ports are safe to pick ahead of use.
// A port that is free now but lies in the kernel's ephemeral range can be
// handed to any process's outgoing connection or ":0" listener before the
// program that picked it binds it; below that range only another program
// choosing the same number can take it. devcluster (port bases for local
// clusters) and internal/testutil (single addresses for tests) both pick
// from below it. Standard library only, so that testutil may import it.
package ports

import (
	"os"
	"strconv"
	"strings"
)

// EphemeralStart is the first port the kernel hands out for outgoing
// connections, 32768 when it cannot be read.
func EphemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	p, err := strconv.Atoi(f[0])
	if err != nil || p < 1024 {
		return 32768
	}
	return p
}
