// Package resp is dynago's RESP (Redis serialization protocol) front end:
// any Redis client, and redis-benchmark, can read and write a dynago
// cluster through it. The protocol is parsed by tidwall/redcon; this
// package owns the command set, its mapping onto the same coordinator
// entry point the HTTP API uses (a Backend's Do), authentication of RESP
// connections and the ordering of pipelined commands.
//
// It has the HTTP API's semantics and limits, not Redis's: a read can find
// concurrent values (siblings), and every write is acknowledged only once
// W replicas hold it durably. Input is checked by the same functions as
// HTTP's (httpapi.CheckKey, ParseQuorum, ParseTimeout, CheckValueSize,
// DecodeContext), and refusals carry the HTTP API's error codes in upper
// case as the RESP error prefix (-BAD_KEY, -QUORUM_FAILED, -UNAVAILABLE).
// The package never coordinates, stores or forwards anything itself, and
// never lets a request it rejects reach Backend.Do. (Whether an R or W is
// within 1..N is the node's to say, as for HTTP: -BAD_PARAMETER either way.)
//
// # Commands
//
//	PING [msg], ECHO msg, QUIT, AUTH [user] token, HELLO [2 [AUTH user token] [SETNAME n]]
//	GET key                      one live value, nil when missing or deleted,
//	                             -SIBLINGS when there are concurrent values
//	SET key value                one write replacing the coordinating replica's copy,
//	                             as Redis's SET replaces (node.Request.Replace); +OK
//	DEL key [key...]             reads each key, deletes what it read; the number of
//	                             keys that had a live value
//	EXISTS key [key...]          how many of the keys have a live value
//	DGET key [R n] [TIMEOUT ms]  [context, value...]: every sibling and the context
//	DSET key value [CONTEXT c] [W n] [TIMEOUT ms]   the new version's context; without
//	                             CONTEXT a blind write, concurrent with what is there
//	DDEL key [CONTEXT c] [W n] [TIMEOUT ms]         the tombstone's context
//	SESSION START | RESUME token | TOKEN | END      the connection's session
//
// plus the few connection commands clients send on their own (SELECT 0,
// CLIENT SETNAME|GETNAME|SETINFO|ID, CONFIG GET, COMMAND).
//
// # Sessions
//
// A connection may hold a session (package session): after SESSION START,
// or SESSION RESUME with a token from SESSION TOKEN or HTTP's
// X-Dynago-Session, every data command's requests carry the session's
// token through node.WithSession and record their replies with
// node.ObserveSession, as HTTP's do, until SESSION END. Failures are
// -SESSION_UNAVAILABLE (a session read found no version the session
// already saw) and -BAD_SESSION (a token that does not decode).
//
// # Pipelining
//
// Replies leave in the order the commands came. A pipeline's data commands
// run concurrently in waves: a wave grows until a command touches a key
// that an earlier command of the wave writes (or writes a key an earlier
// one reads), or until it holds MaxInFlight commands; then the wave runs
// and its replies are written before the next wave starts. Commands on one
// key therefore take effect in their order, while writes to distinct keys
// are in flight together and share the coordinator's fsyncs (group commit)
// instead of paying one each. The jobs of a wave share the connection's
// session token under a lock, each recording its own reply; a SESSION
// command runs the wave before it first, so it applies exactly to the
// commands after it and SESSION TOKEN includes every reply before it.
//
// A wave's single-request commands (GET, SET, DGET, DSET, DDEL) reach a
// Backend that is a Batcher (a node is: server.Server.DoBatch) as one
// batch, one hand-off to the node's event loop for the whole wave; DEL and
// EXISTS, which send a request per key, run beside it. Each command is
// still its own operation with its own quorum and reply.
package resp
