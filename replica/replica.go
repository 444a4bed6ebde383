package replica

import (
	"github.com/dynago/dynago/object"
)

// Merge combines a replica's local copy with an incoming version. It returns
// the merged object and whether it differs from local, i.e. whether the
// replica must persist it. When the replica holds nothing, the incoming
// object is taken as is.
func Merge(local object.Object, haveLocal bool, incoming object.Object) (merged object.Object, changed bool) {
	if !haveLocal || local.Empty() {
		return incoming, !incoming.Empty()
	}
	merged = object.Merge(local, incoming)
	return merged, !merged.Clock.Equal(local.Clock)
}
