package storage

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/dynago/dynago/internal/wire"
)

// Key layout. Every key starts with a one-byte namespace, so that one kind
// of record is one contiguous key range and a scan never wades through
// another kind:
//
//	'o' | uint32 BE partition | user key                      object
//	'h' | uvarint len(target) | target | uint32 BE partition | user key   hint
//	'm' | name                                                 node metadata
//
// Objects are clustered by partition, big-endian so that partitions sort
// numerically: anti-entropy, handoff and Merkle rebuilds read one partition
// as one range scan. Hints are clustered by the node they are meant for, so
// handoff to a node that came back is one range scan; the target is length
// prefixed so that no target's range contains another's ("n1" and "n10").
const (
	nsObject byte = 'o'
	nsHint   byte = 'h'
	nsMeta   byte = 'm'
)

// checkPartition panics on a partition number the layout cannot hold: a
// negative or over-large partition is a bug in the caller, and silently
// truncating it would file the key under another partition.
func checkPartition(partition int) {
	if partition < 0 || uint64(partition) > math.MaxUint32 {
		panic(fmt.Sprintf("storage: partition %d out of range [0, 2^32)", partition))
	}
}

// ObjectKey returns the key under which the object for userKey, which hashes
// to partition, is stored. It panics if partition is outside [0, 2^32).
func ObjectKey(partition int, userKey []byte) []byte {
	return AppendObjectKey(make([]byte, 0, 1+4+len(userKey)), partition, userKey)
}

// AppendObjectKey appends ObjectKey(partition, userKey) to dst, so that a
// caller reading many keys can build them all in one buffer.
func AppendObjectKey(dst []byte, partition int, userKey []byte) []byte {
	checkPartition(partition)
	dst = append(dst, nsObject)
	dst = binary.BigEndian.AppendUint32(dst, uint32(partition))
	return append(dst, userKey...)
}

// ObjectRange returns the bounds [lower, upper) of exactly the object keys
// of partition, for Scan.
func ObjectRange(partition int) (lower, upper []byte) {
	lower = ObjectKey(partition, nil)
	return lower, prefixEnd(lower)
}

// ParseObjectKey splits an object key into its partition and user key,
// which aliases k. ok is false if k is not an object key.
func ParseObjectKey(k []byte) (partition int, userKey []byte, ok bool) {
	if len(k) < 1+4 || k[0] != nsObject {
		return 0, nil, false
	}
	return int(binary.BigEndian.Uint32(k[1:5])), k[5:], true
}

// hintPrefix returns 'h' | uvarint len(target) | target, with room for
// extra more bytes.
func hintPrefix(target string, extra int) []byte {
	k := make([]byte, 0, 1+binary.MaxVarintLen64+len(target)+extra)
	k = append(k, nsHint)
	k = binary.AppendUvarint(k, uint64(len(target)))
	return append(k, target...)
}

// HintKey returns the key of the hint a fallback stores for target, the
// primary that should have received the write of userKey in partition. It
// panics if partition is outside [0, 2^32).
func HintKey(target string, partition int, userKey []byte) []byte {
	checkPartition(partition)
	k := hintPrefix(target, 4+len(userKey))
	k = binary.BigEndian.AppendUint32(k, uint32(partition))
	return append(k, userKey...)
}

// HintRange returns the bounds [lower, upper) of exactly the hints for
// target.
func HintRange(target string) (lower, upper []byte) {
	lower = hintPrefix(target, 0)
	return lower, prefixEnd(lower)
}

// AllHintsRange returns the bounds [lower, upper) of every hint, whatever
// its target.
func AllHintsRange() (lower, upper []byte) {
	return []byte{nsHint}, []byte{nsHint + 1}
}

// ParseHintKey splits a hint key into its target, partition and user key
// (which aliases k). ok is false if k is not a well-formed hint key,
// including a length that is not in canonical uvarint form, so that every
// accepted key is exactly the one HintKey builds from the parts.
func ParseHintKey(k []byte) (target string, partition int, userKey []byte, ok bool) {
	if len(k) < 1 || k[0] != nsHint {
		return "", 0, nil, false
	}
	rest := k[1:]
	n, w := binary.Uvarint(rest)
	if w <= 0 || w != wire.UvarintLen(n) {
		return "", 0, nil, false
	}
	rest = rest[w:]
	if n > uint64(len(rest)) || uint64(len(rest))-n < 4 {
		return "", 0, nil, false
	}
	target = string(rest[:n])
	rest = rest[n:]
	return target, int(binary.BigEndian.Uint32(rest[:4])), rest[4:], true
}

// MetaKey returns the key of the node metadata record name (the epoch, the
// ring the node last saw, ...).
func MetaKey(name string) []byte {
	k := make([]byte, 0, 1+len(name))
	k = append(k, nsMeta)
	return append(k, name...)
}

// MetaRange returns the bounds [lower, upper) of every metadata record.
func MetaRange() (lower, upper []byte) {
	return []byte{nsMeta}, []byte{nsMeta + 1}
}

// prefixEnd returns the smallest key greater than every key with prefix p,
// or nil (the end of the key space) if there is none.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
