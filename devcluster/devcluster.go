// Package devcluster runs a real local dynago cluster: one `dynago server`
// process per node on 127.0.0.1, each with its own data directory. It is
// what `dynago dev` runs, what the end-to-end tests run, and what the lab
// uses to kill (SIGKILL), restart and wipe nodes.
//
// It only supervises processes; it knows nothing of the protocol beyond
// the command-line flags of `dynago server` and its /healthz endpoint.
package devcluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dynago/dynago/internal/ports"
	"github.com/dynago/dynago/security"
)

// Config describes a local cluster.
type Config struct {
	Binary         string // path to the dynago binary; default: this executable
	Nodes          int    // default 5
	HTTPBasePort   int    // node i (1-based) serves HTTP on HTTPBasePort+i-1; default 9101
	RPCBasePort    int    // default HTTPBasePort+100
	GossipBasePort int    // default HTTPBasePort+200
	RESPBasePort   int    // node i serves RESP (--resp-addr) on RESPBasePort+i-1; 0 = no RESP
	Host           string // default 127.0.0.1
	// Partitions (Q), N, R and W are passed to every node when set; zero
	// leaves them to the server's preset (node.LabConfig for "lab": Q=64,
	// N=3, R and W a majority), so that the defaults live in one place.
	Partitions int
	N, R, W    int
	Preset     string // server preset; default "lab" (fast detection and repair)
	// ClusterName is every node's --cluster-name; default "dev-" and the
	// HTTP base port, so two local clusters (say, tests running side by
	// side) never merge through a stale seed address.
	ClusterName string
	DataDir     string // default: a fresh directory under the system temp dir
	// DrainTimeout is each node's --drain-timeout: how long a node stopped
	// with SIGTERM keeps serving with /readyz answering 503. Default 0: a
	// local cluster has no load balancer to wait for.
	DrainTimeout time.Duration
	ExtraArgs    []string
	// CertsDir, when set, is every node's --certs-dir: it must hold
	// ca.crt and a node.crt/node.key valid for Host (dynago cert
	// create-node 127.0.0.1). Nodes then run mutual TLS between them and
	// HTTPS, and the cluster probes /healthz over HTTPS trusting ca.crt.
	// Gossip keys and tokens go in ExtraArgs.
	CertsDir string
	// Logs receives every node's log lines, prefixed with the node ID; nil
	// writes them to DataDir/<id>.log only.
	Logs io.Writer
}

// Node is one supervised node.
type Node struct {
	ID         string
	Index      int // 1-based
	HTTPAddr   string
	URL        string // base URL of the HTTP API: http:// or, with CertsDir, https:// and HTTPAddr
	RPCAddr    string
	GossipAddr string
	RESPAddr   string // "" without Config.RESPBasePort
	DataDir    string
	// Joined marks a node added to a running cluster: it starts with
	// --join only and becomes a member when an operator commits the plan.
	Joined bool

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// Cluster is a running local cluster.
type Cluster struct {
	cfg Config
	// Nodes lists the nodes in order. AddNode appends to it: code that
	// runs concurrently with AddNode must use List instead.
	Nodes   []*Node
	mu      sync.Mutex
	DataDir string
	tempDir bool
	static  string // the --cluster list of the founding nodes
	scheme  string // of the nodes' HTTP API: http, or https with CertsDir
	probe   *http.Client
}

// ErrNotReady reports a node that did not become healthy in time.
var ErrNotReady = errors.New("devcluster: node did not become ready")

func (c *Config) defaults() error {
	if c.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		c.Binary = exe
	}
	if c.Nodes == 0 {
		c.Nodes = 5
	}
	if c.Nodes < 1 || c.Nodes > 64 {
		return fmt.Errorf("devcluster: --nodes must be 1..64, not %d", c.Nodes)
	}
	if c.HTTPBasePort == 0 {
		c.HTTPBasePort = 9101
	}
	if c.RPCBasePort == 0 {
		c.RPCBasePort = c.HTTPBasePort + 100
	}
	if c.GossipBasePort == 0 {
		c.GossipBasePort = c.HTTPBasePort + 200
	}
	if err := c.checkPortRanges(); err != nil {
		return err
	}
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.Preset == "" {
		c.Preset = "lab"
	}
	if c.ClusterName == "" {
		c.ClusterName = "dev-" + strconv.Itoa(c.HTTPBasePort)
	}
	return nil
}

