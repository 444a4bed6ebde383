package sim

import (
	"fmt"
	"slices"

	"github.com/dynago/dynago/dvv"
	"github.com/dynago/dynago/object"
)

// The consistency checker of RunSeed. It judges the final state of a run
// (per key, the merge of what its preference-list replicas store) against
// the history of client writes, using only what clients could know: the
// value they wrote, the dot the coordinator stamped it with (Reply.Dot)
// and the context they sent with it.
//
// A value may legitimately disappear only because a later write said it had
// seen it: a write whose carried context covers the value's dot supersedes
// it (Dynamo's reconciliation: the client merged what it read and wrote the
// result back). A value that disappears without such a write is a lost
// write. Conversely, once a write whose context covers a dot has been
// acknowledged, that dot's value must never be live again: if it is, it
// was resurrected (the classic case is a deleted value coming back).

// outcome is what a client learned about one of its writes.
type outcome uint8

const (
	// outcomeUnknown: no reply (the entry node crashed with the request in
	// flight) or a reply that does not say (quorum_failed, internal): the
	// write may have been stored on fewer than W replicas and spread later.
	// Such a write counts as a possible replacer of what its context
	// covers, since it may have been applied; it never counts as
	// acknowledged.
	outcomeUnknown outcome = iota
	// outcomeAcked: W replicas stored it durably.
	outcomeAcked
	// outcomeRejected: it never reached a coordinator (bad_request, or
	// unavailable: the entry node was down or could reach no node of the
	// preference list), so it cannot have replaced anything.
	outcomeRejected
)

// writeRecord is one client put or delete, as the client saw it.
type writeRecord struct {
	key     string
	value   string // empty for a delete
	del     bool
	carried dvv.VV  // the decoded context the request carried
	dot     dvv.Dot // the coordinator's stamp; set when acked
	outcome outcome
}

func (w *writeRecord) String() string {
	op := "put " + w.key + "=" + w.value
	if w.del {
		op = "delete " + w.key
	}
	return op
}

// covers reports whether the context w carried had seen dot d.
func (w *writeRecord) covers(d dvv.Dot) bool { return w.carried.Get(d.Actor) >= d.Counter }

// liveSibling is a final live value with its dot.
type liveSibling struct {
	value string
	dot   dvv.Dot
}

// liveSiblings lists o's live values with their dots: value j of an entry
// (newest first) has the dot {Actor, Counter-j}.
func liveSiblings(o object.Object) []liveSibling {
	var out []liveSibling
	for _, e := range o.Clock.Entries {
		for j, s := range e.Values {
			if !s.Deleted {
				out = append(out, liveSibling{value: string(s.Value), dot: dvv.Dot{Actor: e.Actor, Counter: e.Counter - uint64(j)}})
			}
		}
	}
	return out
}

// checkReport is the checker's verdict, one readable line per violation.
type checkReport struct {
	lost, resurrected []string
}

// check judges the final state (key → merged object of its preference-list
// replicas; a missing key is an empty object) against the write history.
//
// Lost: an acknowledged put whose value is not among the key's final live
// siblings although no write on the key that may have been applied
// (acknowledged or of unknown outcome) carried a context covering its dot.
// The value is looked up by value, not by dot: a forwarded write retried on
// a second coordinator may be stored twice under two dots, and either copy
// keeps the write.
//
// Resurrected: a final live sibling whose dot is covered by the carried
// context of an acknowledged write on the key (a delete, or a put that
// superseded it).
func check(writes []*writeRecord, final map[string]object.Object) checkReport {
	byKey := map[string][]*writeRecord{}
	var keys []string
	for _, w := range writes {
		if _, ok := byKey[w.key]; !ok {
			keys = append(keys, w.key)
		}
		byKey[w.key] = append(byKey[w.key], w)
	}
	for k := range final {
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
	}
	// Sorted so that the report reads the same on every replay.
	slices.Sort(keys)

	var rep checkReport
	for _, k := range keys {
		hist := byKey[k]
		live := liveSiblings(final[k])
		values := map[string]bool{}
		for _, s := range live {
			values[s.value] = true
		}
		for _, w := range hist {
			if w.del || w.outcome != outcomeAcked || values[w.value] {
				continue
			}
			replaced := slices.ContainsFunc(hist, func(o *writeRecord) bool {
				return o.outcome != outcomeRejected && o.covers(w.dot)
			})
			if !replaced {
				rep.lost = append(rep.lost, fmt.Sprintf("%s: acknowledged %q (dot %s:%d) is not in the final siblings %s and no write replaced it",
					k, w.value, w.dot.Actor, w.dot.Counter, describe(live)))
			}
		}
		for _, s := range live {
			i := slices.IndexFunc(hist, func(o *writeRecord) bool { return o.outcome == outcomeAcked && o.covers(s.dot) })
			if i >= 0 {
				rep.resurrected = append(rep.resurrected, fmt.Sprintf("%s: %q (dot %s:%d) is live although the acknowledged %s (dot %s:%d) carried a context covering it",
					k, s.value, s.dot.Actor, s.dot.Counter, hist[i], hist[i].dot.Actor, hist[i].dot.Counter))
			}
		}
	}
	return rep
}

func describe(live []liveSibling) string {
	vals := make([]string, len(live))
	for i, s := range live {
		vals[i] = s.value
	}
	return fmt.Sprintf("%q", vals)
}
