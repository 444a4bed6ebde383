package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dynago/dynago/client"
	"github.com/dynago/dynago/devcluster"
)

// devCluster is a local cluster an experiment started, with the HTTP
// addresses of its nodes.
type devCluster struct {
	c     *devcluster.Cluster
	addrs []string
	dir   string
}

// startDev starts a local cluster and waits until every node sees every
// other alive: until then requests would measure hinted fallbacks, not
// the protocol. dataRoot is where the data directories go ("" = the
// system's temp directory).
func startDev(ctx context.Context, o Options, cfg devcluster.Config, dataRoot string) (*devCluster, error) {
	base, err := devcluster.FreePortBase(cfg.Nodes)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(dataRoot, "dynago-lab-")
	if err != nil {
		return nil, err
	}
	cfg.Binary, cfg.HTTPBasePort, cfg.DataDir = o.Binary, base, dir
	c, err := devcluster.Start(ctx, cfg)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	d := &devCluster{c: c, dir: dir}
	for _, n := range c.Nodes {
		d.addrs = append(d.addrs, n.HTTPAddr)
	}
	if err := waitAlive(ctx, d.addrs[0], len(d.addrs), 30*time.Second); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

func (d *devCluster) stop() {
	d.c.Stop()
	os.RemoveAll(d.dir)
}

// waitAlive waits until the node at addr reports n nodes alive.
func waitAlive(ctx context.Context, addr string, n int, within time.Duration) error {
	cl, err := client.New([]string{addr})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if info, err := cl.Cluster(ctx); err == nil {
			alive := 0
			for _, nd := range info.Nodes {
				if nd.Status == "alive" {
					alive++
				}
			}
			if alive >= n {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("lab: not every node became alive")
}

// members returns every member's ID and HTTP address, as the node at one
// of addrs reports them, with the cluster's configuration.
func members(ctx context.Context, addrs []string) (client.Cluster, error) {
	cl, err := client.New(addrs)
	if err != nil {
		return client.Cluster{}, fmt.Errorf("%w: --cluster: %w", ErrOptions, err)
	}
	info, err := cl.Cluster(ctx)
	if err != nil {
		return client.Cluster{}, fmt.Errorf("lab: reading the cluster: %w", err)
	}
	return info, nil
}

func baseURL(addr string) string {
	if strings.Contains(addr, "://") {
		return strings.TrimRight(addr, "/")
	}
	return "http://" + addr
}

// requestsServed sums a node's dynago_requests_total series (client
// requests it coordinated or forwarded, every operation and outcome) from
// its /metrics.
func requestsServed(ctx context.Context, hc *http.Client, addr string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL(addr)+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("lab: %s/metrics: status %d", addr, resp.StatusCode)
	}
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "dynago_requests_total{") && !strings.HasPrefix(line, "dynago_requests_total ") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("lab: %s/metrics: bad sample %q", addr, line)
		}
		sum += v
	}
	return sum, sc.Err()
}

// openLoop calls op rate times a second for d, each call in its own
// goroutine with its index (0, 1, …), at most maxInFlight at once (a due
// call beyond that waits), and waits for every call to return.
func openLoop(ctx context.Context, rate float64, d time.Duration, maxInFlight int, op func(ctx context.Context, i int)) {
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	start := time.Now()
	count := int(rate * d.Seconds())
	for i := range count {
		due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if wait := time.Until(due); wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			op(ctx, i)
		}()
	}
	wg.Wait()
}

// warmUp puts keys for d at rate through cl, unmeasured: a cluster that
// just started is still gossiping, building Merkle trees and opening
// connections, and the first configuration measured would pay for it.
func warmUp(ctx context.Context, cl *client.Client, rate float64, d time.Duration) {
	openLoop(ctx, rate, d, 64, func(ctx context.Context, i int) {
		_, _ = cl.Put(ctx, fmt.Sprintf("warm-%d", i), []byte("v"), nil)
	})
}
