// Package httpapi owns dynago's public HTTP API (v1): the routes, status
// codes, headers and JSON bodies of the contract in DESIGN.md, request
// validation, and the node's HTTP metrics.
//
// Every node serves the API and accepts every request: the handler hands
// puts, gets and deletes to a Backend (the daemon), which coordinates them or
// forwards them to a coordinator. The package never coordinates, stores or
// forwards anything itself, never changes a ring, and never lets a request it
// rejects reach Backend.Do: a bad key, parameter, context or oversized value
// is answered 400 or 413 before the cluster sees it.
//
// # Routes
//
//	PUT    /kv/{key}            store body; POST is an alias. Query w, timeout (ms), trace.
//	                            Header X-Dynago-Context (optional) = context of the version
//	                            the write supersedes. 204 + X-Dynago-Context of the new version.
//	GET    /kv/{key}            query r, timeout, trace. One value: 200, body = value bytes,
//	                            X-Dynago-Context. Several: 300 + JSON {"key","context","siblings"}.
//	                            With Accept: application/json: that JSON body, 200. Missing or
//	                            deleted: 404 (+ X-Dynago-Context when a tombstone exists).
//	DELETE /kv/{key}            query w, timeout, trace; header X-Dynago-Context. 204.
//	GET    /kv/{key}/placement  {"key","partition","preference_list","fallbacks"}
//	GET    /cluster             {"node","n","r","w","partitions","ring_version","nodes":[...]}
//	GET    /admin/local/{key}   this node's own copy, no coordination; 404 when it holds nothing
//	GET    /events              Server-Sent Events of this node (Observer backends); with
//	                            format=json&since=SEQ one JSON page {"events":[...]}
//	GET    /admin/stats         this node's counters, partitions and gossip view (Observer)
//	GET    /admin/history/{key} this node's copy with clock and per-sibling dots (Observer)
//	GET    /healthz             {"status":"ok","node":id}
//	GET    /metrics             Prometheus text format
//
// Contexts travel as X-Dynago-Context headers and as "context" JSON fields,
// both encoded with EncodeContextHeader (unpadded base64url of the dvv
// context encoding and a 4-byte tag of the key, so that a context is only
// accepted with its own key), at most MaxContextHeaderSize characters.
// Values in JSON bodies are standard base64 (encoding/json's []byte form);
// an empty value is "", never null.
//
// Any /kv request may carry SessionHeader (X-Dynago-Session, package
// session): the request then gets the session guarantees for its key (a
// get answers only with a version dominating what the session saw, or 503
// session_unavailable), and the answer carries the updated token. A token
// that does not decode is 400 bad_session.
//
// Request bodies must arrive within Options.BodyTimeout (408 body_timeout
// otherwise, and the connection is closed); a write the coordinator refuses
// for its sibling cap is 409 too_many_siblings, and one that succeeds above
// the soft limit carries SiblingsHeader.
//
// Every error body is JSON {"error": message, "code": code}, with code one of
// the Code* constants; a quorum failure adds "acks" and "required". A put
// that fails its quorum answers 503: its outcome is unknown, it may still be
// applied.
//
// # Keys
//
// A key is one path segment, percent-encoded as needed: /kv/a%2Fb names the
// key "a/b". An empty key, an unescaped '/' inside a key, or a key longer
// than Options.MaxKeySize is answered 400 bad_key. Clients must escape the
// keys "." and ".." (as %2E and %2E%2E): net/http's ServeMux cleans those
// path elements away and redirects before any handler runs. Keys are byte
// strings, stored and served unchanged; only the "key" fields of JSON
// bodies, being JSON strings, show bytes that are not UTF-8 as U+FFFD.
//
// A request-target with malformed percent-encoding (/kv/%zz) is rejected by
// net/http's server itself while it parses the request line, before the
// handler exists for that request: it answers "400 Bad Request" as
// text/plain and closes that connection. No handler hook can turn that
// answer into JSON without re-implementing request parsing, so it is the one
// error response that is not JSON; the node keeps serving other connections.
//
// # Tracing
//
// With query trace=1, the answer carries the node.Trace of how the cluster
// served the request, as JSON under "trace" (when the backend recorded one):
// a put or delete then answers 200 with JSON {"context","trace"} instead of
// 204, a get answers its JSON form (200 for one value, 300 for several
// unless Accept asks for JSON), and error bodies gain "trace" too. The
// dashboard uses it to draw who was asked and who answered.
package httpapi
