package membership

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/hashicorp/memberlist"

	"github.com/dynago/dynago/node"
	"github.com/dynago/dynago/ring"
)

// Meta is what a member tells the others about itself besides its gossip
// address: where to reach its APIs. It travels in memberlist's node meta,
// which is limited to memberlist.MetaMaxSize (512) bytes once encoded.
type Meta struct {
	HTTPAddr string
	RPCAddr  string
	// Version and Commit name the member's build (buildinfo), so that a
	// rolling upgrade shows which nodes run what; empty from members
	// older than this field.
	Version, Commit string
}

// Member is one known member of the cluster as this member sees it.
type Member struct {
	ID     ring.NodeID
	Addr   string // gossip address, host:port
	Meta   Meta
	Status node.Status
}

// Event reports that a member's status, meta or address changed; Member is
// its new view.
type Event struct {
	Member Member
}

// metaVersion is the encoding version of Meta. Later versions must only add
// fields, so that older members still read the ones they know.
const metaVersion = 1

// wireMeta is Meta's encoding: JSON, because it is small, rarely sent, and
// readable in a packet capture.
type wireMeta struct {
	V      int    `json:"v"`
	HTTP   string `json:"http,omitempty"`
	RPC    string `json:"rpc,omitempty"`
	Build  string `json:"build,omitempty"`
	Commit string `json:"commit,omitempty"`
}

var (
	// ErrMetaTooLarge reports a Meta whose encoding exceeds memberlist's
	// node meta limit.
	ErrMetaTooLarge = errors.New("membership: meta too large")
	// errBadMeta reports node meta that is not a dynago member's: another
	// memberlist cluster's node, or garbage. Such nodes are refused.
	errBadMeta = errors.New("membership: malformed member meta")
)

func encodeMeta(m Meta) ([]byte, error) {
	// What this member sends must pass what every member checks.
	for _, a := range []string{m.HTTPAddr, m.RPCAddr} {
		if err := checkMetaAddr(a); err != nil {
			return nil, err
		}
	}
	// The build is informative: an odd one (a long hash, a stamp with a
	// space) is cleaned to what every member accepts, never a reason not
	// to start.
	b, err := json.Marshal(wireMeta{V: metaVersion, HTTP: m.HTTPAddr, RPC: m.RPCAddr, Build: metaWord(m.Version), Commit: metaWord(m.Commit)})
	if err != nil {
		return nil, err
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("%w: %d bytes encoded, limit %d", ErrMetaTooLarge, len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

// decodeMeta accepts any version from 1 on: newer versions only add fields.
func decodeMeta(b []byte) (Meta, error) {
	var w wireMeta
	if err := json.Unmarshal(b, &w); err != nil {
		return Meta{}, fmt.Errorf("%w: %w", errBadMeta, err)
	}
	if w.V < 1 {
		return Meta{}, fmt.Errorf("%w: version %d", errBadMeta, w.V)
	}
	for _, a := range []string{w.HTTP, w.RPC} {
		if err := checkMetaAddr(a); err != nil {
			return Meta{}, err
		}
	}
	// A build field this member cannot show safely is dropped, not the
	// member: it is informative, and a later release may write it
	// differently.
	m := Meta{HTTPAddr: w.HTTP, RPCAddr: w.RPC}
	if validMetaWord(w.Build) {
		m.Version = w.Build
	}
	if validMetaWord(w.Commit) {
		m.Commit = w.Commit
	}
	return m, nil
}

// maxMetaWord bounds a build version or commit in Meta.
const maxMetaWord = 64

// validMetaWord accepts an empty string or up to maxMetaWord printable
// ASCII characters without spaces: a peer's version ends up in /cluster,
// the CLI's table and logs, where control characters must not.
func validMetaWord(s string) bool {
	return len(s) <= maxMetaWord && !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r > '~' })
}

// metaWord makes s a valid build field: other bytes become '_', and it is
// cut to maxMetaWord.
func metaWord(s string) string {
	b := []byte(s[:min(len(s), maxMetaWord)])
	for i, c := range b {
		if c <= ' ' || c > '~' {
			b[i] = '_'
		}
	}
	return string(b)
}

// checkMetaAddr accepts an empty address or host:port with a non-empty
// host and a port in 1..65535: the daemon dials these addresses, so a
// member advertising anything else is refused at the door.
func checkMetaAddr(a string) error {
	if a == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%w: address %q: %v", errBadMeta, a, err)
	}
	if p, err := strconv.Atoi(port); host == "" || err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%w: address %q", errBadMeta, a)
	}
	return nil
}
