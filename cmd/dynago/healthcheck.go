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
	register(command{name: "healthcheck", summary: "exit 0 if a node answers /healthz (the container health probe)",
		long: `Asks one node's GET /healthz; exits 0 when it answers 200 as a dynago
node, 1 otherwise, 2 on bad usage. Without --addr it asks the node in its
own container: the address in DYNAGO_HTTP_ADDR, with an unspecified host
(0.0.0.0, [::]) asked on loopback. With --certs-dir (env DYNAGO_CERTS_DIR,
which the server in the same container also reads) it asks over HTTPS,
trusting ca.crt; a node asked on loopback is checked against the CA but
not against the name 127.0.0.1, which its certificate need not carry.`,
		flags: runHealthcheck})
}

func runHealthcheck(fs *flag.FlagSet) runFunc {
	addr := fs.String("addr", selfAddr(), "HTTP address of the node to ask; default: this node's own, from env DYNAGO_HTTP_ADDR")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	sec := clientSecFlags(fs)
	return func(ctx context.Context, _ []string) error {
		if _, _, err := net.SplitHostPort(*addr); err != nil {
			return fmt.Errorf("%w: --addr %q: %v", errUsage, *addr, err)
		}
		cr, err := sec.resolve()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		// With --certs-dir (DYNAGO_CERTS_DIR, as the server in the same
		// container reads it) the probe speaks HTTPS; see probeTLS.
		cr.tls = cr.probeTLS(*addr)
		resp, err := cr.do(ctx, http.MethodGet, *addr, "/healthz", nil)
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
