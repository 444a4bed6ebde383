package storage

// Engine is a sorted key-value store holding one node's durable state. Keys
// and values are arbitrary byte strings; keys sort bytewise. Safe for
// concurrent use.
//
// Durability: Apply(b, false) is visible to Get and Scan as soon as it
// returns but may be lost in a crash until a later Sync, Apply(_, true) or
// Close returns; those make every write applied before them durable. Batches
// are atomic: a crash keeps all of a batch or none of it.
type Engine interface {
	// Get returns a copy of the value stored under key, owned by the caller,
	// or ErrNotFound. It does not retain key, so callers may reuse its
	// buffer.
	Get(key []byte) ([]byte, error)
	// Apply writes b atomically. The writes are visible to Get immediately;
	// with sync they are durable, together with everything applied before,
	// when Apply returns. The engine does not retain b.
	Apply(b *Batch, sync bool) error
	// Sync makes every write applied so far durable. This is group commit's
	// half: the daemon applies batches with sync=false and calls Sync once
	// for many of them.
	Sync() error
	// Scan calls fn for each key in [lower, upper) in ascending order; nil
	// upper means to the end of the key space. It reads a consistent
	// snapshot taken when it starts: writes applied meanwhile, including by
	// fn, are not seen. The slices passed to fn are valid only during the
	// call and must not be modified. An error from fn stops the scan and is
	// returned as is. fn must not call Close.
	Scan(lower, upper []byte, fn func(key, value []byte) error) error
	// Close makes every applied write durable and releases the engine. Every
	// later call returns ErrClosed.
	Close() error
}

type opKind uint8

const (
	opSet opKind = iota + 1
	opDelete
)

// batchOp locates one operation in Batch.data by offset rather than by
// sub-slices, so that growing data never leaves ops pointing into a stale
// backing array.
type batchOp struct {
	kind opKind
	off  int // key starts at data[off]; the value follows the key
	klen int
	vlen int
}

// Batch is an ordered list of sets and deletes applied atomically by
// Engine.Apply. Within a batch a later operation on a key overrides an
// earlier one. A Batch is not safe for concurrent use; it may be reused
// after Reset.
type Batch struct {
	data []byte
	ops  []batchOp
}

// Set records that key must hold value. It copies both, so the caller may
// reuse them at once. A nil value stores an empty value, not a delete.
func (b *Batch) Set(key, value []byte) {
	off := len(b.data)
	b.data = append(b.data, key...)
	b.data = append(b.data, value...)
	b.ops = append(b.ops, batchOp{kind: opSet, off: off, klen: len(key), vlen: len(value)})
}

// Delete records that key must hold nothing. It copies key.
func (b *Batch) Delete(key []byte) {
	off := len(b.data)
	b.data = append(b.data, key...)
	b.ops = append(b.ops, batchOp{kind: opDelete, off: off, klen: len(key)})
}

// Len returns the number of operations recorded.
func (b *Batch) Len() int { return len(b.ops) }

// Size returns the number of key and value bytes recorded, a measure of
// what applying the batch costs.
func (b *Batch) Size() int { return len(b.data) }

// Reset empties the batch, keeping its memory for reuse.
func (b *Batch) Reset() {
	b.data = b.data[:0]
	b.ops = b.ops[:0]
}

// Each calls fn for every operation in order: deleted reports a Delete, in
// which case value is nil. The slices alias the batch and are valid until
// the next Set, Delete or Reset. An error from fn stops the iteration and is
// returned as is.
func (b *Batch) Each(fn func(key, value []byte, deleted bool) error) error {
	for _, op := range b.ops {
		key := b.data[op.off : op.off+op.klen : op.off+op.klen]
		var value []byte
		if op.kind == opSet {
			end := op.off + op.klen + op.vlen
			value = b.data[op.off+op.klen : end : end]
		}
		if err := fn(key, value, op.kind == opDelete); err != nil {
			return err
		}
	}
	return nil
}
