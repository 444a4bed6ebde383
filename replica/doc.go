// Package replica owns what a replica does with the versions it is sent:
// merge an incoming object into its local copy (keeping every sibling that
// no write has superseded) and decide whether anything changed and must be
// persisted. It never performs I/O: the node core reads local copies
// through an interface and emits the writes this package asks for.
package replica
