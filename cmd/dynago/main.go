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
	"sort"
	"syscall"
)

// command is one subcommand. Each file of this package registers its own
// commands from init, so that commands can be added without editing a
// central switch.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("dynago: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// errUsage marks an error caused by bad command-line input; main exits 2.
var errUsage = errors.New("usage")

func usage() {
	fmt.Fprintf(os.Stderr, "dynago: a Dynamo-style distributed key-value store\n\nUsage: dynago <command> [flags]\n\nCommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'dynago <command> -h' for a command's flags.\n")
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		os.Args[1] = "version" // as etcd --version and consul version do
	}
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	c, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "dynago: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := c.run(ctx, os.Args[2:])
	stop()
	if code := exitCode(err); code != 0 {
		fmt.Fprintf(os.Stderr, "dynago %s: %v\n", c.name, err)
		os.Exit(code)
	}
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

// isHelp reports whether a command's first argument asks for its help, so
// that commands with subcommands answer it with exit 0.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help" || arg == "help"
}

// envDefault returns the value of the environment variable name, or def.
func envDefault(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}
