// Package dvv owns dynago's causality tracking: dotted version vector sets
// (DVVSet, as in Riak 2.0's dvvset.erl by Gonçalves, Almeida, Baquero and
// Fonte), the version vectors handed to clients as contexts, and the binary
// encoding of those contexts.
//
// A Set records, per actor (a coordinator node incarnation), a counter N
// and the values written at that actor's newest dots N, N-1, ...; every dot
// at or below N that holds no value is known to have been superseded. This
// is what keeps the number of siblings bounded by truly concurrent writers
// rather than by retries or by interleaved writes with stale contexts
// ("sibling explosion" of plain per-node vector clocks).
//
// The package is pure: it does no I/O, keeps no state, reads no clock and
// uses no randomness. It must never decide which of two concurrent values
// wins (that is the client's job, or LWW's when a cluster explicitly opts
// in), and it must never drop a value that no write has superseded.
//
// Sets and VVs are values: no function here modifies its arguments, but
// results may share Values backing arrays with the arguments, so callers
// must treat them as immutable.
package dvv
