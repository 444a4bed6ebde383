//go:build !unix

package transport

import "time"

// processCPU is not measured here; the benchmarks omit cpu-ns/op.
func processCPU() time.Duration { return 0 }
