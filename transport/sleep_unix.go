//go:build unix

package transport

import (
	"syscall"
	"time"
)

// preciseSleep blocks the calling goroutine's thread for d with the
// kernel's high-resolution timer (nanosleep) instead of the runtime's
// millisecond-grained timers. It is meant for the last fraction of a
// millisecond (see timerSlack): the thread is blocked meanwhile, and the
// runtime lends its P to another thread as for any blocking system call.
func preciseSleep(d time.Duration) {
	if d <= 0 {
		return
	}
	ts := syscall.NsecToTimespec(int64(d))
	for {
		var rem syscall.Timespec
		err := syscall.Nanosleep(&ts, &rem)
		if err != syscall.EINTR {
			return
		}
		ts = rem // interrupted by a signal (the runtime's preemption): sleep the rest
	}
}