// checkPortRanges refuses port ranges that leave 1..65535 or overlap: two
// listeners on one port would otherwise surface as one node's "address
// already in use" in its log, after the others started.
func (c *Config) checkPortRanges() error {
	type span struct {
		flag string
		base int
	}
	spans := []span{{"--http-base-port", c.HTTPBasePort}, {"--rpc-base-port", c.RPCBasePort}, {"--gossip-base-port", c.GossipBasePort}}
	if c.RESPBasePort != 0 {
		spans = append(spans, span{"--resp-base-port", c.RESPBasePort})
	}
	last := func(s span) int { return s.base + c.Nodes - 1 }
	for i, a := range spans {
		if a.base < 1 || last(a) > 65535 {
			return fmt.Errorf("devcluster: %s %d: the ports %d..%d of %d nodes must lie within 1..65535", a.flag, a.base, a.base, last(a), c.Nodes)
		}
		for _, b := range spans[:i] {
			if a.base <= last(b) && b.base <= last(a) {
				return fmt.Errorf("devcluster: %s %d and %s %d overlap: %d nodes use ports %d..%d and %d..%d; move one of them",
					b.flag, b.base, a.flag, a.base, c.Nodes, b.base, last(b), a.base, last(a))
			}
		}
	}
	return nil
}

// Check reports what Start would refuse in cfg (node count, port ranges)
// without starting anything, so that a command line can reject bad flags
// before it announces a start.
func (cfg Config) Check() error { return cfg.defaults() }

// Start launches every node and waits until all answer /healthz.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, DataDir: cfg.DataDir, scheme: "http", probe: &http.Client{Timeout: time.Second}}
	if cfg.CertsDir != "" {
		tlsCfg, err := security.ClientConfig(cfg.CertsDir, "")
		if err != nil {
			return nil, fmt.Errorf("devcluster: CertsDir: %w", err)
		}
		c.scheme = "https"
		c.probe = ProbeClient(tlsCfg)
	}
	if c.DataDir == "" {
		dir, err := os.MkdirTemp("", "dynago-dev-")
		if err != nil {
			return nil, err
		}
		c.DataDir, c.tempDir = dir, true
	}
	var cluster string
	for i := 1; i <= cfg.Nodes; i++ {
		n := &Node{
			ID:         "n" + strconv.Itoa(i),
			Index:      i,
			HTTPAddr:   net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.HTTPBasePort+i-1)),
			RPCAddr:    net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.RPCBasePort+i-1)),
			GossipAddr: net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.GossipBasePort+i-1)),
		}
		n.DataDir = filepath.Join(c.DataDir, n.ID)
		n.RESPAddr = respAddr(cfg, i)
		n.URL = c.scheme + "://" + n.HTTPAddr
		c.Nodes = append(c.Nodes, n)
		if i > 1 {
			cluster += ","
		}
		cluster += n.ID + "=" + n.RPCAddr + "/" + n.HTTPAddr
	}
	for _, n := range c.Nodes {
		for _, a := range []string{n.HTTPAddr, n.RPCAddr, n.RESPAddr} {
			if a == "" {
				continue
			}
			if err := portFree(a); err != nil {
				c.removeTemp()
				return nil, err
			}
		}
	}
	c.static = cluster
	for _, n := range c.Nodes {
		if err := c.launch(n); err != nil {
			c.Stop()
			return nil, err
		}
	}
	for _, n := range c.Nodes {
		if err := c.waitHealthy(ctx, n); err != nil {
			c.Stop()
			// The log's tail goes into the error: the caller (a test on a
			// CI machine) usually removes the data directory before anyone
			// can read the file.
			return nil, fmt.Errorf("%w: %s: %v (log: %s)\n%s", ErrNotReady, n.ID, err, n.logPath(), logTail(n.logPath(), 2000))
		}
	}
	return c, nil
}

