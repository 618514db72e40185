package wedge

import (
	"encoding/binary"
	"fmt"
)

// decodeInt64 decodes an integer property: 8 bytes, little-endian, as
// Envoy and Wedge serialize int64 and uint64 values (and timestamps and
// durations, in nanoseconds).
func decodeInt64(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: an integer is 8 bytes, got %d", ErrMalformed, len(b))
	}
	return int64(binary.LittleEndian.Uint64(b)), nil
}

// decodeBool decodes a boolean property: one byte, 0 or 1.
func decodeBool(b []byte) (bool, error) {
	if len(b) != 1 {
		return false, fmt.Errorf("%w: a boolean is 1 byte, got %d", ErrMalformed, len(b))
	}
	return b[0] != 0, nil
}

// maxPairs bounds the pair count decodeMap believes before it has checked
// the sizes, so a forged count cannot make it allocate much.
const maxPairs = 1 << 16

// decodeMap decodes a map property (request.headers, response.headers)
// in the proxy-wasm serialization (spec "Serialization"): a u32 pair
// count n, n pairs of u32 key and value sizes, then each key and each
// value followed by a NUL byte; integers little-endian. Strings are
// copied out of b. Empty input (a host that returned nothing) is an empty
// map. Anything else that does not add up is ErrMalformed.
func decodeMap(b []byte) ([][2]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: a map needs a 4-byte count, got %d bytes", ErrMalformed, len(b))
	}
	n := binary.LittleEndian.Uint32(b)
	if n > maxPairs || uint64(len(b)) < 4+8*uint64(n) {
		return nil, fmt.Errorf("%w: map of %d pairs in %d bytes", ErrMalformed, n, len(b))
	}
	sizes := b[4 : 4+8*n]
	data := b[4+8*n:]
	out := make([][2]string, n)
	for i := range out {
		for j := range 2 {
			sz := uint64(binary.LittleEndian.Uint32(sizes[8*i+4*j:]))
			if sz+1 > uint64(len(data)) || data[sz] != 0 {
				return nil, fmt.Errorf("%w: pair %d runs past the end of the map or lacks its NUL", ErrMalformed, i)
			}
			out[i][j] = string(data[:sz])
			data = data[sz+1:]
		}
	}
	if len(data) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last pair", ErrMalformed, len(data))
	}
	return out, nil
}
