package main

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
	"text/tabwriter"
	"time"

	"github.com/dynago/dynago/devcluster"
	"github.com/dynago/dynago/loadgen"
	"github.com/dynago/dynago/storage"
)

// The floors experiment: what a durable put on loopback cannot beat on
// this machine, measured, beside what a real three-node cluster achieves.
// A put (N=3, W=2) entering at its coordinator needs the client's round
// trip, a round trip to the other replicas (in parallel) and one fsync on
// a replica; a get (R=2) needs the client's round trip and one to a replica.

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

type floors struct {
	rtt, fanout, fsync time.Duration
	// fsync3 is three fsyncs at once on three engines: what the three
	// nodes of a put pay when they share one disk, as a loopback cluster
	// does.
	fsync3 time.Duration
}

func measureFloors(dir string) (floors, error) {
	var f floors
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
	if f.rtt, err = floorSample(2000, func() error { return ping(conns[0]) }); err != nil {
		return f, err
	}
	f.fanout, err = floorSample(2000, func() error {
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
	var engs []*storage.Pebble
	for i := range 3 {
		eng, err := storage.OpenPebble(filepath.Join(dir, fmt.Sprintf("fsync%d", i)), storage.PebbleOptions{})
		if err != nil {
			return f, err
		}
		defer eng.Close()
		engs = append(engs, eng)
	}
	value := make([]byte, 100)
	i := 0
	write := func(eng *storage.Pebble) error {
		var b storage.Batch
		i++
		b.Set([]byte(fmt.Sprintf("k%d", i)), value)
		return eng.Apply(&b, true)
	}
	if f.fsync, err = floorSample(500, func() error { return write(engs[0]) }); err != nil {
		return f, err
	}
	f.fsync3, err = floorSample(500, func() error {
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

func runFloors(ctx context.Context, binary string) error {
	dir, err := os.MkdirTemp("", "dynago-floors-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintln(stderr, "measuring floors: loopback round trip, fan-out to two peers, one fsync...")
	f, err := measureFloors(dir)
	if err != nil {
		return err
	}
	base, err := devcluster.FreePortBase(3)
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, "starting a 3-node cluster (N=3, R=2, W=2)...")
	c, err := devcluster.Start(ctx, devcluster.Config{Binary: binary, Nodes: 3, HTTPBasePort: base, DataDir: filepath.Join(dir, "cluster")})
	if err != nil {
		return err
	}
	defer c.Stop()
	var addrs []string
	for _, n := range c.Nodes {
		addrs = append(addrs, n.HTTPAddr)
	}
	if err := waitAllAlive(ctx, addrs[0], 3, 30*time.Second); err != nil {
		return err
	}
	target, err := loadgen.NewClientTarget(addrs, loadgen.ClientOptions{Routing: true, MaxConns: 4})
	if err != nil {
		return err
	}
	measure := func(mix string, concurrency int, ops int64) (loadgen.Summary, error) {
		m, err := loadgen.ParseMix(mix)
		if err != nil {
			return loadgen.Summary{}, err
		}
		res, err := loadgen.Run(ctx, loadgen.Config{Mix: m, Keys: 1000, ValueSize: 100, Concurrency: concurrency, Ops: ops, Preload: true, Seed: 1}, target)
		if err != nil {
			return loadgen.Summary{}, err
		}
		for _, s := range res.Ops {
			if s.Count > 0 {
				return s, nil
			}
		}
		return loadgen.Summary{}, errors.New("floors: no operations measured")
	}
	put, err := measure("put=100", 1, 3000)
	if err != nil {
		return err
	}
	get, err := measure("get=100", 1, 3000)
	if err != nil {
		return err
	}
	putFloor := f.rtt + f.fanout + f.fsync
	sharedFloor := f.rtt + f.fanout + f.fsync3
	getFloor := f.rtt + f.rtt
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "floor\tmedian_ms\t")
	fmt.Fprintf(tw, "loopback TCP round trip\t%.3f\t\n", ms(f.rtt))
	fmt.Fprintf(tw, "fan-out round trip to two peers\t%.3f\t\n", ms(f.fanout))
	fmt.Fprintf(tw, "one fsync (Pebble, 100-byte write)\t%.3f\t\n", ms(f.fsync))
	fmt.Fprintf(tw, "three concurrent fsyncs, one disk\t%.3f\t\n", ms(f.fsync3))
	tw.Flush()
	fmt.Fprintln(stdout)
	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op (1 client, client routing)\tp50_ms\tmean_ms\tp99_ms\tfloor_ms\tp50/floor\tshared-disk floor_ms\tp50/shared\t")
	fmt.Fprintf(tw, "put N=3 W=2\t%.3f\t%.3f\t%.3f\t%.3f\t%.2f\t%.3f\t%.2f\t\n", ms(put.P50), ms(put.Mean), ms(put.P99), ms(putFloor), ms(put.P50)/ms(putFloor), ms(sharedFloor), ms(put.P50)/ms(sharedFloor))
	fmt.Fprintf(tw, "get N=3 R=2\t%.3f\t%.3f\t%.3f\t%.3f\t%.2f\t%.3f\t%.2f\t\n", ms(get.P50), ms(get.Mean), ms(get.P99), ms(getFloor), ms(get.P50)/ms(getFloor), ms(getFloor), ms(get.P50)/ms(getFloor))
	return tw.Flush()
}
