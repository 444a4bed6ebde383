package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/dynago/dynago/buildinfo"
)

func init() {
	register(command{name: "version", summary: "print the version, commit and Go version",
		long: `Prints the release version (set by 'make build'; "dev" otherwise), the
git commit the binary was built from, and the Go version. 'dynago --version'
prints the same, as etcd --version and consul version do.`,
		flags: func(*flag.FlagSet) runFunc { return runVersion }})
}

func runVersion(context.Context, []string) error {
	fmt.Fprint(stdout, versionText())
	return nil
}

func versionLine() string { return buildinfo.Get().Version }

// versionText is what 'dynago version' and 'dynago --version' print. It is
// also cobra's version template: it holds no template action.
func versionText() string {
	in := buildinfo.Get()
	return fmt.Sprintf("dynago %s\ncommit: %s\ngo: %s\n", in.Version, in.Commit, in.GoVersion)
}
