// Package client is the public Go client of dynago: it stores, reads and
// deletes values through any node's HTTP API (v1, see DESIGN.md) and reads
// placement and cluster state.
//
// The package owns the client side of that contract: URL and key escaping,
// context and error decoding, rotation over nodes and retries. It must never
// resolve siblings on its own (which concurrent value wins is the
// application's decision) and never retry a write that may have reached a
// node: a put repeated after an unknown outcome is a new write.
//
// # Usage
//
//	c, err := client.New([]string{"127.0.0.1:9101", "127.0.0.1:9102"})
//	if err != nil { ... }
//
//	// A blind write: no context, concurrent with whatever is stored.
//	ctx1, err := c.Put(ctx, "cart:alice", []byte("milk"), nil)
//
//	// Read, resolve siblings, write back with the context read, which
//	// supersedes exactly the versions read.
//	v, err := c.Get(ctx, "cart:alice", nil)
//	switch {
//	case errors.Is(err, client.ErrNotFound):
//		// v.Context is set when a tombstone exists: writing with it
//		// supersedes the delete.
//	case err != nil:
//		...
//	}
//	merged := resolve(v.Siblings) // len(v.Siblings) > 1: concurrent writes
//	_, err = c.Put(ctx, "cart:alice", merged, &client.PutOptions{Context: v.Context})
//
// # Contexts
//
// A Context is the opaque causal history of the version a read returned.
// Pass it back with the next write of the same key so the write supersedes
// what was read; a write without one keeps every stored value as a sibling.
// Context.String and ParseContext convert it to and from the token form
// used in X-Dynago-Context headers and by the dynago CLI.
//
// # Errors
//
// Get answers ErrNotFound (errors.Is) for a missing or deleted key. A
// *QuorumError (errors.As) reports that fewer than R or W replicas answered
// in time; for a put or delete its outcome is unknown: it may still be
// applied. Any other error answer of a node is an *APIError carrying the
// status and the API's error code; a 401 or 403 one also matches
// ErrUnauthorized or ErrForbidden.
//
// A node that sheds a request for overload (503 overloaded) did nothing
// with it, so the client sends the request, a write too, to the next node;
// only when every node sheds it is the overloaded *APIError returned.
//
// # Security
//
// Against nodes started with --certs-dir (HTTPS) and --tokens-file, give
// the client the CA to trust and credentials: a client certificate in the
// TLS config, whose role the nodes read, or a bearer token, or both (the
// token then decides the role).
//
//	tlsCfg, err := security.ClientConfig("certs", "root") // ca.crt; client.root.crt/.key
//	c, err := client.New(addrs, client.WithTLS(tlsCfg), client.WithToken(token))
//
// With WithTLS, host:port addresses are dialed over https; https:// URLs
// work with or without it (without it, the system's roots are trusted). A
// 401 answer matches ErrUnauthorized and a 403 ErrForbidden (errors.Is);
// both are *APIError values too, carrying the node's message.
//
// # Nodes, retries and timeouts
//
// Every node accepts every request, so requests rotate over the given
// addresses. A request whose connection could not be established is tried
// at the next address; a read (Get, Placement, Cluster) is also retried
// there after any transport error, since repeating it changes nothing.
// WithTimeout bounds each call including its retries.
//
// # Client-driven coordination
//
// With WithRouting the client places keys itself, as Dynamo's clients do
// (SOSP 2007, §6.4, Table 2: it halves the 99.9th percentile latency). On
// its first key request it reads the ring from GET /ring at any given
// address, then sends each put, get and delete straight to the first node
// of the key's preference list: that node coordinates a write with no
// forwarding hop, and answers a read holding a copy itself. A node whose
// request failed at the transport level, or that the ring reports dead, is
// passed over for two seconds: the next preference-list node, then the
// fallbacks, then the given addresses take its requests. Every /kv/ answer
// carries the node's ring version (X-Dynago-Ring-Version); a newer one
// than the client's makes it fetch the ring again in the background, so
// routes follow joins and leaves without polling. Until a ring has been
// read (or when no node serves one), requests rotate as without routing.
// The retry rules above are unchanged. RouteOf tells where the next request
// for a key goes.
//
//	c, err := client.New(addrs, client.WithRouting())
package client
