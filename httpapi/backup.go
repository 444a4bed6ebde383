package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/dynago/dynago/api"
)

// Backupper is implemented by backends that can write a consistent copy of
// their node's storage: POST /admin/backup.
type Backupper interface {
	// Backup writes a checkpoint of the node's store into dir, an absolute
	// path on the node's filesystem that does not exist or is empty.
	Backup(ctx context.Context, dir string) (BackupInfo, error)
}

// BackupInfo describes a finished backup.
type BackupInfo struct {
	Dir        string `json:"dir"`
	Bytes      int64  `json:"bytes"`
	DurationMS int64  `json:"duration_ms"`
	Format     uint64 `json:"format"` // the on-disk format the backup is in
	Node       string `json:"node"`
}

// ErrBackupTarget reports a backup directory that already holds files;
// backends wrap it.
var ErrBackupTarget = errors.New("backup directory exists and is not empty")

// CodeBackupTarget answers a backup into a directory that holds files.
const CodeBackupTarget = api.CodeBackupTarget

const maxBackupBody = 8 << 10

type backupRequest struct {
	Dir string `json:"dir"`
}

func (a *handler) backup(w http.ResponseWriter, r *http.Request) {
	bk, ok := a.b.(Backupper)
	if !ok {
		writeError(w, &apiError{http.StatusNotFound, CodeNotFound, "this node does not support backups"})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBackupBody+1))
	var req backupRequest
	if err == nil && len(body) > maxBackupBody {
		err = fmt.Errorf("body over %d bytes", maxBackupBody)
	}
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err = dec.Decode(&req); err == nil && dec.More() {
			err = errors.New("trailing data after the JSON object")
		}
	}
	if err != nil {
		writeError(w, errBadParameter("POST /admin/backup takes {\"dir\": \"/absolute/path\"}: "+err.Error()))
		return
	}
	// The directory is on the node's filesystem, so a relative path would
	// depend on the working directory the daemon happened to start in.
	if req.Dir == "" || !filepath.IsAbs(req.Dir) || strings.ContainsRune(req.Dir, 0) {
		writeError(w, errBadParameter("dir must be an absolute path on the node's filesystem"))
		return
	}
	info, err := bk.Backup(r.Context(), filepath.Clean(req.Dir))
	switch {
	case errors.Is(err, ErrBackupTarget):
		writeError(w, &apiError{http.StatusConflict, CodeBackupTarget, err.Error()})
	case err != nil:
		writeError(w, &apiError{http.StatusInternalServerError, CodeInternal, err.Error()})
	default:
		writeJSON(w, http.StatusOK, info)
	}
}
