package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/dynago/dynago/security"
)

func init() {
	register(command{name: "cert", summary: "create the CA, node and client certificates: create-ca|create-node|create-client", run: runCert})
}

const certUsage = `cert create-ca|create-node HOST...|create-client NAME [flags]

  create-ca            a new certificate authority: ca.crt and ca.key
  create-node HOST...  node.crt/node.key for a server, valid for the given
                       host names and IP addresses (every name peers and
                       clients dial); serves and dials peers (mutual TLS)
  create-client NAME   client.NAME.crt/.key with --role read|write|admin

All files go to --certs-dir (env DYNAGO_CERTS_DIR). Keys are written 0600.
Copy ca.crt and one node's files to each node; keep ca.key off the nodes.`

func runCert(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", errUsage, certUsage)
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("cert "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: dynago %s\n\nFlags:\n", certUsage)
		fs.PrintDefaults()
	}
	dir := fs.String("certs-dir", envDefault("DYNAGO_CERTS_DIR", ""), "directory of the certificates; env DYNAGO_CERTS_DIR")
	life := fs.Duration("lifetime", 0, "validity (default: 10 years for the CA, 5 years for nodes and clients)")
	role := fs.String("role", security.RoleRead, "create-client: the client's role, read, write or admin")
	overwrite := fs.Bool("overwrite", false, "create-ca: replace an existing CA (invalidates every certificate it signed)")
	var pos []string
	var err error
	switch sub {
	case "create-ca":
		pos, err = parseArgs(fs, rest, 0, "no arguments")
	case "create-node":
		pos, err = parseAtLeastOne(fs, rest, "HOST")
	case "create-client":
		pos, err = parseArgs(fs, rest, 1, "NAME")
	case "-h", "--help", "help":
		fs.Usage()
		return flag.ErrHelp
	default:
		return fmt.Errorf("%w: unknown cert command %q\n%s", errUsage, sub, certUsage)
	}
	if err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("%w: --certs-dir is required", errUsage)
	}
	if *life < 0 {
		return fmt.Errorf("%w: --lifetime %v is negative", errUsage, *life)
	}
	year := 365 * 24 * time.Hour
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

// parseAtLeastOne is parseArgs for one or more positional arguments.
func parseAtLeastOne(fs *flag.FlagSet, args []string, what string) ([]string, error) {
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) == 0 {
		return nil, fmt.Errorf("%w: %s takes at least one %s", errUsage, fs.Name(), what)
	}
	return pos, nil
}
