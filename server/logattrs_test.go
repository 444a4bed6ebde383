package server

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

// TestLogLinesNameTheNodeOnce: every line a node logs from start to close,
// the transport's and storage's included, names the node exactly once, so
// that a log pipeline can index on it (a JSON object with the key twice is
// read differently by different parsers).
func TestLogLinesNameTheNodeOnce(t *testing.T) {
	var sink lockedBuffer
	srvs := startCluster(t, 1, func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&sink, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	srvs[0].Close()
	lines := strings.Split(strings.TrimSpace(sink.String()), "\n")
	if len(lines) < 3 {
		t.Fatalf("only %d log lines: %q", len(lines), sink.String())
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", l, err)
		}
		if n := strings.Count(l, `"node":`); n != 1 || m["node"] != "n1" {
			t.Errorf("%d node attributes (node=%v) in %s", n, m["node"], l)
		}
	}
}
