package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// formatName is the metadata record holding the data directory's on-disk
// format version.
const formatName = "format"

// FormatVersion is the on-disk format this build writes and reads: the
// object encoding, the key layout and the metadata records. A build refuses
// a data directory of a newer format, whose records it could misread;
// bumping it is for a change that an older build cannot read, and the
// upgrade notes in docs/OPERATIONS.md say what each version needs.
const FormatVersion uint64 = 1

// ErrFormat reports a data directory whose format this build cannot use.
var ErrFormat = errors.New("unsupported on-disk format")

// ReadFormat returns the format recorded in e; found is false when there is
// no record (a new store, or one written before formats were recorded,
// which is format 1).
func ReadFormat(e Engine) (version uint64, found bool, err error) {
	v, err := e.Get(MetaKey(formatName))
	switch {
	case errors.Is(err, ErrNotFound):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("storage: load format: %w", err)
	case len(v) != 8:
		return 0, false, fmt.Errorf("storage: format record of %d bytes: %w", len(v), ErrCorrupt)
	}
	return binary.BigEndian.Uint64(v), true, nil
}

// CheckFormat refuses a store whose format is not FormatVersion, naming
// both versions, and records FormatVersion in a store that has none yet.
func CheckFormat(e Engine) error {
	v, found, err := ReadFormat(e)
	if err != nil {
		return err
	}
	if found {
		if v != FormatVersion {
			return formatError(v)
		}
		return nil
	}
	var b Batch
	b.Set(MetaKey(formatName), binary.BigEndian.AppendUint64(nil, FormatVersion))
	if err := e.Apply(&b, true); err != nil {
		return fmt.Errorf("storage: store format: %w", err)
	}
	return nil
}

func formatError(v uint64) error {
	if v > FormatVersion {
		return fmt.Errorf("storage: the data is in on-disk format %d, newer than format %d of this build; run a dynago release that reads format %d: %w", v, FormatVersion, v, ErrFormat)
	}
	return fmt.Errorf("storage: the data is in on-disk format %d, which this build (format %d) does not read: %w", v, FormatVersion, ErrFormat)
}
