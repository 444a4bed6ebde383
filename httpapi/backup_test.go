package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/httpapi/httpapitest"
)

// backupBackend adds backups to the fake backend: it refuses a directory
// it already wrote, as the server refuses a non-empty one.
type backupBackend struct {
	*httpapitest.Backend
	mu   sync.Mutex
	dirs []string
	fail error
}

func (b *backupBackend) Backup(_ context.Context, dir string) (httpapi.BackupInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return httpapi.BackupInfo{}, b.fail
	}
	for _, d := range b.dirs {
		if d == dir {
			return httpapi.BackupInfo{}, fmt.Errorf("%w: %s", httpapi.ErrBackupTarget, dir)
		}
	}
	b.dirs = append(b.dirs, dir)
	return httpapi.BackupInfo{Dir: dir, Bytes: 4096, DurationMS: 3, Format: 1, Node: "n1"}, nil
}

func postBackup(t *testing.T, url, body string) (int, string, []byte) {
	t.Helper()
	resp, err := http.Post(url+"/admin/backup", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct{ Code string }
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e.Code, b
}

func TestBackupEndpoint(t *testing.T) {
	bb := &backupBackend{Backend: httpapitest.New()}
	srv := serve(t, bb, httpapi.Options{})

	status, _, body := postBackup(t, srv.URL, `{"dir":"/var/backups/n1/../n1/2026-12-04"}`)
	var info httpapi.BackupInfo
	if err := json.Unmarshal(body, &info); status != 200 || err != nil || info.Dir != "/var/backups/n1/2026-12-04" || info.Bytes != 4096 {
		t.Fatalf("backup: %d %s (%v)", status, body, err)
	}
	if status, code, body := postBackup(t, srv.URL, `{"dir":"/var/backups/n1/2026-12-04"}`); status != 409 || code != httpapi.CodeBackupTarget {
		t.Errorf("backup into a used dir: %d %s", status, body)
	}
	for _, bad := range []string{``, `{}`, `{"dir":""}`, `{"dir":"relative/dir"}`, `{"dir":"/a\u0000b"}`,
		`{"dir":"/a","extra":1}`, `{"dir":"/a"} {}`, `{"dir":5}`, `[`, `{"dir":"/` + strings.Repeat("a", 9000) + `"}`} {
		if status, code, body := postBackup(t, srv.URL, bad); status != 400 || code != httpapi.CodeBadParameter {
			t.Errorf("body %.40q: %d %s; want 400 bad_parameter", bad, status, body)
		}
	}
	resp, err := http.Get(srv.URL + "/admin/backup")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("GET /admin/backup: %d, want 405", resp.StatusCode)
	}
	bb.fail = errors.New("disk full")
	if status, code, _ := postBackup(t, srv.URL, `{"dir":"/b"}`); status != 500 || code != httpapi.CodeInternal {
		t.Errorf("failed backup: %d %s", status, code)
	}

	plain := serve(t, httpapitest.New(), httpapi.Options{})
	if status, code, _ := postBackup(t, plain.URL, `{"dir":"/b"}`); status != 404 || code != httpapi.CodeNotFound {
		t.Errorf("backend without backups: %d %s", status, code)
	}
}
