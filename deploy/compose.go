// Package deploy holds what runs dynago in containers: the FROM-scratch
// image (Dockerfile, built by `make image`), a 5-node cluster on one Docker
// host (compose.yaml), and Compose, which runs that file and drives it as a
// chaos.Cluster: nodes are containers, killed, paused and cut off from each
// other with the docker CLI, so the chaos checker sees real network cuts
// rather than injected faults.
package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dynago/dynago/chaos"
)

// Nodes are the node IDs compose.yaml defines, in order; node i (from 1)
// has address NET.(10+i) on the cluster network.
var Nodes = []string{"n1", "n2", "n3", "n4", "n5"}

// Options configure a compose project. Every field but Ports has a default.
type Options struct {
	// File is the compose file; default compose.yaml in the working
	// directory (this package's directory under go test).
	File string
	// Project is the compose project name, which prefixes every container,
	// network and volume: unique per test run.
	Project string
	// Image is the node image; default dynago:dev.
	Image string
	// Net is the first three octets of the cluster network's /24, which
	// no other network on the host may overlap; default 172.30.89.
	Net string
	// Ports are the host ports (on 127.0.0.1) of the nodes' HTTP APIs,
	// one per node of Nodes.
	Ports []int
	// Preset is the servers' timing preset; default lab.
	Preset string
	// Log receives one line per docker action; nil discards them.
	Log func(format string, args ...any)
}

// Compose is a running compose project of compose.yaml. It implements
// chaos.Cluster; its methods are safe for concurrent use.
type Compose struct {
	opts    Options
	command []string // "docker compose" or "docker-compose"
	env     []string
	hc      *http.Client

	mu      sync.Mutex
	ids     map[string]string // node ID → container ID (changes on Wipe)
	cut     map[string]bool   // nodes disconnected from the cluster network
	network string            // the cluster network's name
}

var _ chaos.Cluster = (*Compose)(nil)

// ErrNoDocker reports that the docker CLI or its daemon cannot be used.
var ErrNoDocker = errors.New("deploy: docker is not available")

// DockerAvailable returns nil when the docker CLI reaches a daemon, and an
// error wrapping ErrNoDocker saying why not otherwise.
func DockerAvailable(ctx context.Context) error {
	if _, err := exec.LookPath("docker"); err != nil {
		return fmt.Errorf("%w: no docker command: %v", ErrNoDocker, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: the daemon does not answer: %v: %s", ErrNoDocker, err, bytes.TrimSpace(out))
	}
	return nil
}

// ComposeCommand returns the Compose CLI of this machine: the plugin
// (docker compose) where installed, else the standalone docker-compose.
func ComposeCommand(ctx context.Context) ([]string, error) {
	for _, c := range [][]string{{"docker", "compose"}, {"docker-compose"}} {
		if _, err := exec.LookPath(c[0]); err != nil {
			continue
		}
		args := append(slices.Clone(c[1:]), "version")
		if exec.CommandContext(ctx, c[0], args...).Run() == nil {
			return c, nil
		}
	}
	return nil, errors.New("deploy: neither docker compose nor docker-compose is installed")
}

// Up starts the project (compose up -d) and returns once every node
// answers /healthz and sees every other alive, or ctx ends. On error the
// project may be partly up: call Down.
func Up(ctx context.Context, opts Options) (*Compose, error) {
	if opts.Project == "" || len(opts.Ports) != len(Nodes) {
		return nil, fmt.Errorf("deploy: Options need a Project and %d Ports", len(Nodes))
	}
	if opts.File == "" {
		opts.File = "compose.yaml"
	}
	if opts.Image == "" {
		opts.Image = "dynago:dev"
	}
	if opts.Net == "" {
		opts.Net = "172.30.89"
	}
	if opts.Preset == "" {
		opts.Preset = "lab"
	}
	if opts.Log == nil {
		opts.Log = func(string, ...any) {}
	}
	command, err := ComposeCommand(ctx)
	if err != nil {
		return nil, err
	}
	c := &Compose{
		opts: opts, command: command,
		// Short dial timeout: a paused node accepts nothing.
		hc:  &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{Timeout: time.Second}).DialContext}},
		ids: map[string]string{}, cut: map[string]bool{},
	}
	c.env = append(os.Environ(),
		"DYNAGO_IMAGE="+opts.Image, "DYNAGO_NET="+opts.Net, "DYNAGO_PRESET="+opts.Preset,
		// A container killed by the nemesis must stay down until Start.
		"DYNAGO_RESTART=no")
	for i, p := range opts.Ports {
		c.env = append(c.env, fmt.Sprintf("DYNAGO_PORT_N%d=%d", i+1, p))
	}
	if _, err := c.compose(ctx, "up", "-d"); err != nil {
		return c, err
	}
	out, err := docker(ctx, "network", "ls", "--filter", "label=com.docker.compose.project="+opts.Project,
		"--filter", "label=com.docker.compose.network=cluster", "--format", "{{.Name}}")
	if err != nil {
		return c, err
	}
	if c.network = strings.TrimSpace(out); c.network == "" || strings.Contains(c.network, "\n") {
		return c, fmt.Errorf("deploy: project %s has no single cluster network (%q)", opts.Project, c.network)
	}
	for _, id := range Nodes {
		if _, err := c.container(ctx, id); err != nil {
			return c, err
		}
	}
	return c, c.WaitHealthy(ctx)
}

