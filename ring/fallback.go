package ring

// Target is where a coordinator sends a request: a primary (For is ""), or a
// fallback standing in for primary For (Dynamo's sloppy quorum, §4.6).
type Target struct{ Node, For NodeID }

// StandIns pairs each primary in down, in order, with the next fallback of
// partition p (Fallbacks(p), in ring order) that usable accepts. It walks
// the fallbacks once: usable is asked about each at most once, in ring
// order, and a fallback it refuses is not offered to a later primary, so no
// fallback stands in twice. Primaries left when the fallbacks run out get
// none: the result holds a Target only for those that got one, in the
// order of down.
//
// Gets and both put paths pick their stand-ins here, so that a read asks
// the same fallbacks a write under the same failures stored hints on.
// usable carries the caller's rules (reachable, not asked yet); a caller
// that must never reconsider a refused fallback can record the ones it is
// asked about.
func (r *Ring) StandIns(p int, down []NodeID, usable func(NodeID) bool) []Target {
	if len(down) == 0 {
		return nil
	}
	fbs := r.Fallbacks(p)
	out := make([]Target, 0, len(down))
	i := 0
	for _, primary := range down {
		found := false
		for ; i < len(fbs) && !found; i++ {
			if usable(fbs[i]) {
				out = append(out, Target{Node: fbs[i], For: primary})
				found = true
			}
		}
		if !found {
			break // no fallback left for this primary, nor for any after it
		}
	}
	return out
}