// FreePortBase finds a base port whose HTTP, RPC and gossip ranges for n
// nodes (base, base+100, base+200; devcluster's default layout) are all
// free on 127.0.0.1 right now. Tests and experiments use it to run
// clusters side by side.
//
// The ranges lie below the kernel's ephemeral ports (32768 and up on
// Linux by default): a port in that range that is free now can be handed
// to any process's outgoing connection or ":0" listener before the node
// binds it, which is how a CI run once lost a node to "connection
// refused". The gossip ports are checked for UDP too: memberlist binds
// both.
func FreePortBase(n int) (int, error) {
	lo, hi := 10000, ports.EphemeralStart()-210-n
	if hi <= lo {
		lo, hi = 20000, 50000
	}
	for range 50 {
		base := lo + 10*rand.IntN((hi-lo)/10)
		ok := true
		for _, off := range []int{0, 100, 200} {
			for i := range n {
				addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(base+off+i))
				if portFree(addr) != nil || (off == 200 && udpPortFree(addr) != nil) {
					ok = false
					break
				}
			}
		}
		if ok {
			return base, nil
		}
	}
	return 0, errors.New("devcluster: no free port range found")
}

func udpPortFree(addr string) error {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	return pc.Close()
}

// logTail is the last n bytes of the file at path, or a note saying why
// there are none.
func logTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

func portFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("devcluster: address %s is not free (another cluster running? pick --http-base-port): %w", addr, err)
	}
	return ln.Close()
}

func (n *Node) logPath() string { return n.DataDir + ".log" }

// launch starts n's process; it must not be running.
func (c *Cluster) launch(n *Node) error {
	if err := os.MkdirAll(n.DataDir, 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(n.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	var seeds []string
	for _, o := range c.Nodes {
		if o != n {
			seeds = append(seeds, o.GossipAddr)
		}
	}
	args := []string{"server",
		"--id", n.ID, "--data-dir", n.DataDir,
		"--http-addr", n.HTTPAddr, "--rpc-addr", n.RPCAddr, "--gossip-addr", n.GossipAddr,
		"--join", strings.Join(seeds, ","), "--preset", c.cfg.Preset, "--cluster-name", c.cfg.ClusterName,
		"--drain-timeout", c.cfg.DrainTimeout.String(),
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"--partitions", c.cfg.Partitions}, {"--n", c.cfg.N}, {"--r", c.cfg.R}, {"--w", c.cfg.W}} {
		if f.v != 0 {
			args = append(args, f.name, strconv.Itoa(f.v))
		}
	}
	if !n.Joined {
		args = append(args, "--cluster", c.static)
	}
	if n.RESPAddr != "" {
		args = append(args, "--resp-addr", n.RESPAddr)
	}
	if c.cfg.CertsDir != "" {
		args = append(args, "--certs-dir", c.cfg.CertsDir)
	}
	args = append(args, c.cfg.ExtraArgs...)
	cmd := exec.Command(c.cfg.Binary, args...)
	var out io.Writer = logf
	if c.cfg.Logs != nil {
		out = io.MultiWriter(logf, &prefixWriter{prefix: []byte(n.ID + " | "), w: c.cfg.Logs})
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group: a Ctrl-C at the terminal reaches dev, which then
	// stops the nodes in order, instead of every node at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("devcluster: starting %s: %w", n.ID, err)
	}
	done := make(chan struct{})
	n.mu.Lock()
	n.cmd, n.done, n.log = cmd, done, logf
	n.mu.Unlock()
	go func() {
		cmd.Wait()
		logf.Close()
		close(done)
	}()
	return nil
}

// Running reports whether n's process is alive.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// PID returns the process ID, or 0 when not running.
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// respAddr is node i's RESP address, "" when the cluster serves no RESP.
func respAddr(cfg Config, i int) string {
	if cfg.RESPBasePort == 0 {
		return ""
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.RESPBasePort+i-1))
}

