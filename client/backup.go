package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Backup is the answer of POST /admin/backup.
type Backup struct {
	Dir        string `json:"dir"`
	Bytes      int64  `json:"bytes"`
	DurationMS int64  `json:"duration_ms"`
	Format     uint64 `json:"format"`
	Node       string `json:"node"`
}

// backupTimeout bounds one backup: a checkpoint hard-links sstables, so
// it is quick, but one across filesystems copies the whole store.
const backupTimeout = 30 * time.Minute

// Backup asks the node to write a consistent checkpoint of its store to
// dir, an absolute path on the node's own filesystem that does not exist
// or is empty.
func (c *Client) Backup(ctx context.Context, dir string) (Backup, error) {
	var b Backup
	body, err := json.Marshal(map[string]string{"dir": dir})
	if err != nil {
		return b, err
	}
	r, err := c.do(ctx, call{method: http.MethodPost, path: "/admin/backup", body: body,
		header: http.Header{"Content-Type": {"application/json"}}, timeout: backupTimeout})
	if err != nil {
		return b, err
	}
	if r.status != http.StatusOK {
		return b, r.err("admin backup")
	}
	if err := json.Unmarshal(r.body, &b); err != nil {
		return b, fmt.Errorf("client: decoding the answer of POST /admin/backup: %w", err)
	}
	return b, nil
}
