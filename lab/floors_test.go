package lab

import (
	"os"
	"path/filepath"
	"testing"
)

// The floors are measured without a cluster: real loopback round trips
// and real synced Pebble writes, fewer of them than the experiment takes.
func TestMeasureFloors(t *testing.T) {
	dir := t.TempDir()
	f, err := measureFloors(dir, floorSamples{pings: 50, fsyncs: 5})
	if err != nil {
		t.Fatal(err)
	}
	if f.RTT <= 0 || f.Fanout <= 0 || f.Fsync <= 0 || f.Fsync3 <= 0 {
		t.Fatalf("a floor is not positive: %+v", f)
	}
	if got, want := f.PutFloor(), f.RTT+f.Fanout+f.Fsync; got != want {
		t.Errorf("PutFloor %v, want RTT+Fanout+Fsync %v", got, want)
	}
	if got, want := f.SharedPutFloor(), f.RTT+f.Fanout+f.Fsync3; got != want {
		t.Errorf("SharedPutFloor %v, want RTT+Fanout+Fsync3 %v", got, want)
	}
	if got := f.GetFloor(); got != 2*f.RTT {
		t.Errorf("GetFloor %v, want two round trips %v", got, 2*f.RTT)
	}
	// The fsyncs went to three engines in dir, not somewhere else.
	for _, name := range []string{"fsync0", "fsync1", "fsync2"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("engine %s: %v", name, err)
		}
	}
}

// A directory the engines cannot be opened in is an error, not a floor of 0.
func TestMeasureFloorsReportsEngineErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := measureFloors(file, floorSamples{pings: 5, fsyncs: 1}); err == nil {
		t.Fatal("measureFloors in a file: no error")
	}
}
