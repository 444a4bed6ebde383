package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/ring"
)

// Advertise addresses. A node publishes where others reach it: its RPC and
// HTTP addresses in its gossip meta (and so in every member's /cluster and
// transport), and its gossip address in memberlist. A listener bound to an
// unspecified address (0.0.0.0, [::], or no host) has no address worth
// publishing: "[::]:9201" dialled by another node reaches that node itself.
// Such a node must be told its advertise address, or it refuses to start.

// advertiseRule ties a listen address to its advertise address and names
// the flags, for errors an operator can act on.
type advertiseRule struct {
	bind, adv         string
	bindFlag, advFlag string
}

func (c *Config) advertiseRules() []advertiseRule {
	return []advertiseRule{
		{c.HTTPAddr, c.AdvertiseHTTP, "--http-addr", "--advertise-http"},
		{c.RPCAddr, c.AdvertiseRPC, "--rpc-addr", "--advertise-rpc"},
		{c.GossipAddr, c.AdvertiseGossip, "--gossip-addr", "--advertise-gossip"},
	}
}

// validateAdvertise checks every advertise address, and that every listener
// bound to an unspecified address has one.
func (c *Config) validateAdvertise() error {
	for _, r := range c.advertiseRules() {
		if r.adv != "" {
			if err := checkAdvertise(r.adv); err != nil {
				return fmt.Errorf("%w: %s %q: %v", ErrConfig, r.advFlag, r.adv, err)
			}
			continue
		}
		host, _, err := net.SplitHostPort(r.bind)
		if err != nil {
			return fmt.Errorf("%w: %s %q: %v", ErrConfig, r.bindFlag, r.bind, err)
		}
		if unspecifiedHost(host) {
			return fmt.Errorf("%w: %s %q listens on every interface, which is no address other nodes can use: "+
				"set %s (env %s) to the host:port this node is reached at", ErrConfig, r.bindFlag, r.bind, r.advFlag, envName(r.advFlag))
		}
	}
	return nil
}

// envName is the environment twin of a server flag.
func envName(flag string) string {
	b := []byte("DYNAGO_")
	for _, ch := range []byte(flag[2:]) {
		switch {
		case ch == '-':
			b = append(b, '_')
		case ch >= 'a' && ch <= 'z':
			b = append(b, ch-'a'+'A')
		default:
			b = append(b, ch)
		}
	}
	return string(b)
}

// unspecifiedHost reports whether a listen host binds every interface.
func unspecifiedHost(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// checkAdvertise accepts host:port with a concrete host (an IP or a name)
// and a concrete port.
func checkAdvertise(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if unspecifiedHost(host) {
		return fmt.Errorf("an advertise address needs a concrete host, not %q", host)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("port %q must be 1..65535", port)
	}
	return nil
}

// advertisedOr is the address to publish for a listener actually bound at
// bound: the operator's advertise address if given.
func advertisedOr(adv, bound string) string {
	if adv != "" {
		return adv
	}
	return bound
}

// resolveGossipAdvertise turns a host name in --advertise-gossip into an IP:
// memberlist publishes IP literals only. Containers know their service name
// before they know their IP, so a name is allowed and resolved once, at
// start.
func resolveGossipAdvertise(addr string) (string, error) {
	if addr == "" {
		return "", nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if net.ParseIP(host) != nil {
		return addr, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return "", fmt.Errorf("%w: --advertise-gossip %q: resolving %s: %v", ErrConfig, addr, host, err)
	}
	var pick net.IP
	for _, ip := range ips {
		if ip.IP.IsUnspecified() {
			continue
		}
		if pick == nil || (pick.To4() == nil && ip.IP.To4() != nil) {
			pick = ip.IP // prefer IPv4, as memberlist does for its own pick
		}
	}
	if pick == nil {
		return "", fmt.Errorf("%w: --advertise-gossip %q: %s resolves to no usable address", ErrConfig, addr, host)
	}
	return net.JoinHostPort(pick.String(), port), nil
}

// probeTimeout bounds each check of a joining node's address: a node that
// cannot answer a local probe in 3 s cannot take a handoff either.
const probeTimeout = 3 * time.Second

// checkJoining verifies, before a plan or commit hands partitions to them,
// that every joining node's advertised addresses answer as that node: RPC
// (handoffs, replication) and HTTP (clients, the dashboard). An address
// that is unspecified or reaches another node is refused as surely as one
// that reaches nothing: handing partitions to it would stall the change.
func (s *Server) checkJoining(ctx context.Context, joining []ring.NodeID) error {
	var problems []string
	for _, id := range joining {
		s.peerMu.Lock()
		m, ok := s.seen[id]
		s.peerMu.Unlock()
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: not known to gossip", id))
			continue
		}
		if host, _, err := net.SplitHostPort(m.Addr); err != nil || unspecifiedHost(host) {
			problems = append(problems, fmt.Sprintf("%s advertises gossip address %q, which other nodes cannot use (restart it with --advertise-gossip)", id, m.Addr))
		}
		if err := s.probeRPC(ctx, id, m.Meta.RPCAddr); err != nil {
			problems = append(problems, err.Error())
		}
		if err := s.probeHTTP(ctx, id, m.Meta.HTTPAddr); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", httpapi.ErrMemberUnreachable, strings.Join(problems, "; "))
	}
	return nil
}

func (s *Server) probeRPC(ctx context.Context, id ring.NodeID, addr string) error {
	if addr == "" {
		return fmt.Errorf("%s advertises no RPC address", id)
	}
	if err := checkAdvertise(addr); err != nil {
		return fmt.Errorf("%s advertises RPC address %q, which other nodes cannot use: %v (restart it with --advertise-rpc)", id, addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if err := s.trans.Probe(ctx, id, addr); err != nil {
		return fmt.Errorf("%s's advertised RPC address %s does not answer as %s: %v", id, addr, id, err)
	}
	return nil
}

// probeHTTP checks that addr answers /healthz as node id. With
// certificates the HTTP port is TLS: the probe trusts the cluster's CA and
// presents this node's certificate, as a peer does.
func (s *Server) probeHTTP(ctx context.Context, id ring.NodeID, addr string) error {
	if addr == "" {
		return fmt.Errorf("%s advertises no HTTP address", id)
	}
	if err := checkAdvertise(addr); err != nil {
		return fmt.Errorf("%s advertises HTTP address %q, which clients cannot use: %v (restart it with --advertise-http)", id, addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	scheme, hc := "http", http.DefaultClient
	if s.sec != nil && s.sec.certs != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = s.sec.certs.PeerClientConfig()
		scheme, hc = "https", &http.Client{Transport: tr}
		defer tr.CloseIdleConnections()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+"/healthz", nil)
	if err != nil {
		return fmt.Errorf("%s's advertised HTTP address %s: %v", id, addr, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s's advertised HTTP address %s does not answer: %v", id, addr, err)
	}
	defer resp.Body.Close()
	var h struct {
		Node ring.NodeID `json:"node"`
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&h)
	if resp.StatusCode != http.StatusOK || err != nil || h.Node != id {
		return fmt.Errorf("%s's advertised HTTP address %s answers /healthz with %d as node %q, not as %s", id, addr, resp.StatusCode, h.Node, id)
	}
	return nil
}
