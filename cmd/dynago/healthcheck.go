package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthcheck exists for containers: the image is FROM scratch, with no
// shell or curl, so Docker's HEALTHCHECK and compose's healthcheck run the
// binary itself.

func init() {
	register(command{name: "healthcheck", summary: "exit 0 if a node answers /healthz (the container health probe)", run: runHealthcheck})
}

func runHealthcheck(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", selfAddr(), "HTTP address of the node to ask; default: this node's own, from env DYNAGO_HTTP_ADDR")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: dynago healthcheck [flags]

Asks one node's GET /healthz; exits 0 when it answers 200 as a dynago
node, 1 otherwise, 2 on bad usage. Without --addr it asks the node in its
own container: the address in DYNAGO_HTTP_ADDR, with an unspecified host
(0.0.0.0, [::]) asked on loopback.

Flags:
`)
		fs.PrintDefaults()
	}
	if _, err := parseArgs(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(*addr); err != nil {
		return fmt.Errorf("%w: --addr %q: %v", errUsage, *addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+*addr+"/healthz", nil)
	if err != nil {
		return fmt.Errorf("%w: --addr %q: %v", errUsage, *addr, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return fmt.Errorf("reading /healthz: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s/healthz answered %s", *addr, resp.Status)
	}
	// A 200 from something else on the port (a proxy, another server) is
	// not a healthy node.
	var h struct {
		Status string `json:"status"`
		Node   string `json:"node"`
	}
	if err := json.Unmarshal(body, &h); err != nil || h.Status != "ok" || h.Node == "" {
		return fmt.Errorf("%s/healthz answered 200 but not as a dynago node: %q", *addr, body)
	}
	fmt.Fprintf(stdout, "%s ok\n", h.Node)
	return nil
}

// selfAddr is the HTTP address of the node in this container or host:
// DYNAGO_HTTP_ADDR as the server reads it, with a wildcard host replaced by
// loopback, which a node bound to every interface also answers on.
func selfAddr() string {
	addr := envDefault("DYNAGO_HTTP_ADDR", defaultAddr)
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr // reported by the caller
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}
