package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/storage"
	"github.com/dynago/dynago/storage/pebbledb"
)

var _ httpapi.Backupper = (*Server)(nil)

// Backup writes a Pebble checkpoint of this node's store to dir: objects,
// hints, the epoch and the cluster state, all of which live in the store.
// It is consistent for this node only; see docs/OPERATIONS.md.
func (s *Server) Backup(ctx context.Context, dir string) (httpapi.BackupInfo, error) {
	start := time.Now()
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return httpapi.BackupInfo{}, fmt.Errorf("server: backup: %w", err)
	}
	if err := s.engine.Checkpoint(dir); err != nil {
		if errors.Is(err, pebbledb.ErrNotEmpty) {
			return httpapi.BackupInfo{}, fmt.Errorf("%w: %s", httpapi.ErrBackupTarget, dir)
		}
		return httpapi.BackupInfo{}, err
	}
	n, err := pebbledb.DirSize(dir)
	if err != nil {
		return httpapi.BackupInfo{}, fmt.Errorf("server: backup size: %w", err)
	}
	info := httpapi.BackupInfo{Dir: dir, Bytes: n, DurationMS: time.Since(start).Milliseconds(),
		Format: storage.FormatVersion, Node: string(s.cfg.ID)}
	s.log.Info("backup written", "dir", dir, "bytes", n, "duration", time.Since(start))
	return info, nil
}
