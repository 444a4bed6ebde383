package buildinfo

import (
	"runtime"
	"testing"
)

func TestGetReportsVersionAndToolchain(t *testing.T) {
	old := Version
	Version = "v9.9.9"
	defer func() { Version = old }()
	in := Get()
	if in.Version != "v9.9.9" {
		t.Errorf("Version = %q, want the link-time value", in.Version)
	}
	if in.GoVersion != runtime.Version() {
		t.Errorf("GoVersion = %q, want %q", in.GoVersion, runtime.Version())
	}
	if in.Commit == "" {
		t.Error("Commit is empty; want a revision or \"unknown\"")
	}
}

func TestLinkTimeCommitIsUsedWithoutVCSStamp(t *testing.T) {
	old := Commit
	Commit = "abc123"
	defer func() { Commit = old }()
	// Test binaries carry no vcs.revision, so the link-time value shows.
	if got := Get().Commit; got != "abc123" {
		t.Errorf("Commit = %q, want abc123", got)
	}
}