// compose runs the compose CLI on the project.
func (c *Compose) compose(ctx context.Context, args ...string) (string, error) {
	full := append(slices.Clone(c.command[1:]), "-p", c.opts.Project, "-f", c.opts.File)
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, c.command[0], full...)
	cmd.Env = c.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("deploy: %s %s: %v: %s", c.command[0], strings.Join(full, " "), err, tailOf(out.String(), 2000))
	}
	return out.String(), nil
}

// docker runs the docker CLI and returns its standard output.
func docker(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("deploy: docker %s: %v: %s", strings.Join(args, " "), err, tailOf(errOut.String(), 2000))
	}
	return out.String(), nil
}

func tailOf(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// container returns the ID of node id's container, looked up by compose's
// labels (container names differ between Compose v1 and v2).
func (c *Compose) container(ctx context.Context, id string) (string, error) {
	c.mu.Lock()
	cid := c.ids[id]
	c.mu.Unlock()
	if cid != "" {
		return cid, nil
	}
	out, err := docker(ctx, "ps", "-aq", "--no-trunc", "--filter", "label=com.docker.compose.project="+c.opts.Project,
		"--filter", "label=com.docker.compose.service="+id)
	if err != nil {
		return "", err
	}
	if cid = strings.TrimSpace(out); cid == "" || strings.Contains(cid, "\n") {
		return "", fmt.Errorf("deploy: node %s has no single container (%q)", id, cid)
	}
	c.mu.Lock()
	c.ids[id] = cid
	c.mu.Unlock()
	return cid, nil
}

func (c *Compose) index(id string) (int, error) {
	i := slices.Index(Nodes, id)
	if i < 0 {
		return 0, fmt.Errorf("deploy: no node %q", id)
	}
	return i, nil
}

// ClusterIP is node id's address on the cluster network.
func (c *Compose) ClusterIP(id string) string {
	i, _ := c.index(id)
	return c.opts.Net + "." + strconv.Itoa(11+i)
}

// Nodes implements chaos.Cluster.
func (c *Compose) Nodes() []string { return slices.Clone(Nodes) }

// HTTPAddr implements chaos.Cluster: the node's published port.
func (c *Compose) HTTPAddr(id string) string {
	i, err := c.index(id)
	if err != nil {
		return ""
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.opts.Ports[i]))
}

// Kill implements chaos.Cluster: SIGKILL to the node's process; the
// container and its volume stay, as after a crash.
func (c *Compose) Kill(ctx context.Context, id string) error {
	cid, err := c.container(ctx, id)
	if err != nil {
		return err
	}
	c.opts.Log("docker kill %s", id)
	_, err = docker(ctx, "kill", "-s", "KILL", cid)
	return err
}

// Start implements chaos.Cluster: docker start, then wait for /healthz.
func (c *Compose) Start(ctx context.Context, id string) error {
	cid, err := c.container(ctx, id)
	if err != nil {
		return err
	}
	c.opts.Log("docker start %s", id)
	if _, err := docker(ctx, "start", cid); err != nil {
		return err
	}
	return c.waitHealthz(ctx, id)
}

// Pause implements chaos.Cluster: docker pause freezes every process of
// the container (the cgroup freezer): it accepts connections it never
// answers, like a stalled machine.
func (c *Compose) Pause(ctx context.Context, id string) error {
	cid, err := c.container(ctx, id)
	if err != nil {
		return err
	}
	c.opts.Log("docker pause %s", id)
	_, err = docker(ctx, "pause", cid)
	return err
}

// Resume implements chaos.Cluster.
func (c *Compose) Resume(ctx context.Context, id string) error {
	cid, err := c.container(ctx, id)
	if err != nil {
		return err
	}
	c.opts.Log("docker unpause %s", id)
	_, err = docker(ctx, "unpause", cid)
	return err
}

// Wipe implements chaos.Cluster: the container is removed with its data
// volume and created again by compose, empty.
func (c *Compose) Wipe(ctx context.Context, id string) error {
	cid, err := c.container(ctx, id)
	if err != nil {
		return err
	}
	c.opts.Log("wipe %s: docker rm -f, docker volume rm, compose up", id)
	c.mu.Lock()
	delete(c.ids, id)
	// The new container is created on every network of compose.yaml.
	delete(c.cut, id)
	c.mu.Unlock()
	if _, err := docker(ctx, "rm", "-f", cid); err != nil {
		return err
	}
	vols, err := docker(ctx, "volume", "ls", "-q", "--filter", "label=com.docker.compose.project="+c.opts.Project,
		"--filter", "label=com.docker.compose.volume="+id+"-data")
	if err != nil {
		return err
	}
	if v := strings.TrimSpace(vols); v != "" {
		if _, err := docker(ctx, "volume", "rm", v); err != nil {
			return err
		}
	}
	if _, err := c.compose(ctx, "up", "-d", "--no-deps", id); err != nil {
		return err
	}
	if _, err := c.container(ctx, id); err != nil {
		return err
	}
	return c.waitHealthz(ctx, id)
}

