package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/dynago/dynago/security"
)

func init() {
	register(command{name: "cert", summary: "create the CA, node and client certificates: create-ca|create-node|create-client",
		long: `Creates the certificate authority, node and client certificates.

All files go to --certs-dir (env DYNAGO_CERTS_DIR). Keys are written 0600.
Copy ca.crt and one node's files to each node; keep ca.key off the nodes.`,
		subs: []command{
			{name: "create-ca", summary: "a new certificate authority: ca.crt and ca.key", flags: certCmd("create-ca")},
			{name: "create-node", summary: "node.crt/node.key for a server, valid for the given host names and IPs",
				long: `Writes node.crt/node.key for a server, valid for the given host names and
IP addresses (every name peers and clients dial); the certificate serves
and dials peers (mutual TLS).`,
				use: "HOST...", nargs: oneOrMore, args: "HOST", flags: certCmd("create-node")},
			{name: "create-client", summary: "client.NAME.crt/.key with --role read|write|admin",
				use: "NAME", nargs: 1, args: "NAME", flags: certCmd("create-client")},
		}})
}

func certCmd(sub string) func(fs *flag.FlagSet) runFunc {
	return func(fs *flag.FlagSet) runFunc {
		dir := fs.String("certs-dir", envDefault("DYNAGO_CERTS_DIR", ""), "directory of the certificates; env DYNAGO_CERTS_DIR")
		life := fs.Duration("lifetime", 0, "validity (default: 10 years for the CA, 5 years for nodes and clients)")
		role, overwrite := new(string), new(bool)
		switch sub {
		case "create-client":
			role = fs.String("role", security.RoleRead, "the client's role, read, write or admin")
		case "create-ca":
			overwrite = fs.Bool("overwrite", false, "replace an existing CA (invalidates every certificate it signed)")
		}
		return func(_ context.Context, pos []string) error {
			if *dir == "" {
				return fmt.Errorf("%w: --certs-dir is required", errUsage)
			}
			if *life < 0 {
				return fmt.Errorf("%w: --lifetime %v is negative", errUsage, *life)
			}
			year := 365 * 24 * time.Hour
			var err error
			switch sub {
			case "create-ca":
				if *life == 0 {
					*life = 10 * year
				}
				err = security.CreateCA(*dir, *life, *overwrite)
			case "create-node":
				if *life == 0 {
					*life = 5 * year
				}
				err = security.CreateNode(*dir, pos, *life)
			case "create-client":
				if *life == 0 {
					*life = 5 * year
				}
				if !security.ValidRole(*role) {
					return fmt.Errorf("%w: --role %q: want read, write or admin", errUsage, *role)
				}
				err = security.CreateClient(*dir, pos[0], *role, *life)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: wrote to %s\n", sub, *dir)
			return nil
		}
	}
}
