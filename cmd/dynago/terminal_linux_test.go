package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestIsTerminal: bench draws its progress line only on a terminal. A
// character device that is no terminal (/dev/null, where cron and CI send
// stderr) and a pipe, a file or a buffer get none; a pseudo-terminal's
// slave side, what a shell's stderr is, gets one.
func TestIsTerminal(t *testing.T) {
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	file, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	for name, out := range map[string]io.Writer{"/dev/null": devNull, "a pipe": w, "a file": file, "a buffer": &bytes.Buffer{}} {
		if isTerminal(out) {
			t.Errorf("%s counts as a terminal", name)
		}
	}

	ptm, pts, err := openPTY()
	if err != nil {
		t.Skipf("no pseudo-terminal to check the positive case with: %v", err)
	}
	defer ptm.Close()
	defer pts.Close()
	if !isTerminal(pts) {
		t.Errorf("a pseudo-terminal (%s) does not count as a terminal", pts.Name())
	}
}

// openPTY opens a new pseudo-terminal: its master side, which must stay
// open while the slave is used, and its slave side.
func openPTY() (ptm, pts *os.File, err error) {
	ptm, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	fail := func(what string, err error) (*os.File, *os.File, error) {
		ptm.Close()
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		return fail("unlocking the pty", err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		return fail("naming the pty", err)
	}
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fail("opening the pty's slave", err)
	}
	return ptm, pts, nil
}
