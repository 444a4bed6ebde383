package storage

import (
	"errors"
	"fmt"
	"sync"
)

// Faulty wraps any Engine and fails its operations on demand, in the spirit
// of pebble's errorfs: tests and the simulator use it to check that a failed
// write is never acknowledged and that a crash loses nothing that was. It
// also keeps an undo log of the prior values of every key written since the
// last durable point, so Crash can simulate a power loss on an engine that
// cannot lose writes by itself (Pebble in a test process).
//
// Faulty serializes writes with each other and with syncs, so that its undo
// log matches the order in which the inner engine saw them. It is a testing
// tool; that costs concurrency nobody measures through it.
type Faulty struct {
	inner Engine

	faultMu  sync.Mutex
	writeErr error
	readErr  error

	mu   sync.Mutex       // serializes Apply, Sync, Close and Crash
	undo map[string]prior // durable state of keys written since the last durable point
}

var _ Engine = (*Faulty)(nil)

// NewFaulty wraps inner, initially failing nothing. Writes made to inner
// before wrapping, or behind Faulty's back, count as durable.
func NewFaulty(inner Engine) *Faulty {
	return &Faulty{inner: inner, undo: make(map[string]prior)}
}

// FailWrites makes every later Apply and Sync fail with err without reaching
// the inner engine; nil stops failing. Use ErrInjected unless the test needs
// a particular error.
func (f *Faulty) FailWrites(err error) {
	f.faultMu.Lock()
	defer f.faultMu.Unlock()
	f.writeErr = err
}

// FailReads makes every later Get and Scan fail with err; nil stops failing.
func (f *Faulty) FailReads(err error) {
	f.faultMu.Lock()
	defer f.faultMu.Unlock()
	f.readErr = err
}

func (f *Faulty) faults() (write, read error) {
	f.faultMu.Lock()
	defer f.faultMu.Unlock()
	return f.writeErr, f.readErr
}

// Get implements Engine.
func (f *Faulty) Get(key []byte) ([]byte, error) {
	if _, rerr := f.faults(); rerr != nil {
		return nil, fmt.Errorf("storage: faulty get: %w", rerr)
	}
	return f.inner.Get(key)
}

// Scan implements Engine.
func (f *Faulty) Scan(lower, upper []byte, fn func(key, value []byte) error) error {
	if _, rerr := f.faults(); rerr != nil {
		return fmt.Errorf("storage: faulty scan: %w", rerr)
	}
	return f.inner.Scan(lower, upper, fn)
}

// Apply implements Engine. An injected failure leaves the inner engine
// untouched, as if the write never reached the disk.
func (f *Faulty) Apply(b *Batch, sync bool) error {
	if werr, _ := f.faults(); werr != nil {
		return fmt.Errorf("storage: faulty apply: %w", werr)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !sync {
		if err := b.Each(func(key, _ []byte, _ bool) error { return f.rememberPrior(key) }); err != nil {
			return err
		}
	}
	if err := f.inner.Apply(b, sync); err != nil {
		// The priors just recorded equal the keys' current values, so
		// keeping them is harmless.
		return err
	}
	if sync {
		clear(f.undo)
	}
	return nil
}

func (f *Faulty) rememberPrior(key []byte) error {
	if _, ok := f.undo[string(key)]; ok {
		return nil
	}
	v, err := f.inner.Get(key)
	switch {
	case errors.Is(err, ErrNotFound):
		f.undo[string(key)] = prior{}
	case err != nil:
		return fmt.Errorf("storage: faulty: read prior value: %w", err)
	default:
		f.undo[string(key)] = prior{value: v, existed: true}
	}
	return nil
}

// Sync implements Engine.
func (f *Faulty) Sync() error {
	if werr, _ := f.faults(); werr != nil {
		return fmt.Errorf("storage: faulty sync: %w", werr)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.inner.Sync(); err != nil {
		return err
	}
	clear(f.undo)
	return nil
}

// Close implements Engine. It closes the inner engine even while writes are
// being failed: closing is the harness's business, not the workload's.
func (f *Faulty) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.inner.Close(); err != nil {
		return err
	}
	clear(f.undo)
	return nil
}

// Crash drops every write made through f since the last durable point by
// writing the recorded prior values back, durably, into the inner engine:
// afterwards the inner engine holds what it would hold after a power loss.
// Injected write failures do not apply to Crash. It fails only if the inner
// engine does (for example because it is closed).
func (f *Faulty) Crash() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b Batch
	for k, p := range f.undo {
		if p.existed {
			b.Set([]byte(k), p.value)
		} else {
			b.Delete([]byte(k))
		}
	}
	if err := f.inner.Apply(&b, true); err != nil {
		return fmt.Errorf("storage: faulty crash: %w", err)
	}
	clear(f.undo)
	return nil
}
