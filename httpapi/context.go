package httpapi

import (
	"encoding/binary"
	"fmt"
	"github.com/dynago/dynago/api"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/dynago/dynago/dvv"
)

// MaxContextHeaderSize bounds an X-Dynago-Context token (and a JSON
// "context"), in characters: 8 KiB, far below the header limits of common
// clients and proxies (8 KiB per header in nginx's default
// large_client_header_buffers, 64 KiB in many HTTP libraries). The core
// refuses writes that would give a key a larger context
// (node.Config.MaxContextSize, 6000 bytes in both presets), so every token a node hands out fits.
const MaxContextHeaderSize = 8 << 10

// keyTagLen is the size of the key binding at the end of a token.
const keyTagLen = 4

// ErrContextKey reports a context token issued for another key. It wraps
// ErrBadContext.
var ErrContextKey = fmt.Errorf("%w: the context was issued for another key", ErrBadContext)

// keyTag binds a context to its key: the low 32 bits of the key's xxhash,
// little-endian. Not a secret and not a MAC (a client can always write
// blindly, or read the key and use its real context): it catches the
// mistake of sending one key's context with a write to another, which
// would otherwise silently supersede values the client never saw.
func keyTag(key []byte) [keyTagLen]byte {
	var t [keyTagLen]byte
	binary.LittleEndian.PutUint32(t[:], uint32(xxhash.Sum64(key)))
	return t
}

// EncodeContextHeader returns the form in which the context ctx of key
// travels in X-Dynago-Context headers and "context" JSON fields: unpadded
// base64url (api.EncodeContext) of ctx (dvv.EncodeContext bytes) followed
// by 4 bytes binding it to key, safe in headers, URLs and shells. Clients treat it as opaque. An
// empty ctx encodes as "".
func EncodeContextHeader(key, ctx []byte) string {
	if len(ctx) == 0 {
		return ""
	}
	tag := keyTag(key)
	// Built on the stack when it fits (tokens are usually tens of bytes):
	// the token string is then the only allocation.
	var buf [256]byte
	return api.EncodeContext(append(append(buf[:0], ctx...), tag[:]...))
}

// DecodeContextHeader reverses EncodeContextHeader for a write to key and
// validates the result with dvv.DecodeContext, so that a forged, truncated,
// oversized or other key's context is rejected at the edge rather than in
// the core. Trailing '=' padding is tolerated for clients whose base64
// library always pads. An empty s means no context: nil, nil. Errors wrap
// ErrBadContext (and ErrContextKey for another key's context).
func DecodeContextHeader(key []byte, s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if s == "" {
		return nil, nil
	}
	// Checked before decoding, so an oversized token costs no allocation.
	if len(s) > MaxContextHeaderSize {
		return nil, fmt.Errorf("%w: %d characters, more than the limit of %d", ErrBadContext, len(s), MaxContextHeaderSize)
	}
	b, err := api.DecodeContext(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadContext, err)
	}
	if len(b) <= keyTagLen {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrBadContext, len(b))
	}
	ctx, tag := b[:len(b)-keyTagLen], b[len(b)-keyTagLen:]
	if want := keyTag(key); string(tag) != string(want[:]) {
		return nil, ErrContextKey
	}
	if _, err := dvv.DecodeContext(ctx); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadContext, err)
	}
	return ctx, nil
}