// AddNode starts one more node, which joins the running cluster through
// gossip. It owns no partitions until an operator commits the plan
// (`dynago admin plan`, `dynago admin commit`).
func (c *Cluster) AddNode(ctx context.Context) (*Node, error) {
	i := len(c.Nodes) + 1
	n := &Node{
		ID:         "n" + strconv.Itoa(i),
		Index:      i,
		HTTPAddr:   net.JoinHostPort(c.cfg.Host, strconv.Itoa(c.cfg.HTTPBasePort+i-1)),
		RPCAddr:    net.JoinHostPort(c.cfg.Host, strconv.Itoa(c.cfg.RPCBasePort+i-1)),
		GossipAddr: net.JoinHostPort(c.cfg.Host, strconv.Itoa(c.cfg.GossipBasePort+i-1)),
		Joined:     true,
	}
	n.DataDir = filepath.Join(c.DataDir, n.ID)
	n.RESPAddr = respAddr(c.cfg, i)
	n.URL = c.scheme + "://" + n.HTTPAddr
	for _, a := range []string{n.HTTPAddr, n.RPCAddr, n.RESPAddr} {
		if a == "" {
			continue
		}
		if err := portFree(a); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	c.Nodes = append(c.Nodes, n)
	c.mu.Unlock()
	if err := c.launch(n); err != nil {
		return nil, err
	}
	return n, c.waitHealthy(ctx, n)
}

// Binary returns the path of the dynago binary the nodes run.
func (c *Cluster) Binary() string { return c.cfg.Binary }

// ClusterName is the --cluster-name every node runs with: a node started by
// hand must use it to join.
func (c *Cluster) ClusterName() string { return c.cfg.ClusterName }

// List returns a snapshot of the nodes, safe to call while AddNode runs.
func (c *Cluster) List() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.Nodes)
}

// Node returns the node with the given 1-based index or ID.
func (c *Cluster) Node(idOrIndex string) (*Node, error) {
	for _, n := range c.Nodes {
		if n.ID == idOrIndex || strconv.Itoa(n.Index) == idOrIndex {
			return n, nil
		}
	}
	return nil, fmt.Errorf("devcluster: no node %q", idOrIndex)
}

// Kill sends SIGKILL to n and waits for the process to exit: a crash, with
// no chance to flush anything.
func (c *Cluster) Kill(n *Node) error { return n.signal(syscall.SIGKILL, 10*time.Second) }

// Pause freezes n with SIGSTOP: the process keeps its sockets and memory
// but answers nothing, as a node stalled by GC, swap or a hung disk would.
func (c *Cluster) Pause(n *Node) error { return n.signalOnly(syscall.SIGSTOP) }

// Resume continues a paused n with SIGCONT; on a running node it does
// nothing.
func (c *Cluster) Resume(n *Node) error { return n.signalOnly(syscall.SIGCONT) }

// signalOnly sends sig to n's process without waiting for anything; a
// node that is not running is left alone.
func (n *Node) signalOnly(sig syscall.Signal) error {
	if !n.Running() {
		return nil
	}
	n.mu.Lock()
	p := n.cmd.Process
	n.mu.Unlock()
	if err := p.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("devcluster: %v to %s: %w", sig, n.ID, err)
	}
	return nil
}

