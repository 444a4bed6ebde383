//go:build unix

package loadgen

import (
	"syscall"
	"time"
)

// processCPU is the user plus system CPU time this process has used, or 0
// when the kernel does not say.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
