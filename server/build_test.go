package server

import (
	"testing"
	"time"

	"github.com/dynago/dynago/buildinfo"
	"github.com/dynago/dynago/internal/testutil"
)

// TestMembersShowTheirBuild: each node gossips its build, so /cluster on
// any node lists what every member runs (a rolling upgrade's progress).
func TestMembersShowTheirBuild(t *testing.T) {
	srvs := startCluster(t, 2, func(c *Config) { c.Preset = "lab" })
	if _, err := srvs[1].members.Join([]string{srvs[0].members.Addr()}); err != nil {
		t.Fatal(err)
	}
	bi := buildinfo.Get()
	testutil.Eventually(t, 10*time.Second, "n1 lists both members with their build", func() bool {
		ms := srvs[0].Members()
		if len(ms) != 2 {
			return false
		}
		for _, m := range ms {
			if m.Version != bi.Version || m.Commit != bi.Commit || m.Version == "" {
				return false
			}
		}
		return true
	})
}
