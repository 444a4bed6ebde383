package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/dynago/dynago/server"
)

// securityFlags registers the server's security flags and returns a
// function that reads them once parsed.
func securityFlags(fs *flag.FlagSet) func() server.Security {
	certs := fs.String("certs-dir", envDefault("DYNAGO_CERTS_DIR", ""), "directory with ca.crt, node.crt, node.key (dynago cert): mutual TLS between nodes, TLS on HTTP (env DYNAGO_CERTS_DIR)")
	insecure := fs.Bool("insecure", envBool("DYNAGO_INSECURE", false), "allow plaintext, unauthenticated listeners beyond loopback (env DYNAGO_INSECURE)")
	gossipKey := fs.String("gossip-key-file", envDefault("DYNAGO_GOSSIP_KEY_FILE", ""), "file of base64 gossip encryption keys, one a line, the first encrypts; re-read on SIGHUP (env DYNAGO_GOSSIP_KEY_FILE)")
	tokens := fs.String("tokens-file", envDefault("DYNAGO_TOKENS_FILE", ""), "file of \"TOKEN read|write|admin\" lines: HTTP requires a bearer token or client certificate; re-read on SIGHUP (env DYNAGO_TOKENS_FILE)")
	return func() server.Security {
		return server.Security{CertsDir: *certs, Insecure: *insecure, GossipKeyFile: *gossipKey, TokensFile: *tokens}
	}
}

// watchSIGHUP catches SIGHUP from now on; reloadOnSIGHUP serves what it
// catches. The two are apart so that the handler is in place before the
// node says it is ready: a `systemctl reload` right after READY=1 must
// reload, not meet SIGHUP's default action, which ends the process.
func watchSIGHUP() chan os.Signal {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup
}

// reloadOnSIGHUP re-reads certificates, tokens and gossip keys on each
// SIGHUP caught on hup (watchSIGHUP) until ctx ends.
func reloadOnSIGHUP(ctx context.Context, hup chan os.Signal, srv *server.Server, log *slog.Logger) {
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			notify(log, daemon.SdNotifyReloading)
			if err := srv.Reload(); err != nil {
				log.Error("reload on SIGHUP failed; keeping what did not load", "err", err)
			} else {
				log.Info("reloaded certificates, tokens and gossip keys")
			}
			notify(log, daemon.SdNotifyReady)
		}
	}
}
