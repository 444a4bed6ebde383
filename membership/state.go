package membership

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// MaxStateSize bounds a cluster-state blob. It is well above the largest
// owner table a ring can have (65536 partitions, about 1 MiB) and well below
// memberlist's 20 MiB limit on a push/pull or a reliable message, so a
// state that SetState accepts is never refused by a receiver.
const MaxStateSize = 4 << 20

// maxBroadcastState is the largest encoded state sent as a gossip
// broadcast. memberlist packs broadcasts into UDP packets of at most
// UDPBufferSize (1400) bytes together with its own messages; 1024 leaves
// room for those, so a state broadcast is never starved. Larger states go
// by SendReliable instead.
const maxBroadcastState = 1024

// Message tags. A receiver ignores tags it does not know, which leaves
// room for new kinds.
const (
	// msgState tags a cluster-state message.
	msgState byte = 1
	// msgLeave tags a leave intent: the member named in the rest of the
	// message is leaving on purpose, so nobody should try to reconnect
	// to it once memberlist marks it dead.
	msgLeave byte = 2
)

// MaxStateVersion is the highest cluster-state version a member accepts
// from another. Every change of the state (a commit, a staged leave, each
// completed handoff, the switch to the new ring) adds exactly one, so even
// a cluster changing its state every second for a century stays below
// 2^32; a version above it was forged or corrupted. Without this bound one
// forged state with version 2^64-1 would be adopted everywhere and nothing
// could ever be newer: every later change would be refused as stale, for
// good. A forger who stays below the bound can still do harm: gossip is
// not authenticated (see docs/OPERATIONS.md), and only memberlist's
// encryption keyring would stop that.
const MaxStateVersion = 1 << 32

// stateHeaderLen is the tag byte plus the big-endian version.
const stateHeaderLen = 1 + 8

var (
	// ErrStaleState reports a SetState whose state is not newer than the
	// one this member already holds (perhaps adopted from gossip).
	ErrStaleState = errors.New("membership: state not newer than the current one")
	// ErrStateTooLarge reports a state larger than MaxStateSize.
	ErrStateTooLarge = errors.New("membership: state too large")
	// errBadMessage reports a gossip message this package cannot decode;
	// such messages are logged and dropped.
	errBadMessage = errors.New("membership: malformed message")
	// ErrStateRejected reports a received state that decoded but is not
	// acceptable: version 0, above MaxStateVersion, or refused by
	// Config.ValidateState.
	ErrStateRejected = errors.New("membership: state rejected")
)

// maxLeaveIDLen bounds the node ID in a leave intent, as memberlist bounds
// node names by what fits in a packet.
const maxLeaveIDLen = 255

func encodeLeave(id string) []byte { return append([]byte{msgLeave}, id...) }

// decodeLeave parses a leave intent.
func decodeLeave(buf []byte) (string, error) {
	if len(buf) < 2 || buf[0] != msgLeave || len(buf)-1 > maxLeaveIDLen {
		return "", fmt.Errorf("%w: leave intent of %d bytes", errBadMessage, len(buf))
	}
	return string(buf[1:]), nil
}

// leaveBroadcast carries this member's own leave intent.
type leaveBroadcast struct{ msg []byte }

func (b *leaveBroadcast) Message() []byte                       { return b.msg }
func (b *leaveBroadcast) Finished()                             {}
func (b *leaveBroadcast) Invalidates(memberlist.Broadcast) bool { return false }

// clusterState is one version of the cluster state. msg is its encoding,
// kept because push/pull asks for it every interval; data aliases msg.
type clusterState struct {
	version uint64
	data    []byte
	msg     []byte
}

func newClusterState(version uint64, data []byte) clusterState {
	msg := make([]byte, stateHeaderLen+len(data))
	msg[0] = msgState
	binary.BigEndian.PutUint64(msg[1:stateHeaderLen], version)
	copy(msg[stateHeaderLen:], data)
	return clusterState{version: version, data: msg[stateHeaderLen:], msg: msg}
}

// decodeState parses a cluster-state message. The result does not alias buf.
func decodeState(buf []byte) (clusterState, error) {
	if len(buf) < stateHeaderLen {
		return clusterState{}, fmt.Errorf("%w: %d bytes", errBadMessage, len(buf))
	}
	if buf[0] != msgState {
		return clusterState{}, fmt.Errorf("%w: unknown tag %d", errBadMessage, buf[0])
	}
	if len(buf)-stateHeaderLen > MaxStateSize {
		return clusterState{}, fmt.Errorf("%w: state of %d bytes", errBadMessage, len(buf)-stateHeaderLen)
	}
	return newClusterState(binary.BigEndian.Uint64(buf[1:stateHeaderLen]), buf[stateHeaderLen:]), nil
}

// compareStates orders states: by version, then by bytes. Every member uses
// the same order, so they all settle on the same state.
func compareStates(av uint64, a []byte, bv uint64, b []byte) int {
	switch {
	case av < bv:
		return -1
	case av > bv:
		return 1
	}
	return bytes.Compare(a, b)
}

// stateBroadcast queues a small state for gossip. A newer state replaces an
// older one still in the queue, so at most one state is in flight.
type stateBroadcast struct{ msg []byte }

const stateBroadcastName = "dynago/state"

func (b *stateBroadcast) Name() string    { return stateBroadcastName }
func (b *stateBroadcast) Message() []byte { return b.msg }
func (b *stateBroadcast) Finished()       {}

// Invalidates follows memberlist's NamedBroadcast contract.
func (b *stateBroadcast) Invalidates(other memberlist.Broadcast) bool {
	nb, ok := other.(memberlist.NamedBroadcast)
	return ok && nb.Name() == stateBroadcastName
}
