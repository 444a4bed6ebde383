package main

import (
	"log/slog"

	"github.com/coreos/go-systemd/v22/daemon"
)

// notify tells systemd (a unit with Type=notify, which sets NOTIFY_SOCKET)
// how the node is doing: READY=1 once it serves, so that `systemctl start`
// and units ordered after it wait for a node that answers, not for a
// process that exists; STOPPING=1 when it starts to drain; RELOADING=1 and
// READY=1 around a SIGHUP reload. Without NOTIFY_SOCKET it does nothing.
// We use coreos/go-systemd, systemd's own Go binding, rather than writing
// the datagram by hand (abstract sockets, the environment's rules).
func notify(log *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		// The node works without it; systemd will time the start out and
		// say so, and this line says why.
		log.Warn("telling systemd the node's state failed", "state", state, "err", err)
	}
}
