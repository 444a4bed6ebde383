package httpapi

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/dynago/dynago/dvv"
)

// EncodeContextHeader returns the form in which a context travels in
// X-Dynago-Context headers and "context" JSON fields: unpadded base64url of
// ctx (dvv.EncodeContext bytes), safe in headers, URLs and shells. An empty
// ctx encodes as "".
func EncodeContextHeader(ctx []byte) string {
	return base64.RawURLEncoding.EncodeToString(ctx)
}

// DecodeContextHeader reverses EncodeContextHeader and validates the result
// with dvv.DecodeContext, so that a forged or truncated context is rejected
// at the edge rather than in the core. Trailing '=' padding is tolerated for
// clients whose base64 library always pads. An empty s means no context:
// nil, nil.
func DecodeContextHeader(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("%w: not unpadded base64url: %v", ErrBadContext, err)
	}
	if _, err := dvv.DecodeContext(b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadContext, err)
	}
	return b, nil
}
