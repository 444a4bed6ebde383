package object

// zigzag and unzigzag map signed to unsigned as binary.AppendVarint does, so
// a timestamp can be read with the strict uvarint reader (internal/wire).
func zigzag(x int64) uint64 { return uint64(x<<1) ^ uint64(x>>63) }

func unzigzag(u uint64) int64 {
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}
