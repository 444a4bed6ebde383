package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/dynago/dynago/buildinfo"
)

func init() {
	register(command{name: "version", summary: "print the version, commit and Go version", run: runVersion})
}

func runVersion(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "version\n\nPrints the release version (set by 'make build'; \"dev\" otherwise), the\ngit commit the binary was built from, and the Go version.")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	in := buildinfo.Get()
	fmt.Fprintf(stdout, "dynago %s\ncommit: %s\ngo: %s\n", in.Version, in.Commit, in.GoVersion)
	return nil
}
