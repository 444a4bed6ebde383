// Package dashboard owns dynago's web UI: one page (go:embed of static/,
// plain HTML, CSS and JavaScript modules, no build step, no CDN) that
// shows the ring, the nodes, a request console with traces, key history,
// gossip, anti-entropy and the live event stream, and the small HTTP API
// the page talks to.
//
// The page only ever requests relative URLs under api/, so the same files
// work in both hostings:
//
//   - dev (DevHandler, served by `dynago dev` at its --dashboard-addr):
//     api/config, api/nodes (list, add), api/nodes/{id}/kill|restart|wipe
//     backed by a Controller (the process supervisor), and
//     api/node/{id}/... proxied to that node's HTTP API;
//   - node (NodeHandler, mounted by `dynago server --dashboard` under
//     /dashboard/): api/config and api/node/{id}/... proxied to the peers
//     the node knows; no process control.
//
// The package must never reach into a node's internals: everything it
// shows comes from the nodes' public HTTP API (docs/API.md), so anything the
// page shows can also be had with curl. It must never buffer a proxied
// answer (the event stream is Server-Sent Events) and never accept a
// state-changing request from another web origin.
package dashboard
