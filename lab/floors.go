package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/dynago/dynago/devcluster"
	"github.com/dynago/dynago/loadgen"
	"github.com/dynago/dynago/storage"
	"github.com/dynago/dynago/storage/pebbledb"
)

// The floors experiment: what a durable put on loopback cannot beat on
// this machine, measured, beside what a real three-node cluster achieves.
// A put (N=3, W=2) entering at its coordinator needs the client's round
// trip, a round trip to the other replicas (in parallel) and one fsync on
// a replica; a get (R=2) needs the client's round trip and one to a replica.
// Like the seed table it draws no chart: Floors returns the measurements
// and the caller prints them.

// floorSample runs fn n times and returns the median duration.
func floorSample(n int, fn func() error) (time.Duration, error) {
	d := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		if err := fn(); err != nil {
			return 0, err
		}
		d = append(d, time.Since(t0))
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2], nil
}

// echoServer answers every byte it reads, until the listener closes.
func echoServer() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln, nil
}

func ping(c net.Conn) error {
	var b [1]byte
	if _, err := c.Write(b[:]); err != nil {
		return err
	}
	_, err := io.ReadFull(c, b[:])
	return err
}

// FloorTimes are the medians of the physical floors, measured without a
// cluster.
type FloorTimes struct {
	RTT    time.Duration // a loopback TCP round trip
	Fanout time.Duration // round trips to two peers at once
	Fsync  time.Duration // one synced 100-byte Pebble write
	// Fsync3 is three fsyncs at once on three engines: what the three
	// nodes of a put pay when they share one disk, as a loopback cluster
	// does.
	Fsync3 time.Duration
}

// PutFloor is what a put (N=3, W=2) at its coordinator cannot beat: the
// client's round trip, the fan-out to the other replicas, one fsync.
func (f FloorTimes) PutFloor() time.Duration { return f.RTT + f.Fanout + f.Fsync }

// SharedPutFloor is PutFloor when the replicas share one disk.
func (f FloorTimes) SharedPutFloor() time.Duration { return f.RTT + f.Fanout + f.Fsync3 }

// GetFloor is what a get (R=2) cannot beat: the client's round trip and
// one to a replica.
func (f FloorTimes) GetFloor() time.Duration { return f.RTT + f.RTT }

// floorSamples are how many round trips and fsyncs measureFloors times;
// medians of this many are stable to a few percent on a quiet machine.
type floorSamples struct{ pings, fsyncs int }

var defaultFloorSamples = floorSamples{pings: 2000, fsyncs: 500}

// measureFloors times the floors, writing its Pebble engines under dir.
func measureFloors(dir string, n floorSamples) (FloorTimes, error) {
	var f FloorTimes
	var conns []net.Conn
	for range 2 {
		ln, err := echoServer()
		if err != nil {
			return f, err
		}
		defer ln.Close()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return f, err
		}
		defer c.Close()
		conns = append(conns, c)
	}
	var err error
	if f.RTT, err = floorSample(n.pings, func() error { return ping(conns[0]) }); err != nil {
		return f, err
	}
	f.Fanout, err = floorSample(n.pings, func() error {
		var wg sync.WaitGroup
		errs := make([]error, len(conns))
		for i, c := range conns {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = ping(c) }()
		}
		wg.Wait()
		return errors.Join(errs...)
	})
	if err != nil {
		return f, err
	}
	var engs []*pebbledb.DB
	for i := range 3 {
		eng, err := pebbledb.Open(filepath.Join(dir, fmt.Sprintf("fsync%d", i)), pebbledb.Options{})
		if err != nil {
			return f, err
		}
		defer eng.Close()
		engs = append(engs, eng)
	}
	value := make([]byte, 100)
	i := 0
	write := func(eng *pebbledb.DB) error {
		var b storage.Batch
		i++
		b.Set([]byte(fmt.Sprintf("k%d", i)), value)
		return eng.Apply(&b, true)
	}
	if f.Fsync, err = floorSample(n.fsyncs, func() error { return write(engs[0]) }); err != nil {
		return f, err
	}
	f.Fsync3, err = floorSample(n.fsyncs, func() error {
		var wg sync.WaitGroup
		errs := make([]error, len(engs))
		for j, eng := range engs {
			var b storage.Batch
			b.Set([]byte(fmt.Sprintf("c%d-%d", j, i)), value)
			wg.Add(1)
			go func() { defer wg.Done(); errs[j] = eng.Apply(&b, true) }()
		}
		i++
		wg.Wait()
		return errors.Join(errs...)
	})
	return f, err
}

// FloorsResult is the floors beside a 3-node cluster's medians: Put and
// Get are one client's puts and gets, routed by the client, N=3 R=2 W=2.
type FloorsResult struct {
	Floors   FloorTimes
	Put, Get loadgen.Summary
}

// FloorsOptions are the floors experiment's knobs.
type FloorsOptions struct {
	// Binary is the dynago executable the cluster runs; default: this
	// executable.
	Binary string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Floors measures the floors, then starts a 3-node local cluster, measures
// 3,000 puts and 3,000 gets by one client and stops the cluster.
func Floors(ctx context.Context, o FloorsOptions) (FloorsResult, error) {
	var res FloorsResult
	if o.Log == nil {
		o.Log = io.Discard
	}
	dir, err := os.MkdirTemp("", "dynago-floors-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintln(o.Log, "measuring floors: loopback round trip, fan-out to two peers, one fsync...")
	if res.Floors, err = measureFloors(dir, defaultFloorSamples); err != nil {
		return res, err
	}
	fmt.Fprintln(o.Log, "starting a 3-node cluster (N=3, R=2, W=2)...")
	// The cluster's data goes beside the floors' engines: the same disk,
	// so its fsyncs pay what Fsync measured.
	c, err := startDev(ctx, Options{Binary: o.Binary}, devcluster.Config{Nodes: 3}, dir)
	if err != nil {
		return res, err
	}
	defer c.stop()
	target, err := loadgen.NewClientTarget(c.addrs, loadgen.ClientOptions{Routing: true, MaxConns: 4})
	if err != nil {
		return res, err
	}
	measure := func(mix string) (loadgen.Summary, error) {
		m, err := loadgen.ParseMix(mix)
		if err != nil {
			return loadgen.Summary{}, err
		}
		r, err := loadgen.Run(ctx, loadgen.Config{Mix: m, Keys: 1000, ValueSize: 100, Concurrency: 1, Ops: 3000, Preload: true, Seed: 1}, target)
		if err != nil {
			return loadgen.Summary{}, err
		}
		for _, s := range r.Ops {
			if s.Count > 0 {
				return s, nil
			}
		}
		return loadgen.Summary{}, errors.New("floors: no operations measured")
	}
	if res.Put, err = measure("put=100"); err != nil {
		return res, err
	}
	res.Get, err = measure("get=100")
	return res, err
}
