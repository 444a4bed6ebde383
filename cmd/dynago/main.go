// Command dynago is the one binary of the project: the server daemon, the
// local development cluster, the client CLI, the benchmark and the simulator.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// errUsage marks an error caused by bad command-line input; main exits 2.
var errUsage = errors.New("usage")

// usageError is bad input found by the command tree itself (an unknown
// command or flag, a wrong number of arguments, an invalid DYNAGO_*
// value): errors.Is(err, errUsage) holds, and the message has no "usage:"
// prefix.
type usageError struct{ msg string }

func (e usageError) Error() string        { return e.msg }
func (e usageError) Is(target error) bool { return target == errUsage }

// trimmedError is err printed without the package prefix its message
// starts with, where the command path says as much ("dynago server:
// opening storage: ...", not "dynago server: server: opening storage").
type trimmedError struct {
	err    error
	prefix string
}

func (e trimmedError) Error() string { return strings.TrimPrefix(e.err.Error(), e.prefix) }
func (e trimmedError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// runMain runs one command line, reports its error on stderr and returns
// the exit status.
func runMain(ctx context.Context, args []string) int {
	cmd, err := execute(ctx, args)
	code := exitCode(err)
	if code != 0 {
		fmt.Fprintf(stderr, "%s: %v\n", cmd.CommandPath(), err)
		if code == 2 {
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
	}
	return code
}

// exitCode maps a command's error to the documented exit status: 0 for
// success and for a help request, 2 for bad input, 1 for everything else.
func exitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		return 1
	}
}

// envDefault returns the value of the environment variable name, or def.
func envDefault(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}