// StopNode asks n to shut down cleanly (SIGTERM), killing it after 10s.
// A paused node is continued so that it can act on the SIGTERM.
func (c *Cluster) StopNode(n *Node) error {
	_ = n.signalOnly(syscall.SIGCONT)
	if err := n.signal(syscall.SIGTERM, 10*time.Second); err != nil {
		return n.signal(syscall.SIGKILL, 5*time.Second)
	}
	return nil
}

func (n *Node) signal(sig syscall.Signal, wait time.Duration) error {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil || done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return nil
	case <-time.After(wait):
		return fmt.Errorf("devcluster: %s did not exit within %v after %v", n.ID, wait, sig)
	}
}

// Restart starts n again on the same data directory and waits until it
// is healthy. A running node is killed first.
func (c *Cluster) Restart(ctx context.Context, n *Node) error {
	if err := c.Kill(n); err != nil {
		return err
	}
	if err := c.launch(n); err != nil {
		return err
	}
	return c.waitHealthy(ctx, n)
}

// Wipe kills n, deletes its data directory and starts it empty.
func (c *Cluster) Wipe(ctx context.Context, n *Node) error {
	if err := c.Kill(n); err != nil {
		return err
	}
	if err := os.RemoveAll(n.DataDir); err != nil {
		return err
	}
	if err := c.launch(n); err != nil {
		return err
	}
	return c.waitHealthy(ctx, n)
}

// Stop stops every node (SIGTERM, then SIGKILL after a grace period).
func (c *Cluster) Stop() {
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.StopNode(n)
		}()
	}
	wg.Wait()
}

// Remove deletes the data directory if Start created it.
func (c *Cluster) removeTemp() {
	if c.tempDir {
		os.RemoveAll(c.DataDir)
	}
}

// Cleanup stops the cluster and deletes a data directory Start created,
// unless keep is set.
func (c *Cluster) Cleanup(keep bool) {
	c.Stop()
	if !keep {
		c.removeTemp()
	}
}

// Scheme is the scheme of the nodes' HTTP API: "https" with
// Config.CertsDir, else "http".
func (c *Cluster) Scheme() string { return c.scheme }

func (c *Cluster) waitHealthy(ctx context.Context, n *Node) error {
	// A node whose process exits (a port taken, a bad flag) will never
	// answer: stop waiting then instead of at the timeout.
	n.mu.Lock()
	done, cmd := n.done, n.cmd
	n.mu.Unlock()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	exited := make(chan struct{})
	if done != nil {
		go func() {
			select {
			case <-done:
				close(exited)
				cancel()
			case <-wctx.Done():
			}
		}()
	}
	err := waitHealthy(wctx, c.probe, n.URL, 30*time.Second)
	select {
	case <-exited:
		if err != nil {
			return fmt.Errorf("process exited (%v) before it answered", cmd.ProcessState)
		}
	default:
	}
	return err
}

// ProbeClient is an HTTP client for health probes that trusts tlsCfg.
func ProbeClient(tlsCfg *tls.Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	return &http.Client{Timeout: time.Second, Transport: tr}
}

// WaitHealthy polls http://addr/healthz until it answers 200 or timeout.
func WaitHealthy(ctx context.Context, addr string, timeout time.Duration) error {
	return waitHealthy(ctx, &http.Client{Timeout: time.Second}, "http://"+addr, timeout)
}

// waitHealthy polls base/healthz with client until it answers 200 or
// timeout.
func waitHealthy(ctx context.Context, client *http.Client, base string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("status %d", resp.StatusCode)
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return last
}

// prefixWriter prefixes each line written through it.
type prefixWriter struct {
	mu     sync.Mutex
	prefix []byte
	w      io.Writer
	mid    bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []byte
	for _, c := range b {
		if !p.mid {
			out = append(out, p.prefix...)
			p.mid = true
		}
		out = append(out, c)
		if c == '\n' {
			p.mid = false
		}
	}
	_, err := p.w.Write(out)
	return len(b), err
}
