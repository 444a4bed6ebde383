package storage

import "errors"

var (
	// ErrNotFound is returned by Get when the key holds no value.
	ErrNotFound = errors.New("storage: not found")
	// ErrClosed is returned by every operation on a closed engine.
	ErrClosed = errors.New("storage: closed")
	// ErrInjected is the conventional error for Faulty to inject, so tests
	// can tell injected failures from real ones with errors.Is.
	ErrInjected = errors.New("storage: injected fault")
	// ErrCorrupt is returned when a stored record cannot be decoded (for
	// example a node epoch of the wrong length).
	ErrCorrupt = errors.New("storage: corrupt record")
)
