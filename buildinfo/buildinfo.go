// Package buildinfo says which build of dynago is running: the release
// version stamped by the Makefile, and the commit and Go version that the Go
// toolchain records in every binary built from a git checkout.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Version is set at link time by the Makefile's build:
//
//	-ldflags "-X github.com/dynago/dynago/buildinfo.Version=$(VERSION)"
//
// A plain `go build` or `go run` leaves it "dev".
var Version = "dev"

// Commit may be set at link time too, for builds where the toolchain's VCS
// stamp is off (GOFLAGS=-buildvcs=false, or a source tarball); the stamp
// wins when present.
var Commit = ""

// Info is one build's identity.
type Info struct {
	Version   string // release version, or "dev"
	Commit    string // VCS revision, with "-dirty" if the tree had changes; "unknown" without VCS data
	GoVersion string // the Go toolchain that built the binary
}

// Get reads the build's identity. The commit comes from the vcs.revision
// setting that `go build` embeds (debug.ReadBuildInfo); binaries built
// outside a git work tree, and test binaries, have none.
func Get() Info {
	in := Info{Version: Version, Commit: "unknown", GoVersion: runtime.Version()}
	if Commit != "" {
		in.Commit = Commit
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return in
	}
	if bi.GoVersion != "" {
		in.GoVersion = bi.GoVersion
	}
	dirty, stamped := false, false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Commit, stamped = s.Value, true
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && stamped {
		in.Commit += "-dirty"
	}
	return in
}