// Partition implements chaos.Cluster with docker network disconnect: the
// nodes of the smaller group lose their cluster-network interface, so no
// packet passes between them and anyone. That cuts every link between a
// and b, and more when the smaller group has two or more nodes (they lose
// each other too) or a and b leave nodes out: a real cut can only isolate
// a container, not one of its links. Clients still reach every node: the
// published HTTP ports are on the other network.
func (c *Compose) Partition(ctx context.Context, a, b []string) error {
	for _, x := range a {
		if slices.Contains(b, x) {
			return fmt.Errorf("deploy: node %s on both sides of a partition", x)
		}
	}
	side := a
	if len(b) < len(a) {
		side = b
	}
	var errs []error
	for _, id := range side {
		if err := c.disconnect(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Compose) disconnect(ctx context.Context, id string) error {
	cid, err := c.container(ctx, id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	already := c.cut[id]
	c.mu.Unlock()
	if already {
		return nil
	}
	c.opts.Log("docker network disconnect %s", id)
	if _, err := docker(ctx, "network", "disconnect", c.network, cid); err != nil {
		return err
	}
	c.mu.Lock()
	c.cut[id] = true
	c.mu.Unlock()
	return nil
}

// reconnect gives node id its cluster-network interface back, with the
// address its peers know it by.
func (c *Compose) reconnect(ctx context.Context, id string) error {
	cid, err := c.container(ctx, id)
	if err != nil {
		return err
	}
	c.opts.Log("docker network connect %s", id)
	if _, err := docker(ctx, "network", "connect", "--ip", c.ClusterIP(id), c.network, cid); err != nil {
		return err
	}
	c.mu.Lock()
	delete(c.cut, id)
	c.mu.Unlock()
	return nil
}

// Heal implements chaos.Cluster: every cut node is connected again, every
// paused one unpaused, every stopped one started; it goes on past failures.
func (c *Compose) Heal(ctx context.Context) error {
	var errs []error
	for _, id := range Nodes {
		c.mu.Lock()
		cut := c.cut[id]
		c.mu.Unlock()
		if cut {
			if err := c.reconnect(ctx, id); err != nil {
				errs = append(errs, err)
			}
		}
		cid, err := c.container(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out, err := docker(ctx, "inspect", "--format", "{{.State.Status}}", cid)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		switch state := strings.TrimSpace(out); state {
		case "running":
		case "paused":
			if err := c.Resume(ctx, id); err != nil {
				errs = append(errs, err)
			}
		default: // exited, created, dead
			if err := c.Start(ctx, id); err != nil {
				errs = append(errs, fmt.Errorf("%s (%s): %w", id, state, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Down removes the project's containers, networks and volumes.
func (c *Compose) Down(ctx context.Context) error {
	// Frozen processes cannot be stopped.
	for _, id := range Nodes {
		if cid, err := c.container(ctx, id); err == nil {
			docker(ctx, "unpause", cid) // fails for a running container; nothing to do then
		}
	}
	_, err := c.compose(ctx, "down", "-v", "--remove-orphans", "-t", "2")
	return err
}

// Logs returns the last lines of every node's log.
func (c *Compose) Logs(ctx context.Context, lines int) string {
	out, err := c.compose(ctx, "logs", "--no-color", "--tail", strconv.Itoa(lines))
	if err != nil {
		return err.Error()
	}
	return out
}

// WaitHealthy returns once every node answers /healthz and its /cluster
// shows every node alive, or ctx ends.
func (c *Compose) WaitHealthy(ctx context.Context) error {
	var last error
	for {
		if last = c.allAlive(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("deploy: cluster not healthy: %w (last: %v)", ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// allAlive returns nil when every node answers /cluster and marks every
// node alive.
func (c *Compose) allAlive(ctx context.Context) error {
	for _, id := range Nodes {
		var view struct {
			Nodes []struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			} `json:"nodes"`
		}
		if err := c.getJSON(ctx, id, "/cluster", &view); err != nil {
			return err
		}
		alive := 0
		for _, n := range view.Nodes {
			if n.Status == "alive" {
				alive++
			} else {
				return fmt.Errorf("%s sees %s %s", id, n.ID, n.Status)
			}
		}
		if alive != len(Nodes) {
			return fmt.Errorf("%s sees %d of %d nodes alive", id, alive, len(Nodes))
		}
	}
	return nil
}

func (c *Compose) waitHealthz(ctx context.Context, id string) error {
	var last error
	for {
		var h struct {
			Node string `json:"node"`
		}
		if last = c.getJSON(ctx, id, "/healthz", &h); last == nil {
			if h.Node == id {
				return nil
			}
			last = fmt.Errorf("%s's port is answered by %q", id, h.Node)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("deploy: %s does not answer /healthz: %w (last: %v)", id, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Compose) getJSON(ctx context.Context, id, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.HTTPAddr(id)+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s", id, path, resp.Status)
	}
	return json.Unmarshal(b, v)
}
