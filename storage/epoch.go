package storage

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// epochName is the metadata record holding the node epoch.
const epochName = "epoch"

// LoadOrCreateEpoch returns the node epoch stored in e, creating and durably
// storing a fresh random one (created is true) when there is none — that is,
// whenever the data directory is new or its contents were lost. The epoch is
// part of the node's actor ID in version vectors: a node that lost its data
// must never reuse the actor ID it had, or its new writes would carry dots
// that replicas already hold and be silently dropped (Riak's kv679). The
// epoch is never zero, so zero can mean "no epoch". rnd supplies the
// randomness (the simulator passes its seeded source); nil means
// crypto/rand.
func LoadOrCreateEpoch(e Engine, rnd io.Reader) (epoch uint64, created bool, err error) {
	key := MetaKey(epochName)
	v, err := e.Get(key)
	switch {
	case err == nil:
		if len(v) != 8 {
			return 0, false, fmt.Errorf("storage: epoch record of %d bytes: %w", len(v), ErrCorrupt)
		}
		epoch = binary.BigEndian.Uint64(v)
		if epoch == 0 {
			return 0, false, fmt.Errorf("storage: zero epoch record: %w", ErrCorrupt)
		}
		return epoch, false, nil
	case !errors.Is(err, ErrNotFound):
		return 0, false, fmt.Errorf("storage: load epoch: %w", err)
	}

	if rnd == nil {
		rnd = rand.Reader
	}
	var buf [8]byte
	// A few draws make a zero from a working source practically impossible;
	// a source that keeps producing zeros is broken.
	for range 4 {
		if _, err := io.ReadFull(rnd, buf[:]); err != nil {
			return 0, false, fmt.Errorf("storage: draw epoch: %w", err)
		}
		if epoch = binary.BigEndian.Uint64(buf[:]); epoch != 0 {
			break
		}
	}
	if epoch == 0 {
		return 0, false, errors.New("storage: draw epoch: random source returns only zeros")
	}
	var b Batch
	b.Set(key, buf[:])
	// Synced at once, so the epoch is durable before any write can carry
	// it, whatever the caller syncs next.
	if err := e.Apply(&b, true); err != nil {
		return 0, false, fmt.Errorf("storage: store epoch: %w", err)
	}
	return epoch, true, nil
}

// cleanName is the metadata record saying the node shut down cleanly.
const cleanName = "clean"

// Epoch reasons returned by StartEpoch.
const (
	EpochKept    = "kept"             // the last run shut down cleanly
	EpochNew     = "new data"         // no epoch: new or wiped data directory
	EpochUnclean = "unclean shutdown" // the last run crashed
)

// StartEpoch is LoadOrCreateEpoch for a node process starting up: it also
// draws a new epoch when the previous run did not shut down cleanly
// (MarkClean was not called), and then marks the run in progress.
//
// A crash loses writes that were applied but not yet synced, among them
// version stamps (dots) the node had already sent to replicas: a
// coordinator sends a new version to the other replicas before its own
// fsync finishes, to save one fsync of latency. Reusing the actor after
// such a crash could stamp a different write with a dot the replicas
// already hold, which they would then drop as already seen. A new epoch
// after every crash makes that impossible; a clean shutdown syncs
// everything first and keeps the epoch, so version vectors grow only with
// crashes.
func StartEpoch(e Engine, rnd io.Reader) (epoch uint64, reason string, err error) {
	epoch, created, err := LoadOrCreateEpoch(e, rnd)
	if err != nil {
		return 0, "", err
	}
	reason = EpochKept
	if created {
		reason = EpochNew
	} else if v, err := e.Get(MetaKey(cleanName)); err != nil || len(v) != 1 || v[0] != 1 {
		if err != nil && !errors.Is(err, ErrNotFound) {
			return 0, "", fmt.Errorf("storage: load clean marker: %w", err)
		}
		var b Batch
		b.Delete(MetaKey(epochName))
		if err := e.Apply(&b, true); err != nil {
			return 0, "", fmt.Errorf("storage: retire epoch: %w", err)
		}
		if epoch, _, err = LoadOrCreateEpoch(e, rnd); err != nil {
			return 0, "", err
		}
		reason = EpochUnclean
	}
	var b Batch
	b.Set(MetaKey(cleanName), []byte{0})
	if err := e.Apply(&b, true); err != nil {
		return 0, "", fmt.Errorf("storage: mark run in progress: %w", err)
	}
	return epoch, reason, nil
}

// MarkClean records a clean shutdown: call it after the last write was
// synced, right before closing the engine. The next StartEpoch keeps the
// epoch.
func MarkClean(e Engine) error {
	var b Batch
	b.Set(MetaKey(cleanName), []byte{1})
	return e.Apply(&b, true)
}

// AdoptRestored prepares a store copied from a backup for its first start:
// it refuses a backup of another on-disk format (without recording one, as
// CheckFormat would), and it retires the backup's epoch, so the restored
// node starts with a new one. The node had stamped writes after the backup
// with dots of the old epoch, which replicas still hold; reusing those dots
// for different writes would make replicas drop them as already seen
// (Riak's kv679). It lives here, not beside the engine that copies the
// files, because the format and epoch records are this package's.
func AdoptRestored(e Engine) error {
	if v, found, err := ReadFormat(e); err != nil {
		return err
	} else if found && v != FormatVersion {
		return formatError(v)
	}
	var b Batch
	b.Delete(MetaKey(epochName))
	b.Delete(MetaKey(cleanName))
	if err := e.Apply(&b, true); err != nil {
		return fmt.Errorf("storage: retiring the backup's epoch: %w", err)
	}
	return nil
}
