package abi

import (
	"encoding/binary"
	"errors"
)

// ErrMalformedMap is returned by DecodeMap for bytes that are not a
// serialized map.
var ErrMalformedMap = errors.New("malformed serialized map")

// MaxMapPairs bounds the pair count DecodeMap accepts, so a forged count
// cannot make the host loop or allocate for long. No HTTP message the proxy
// accepts has anywhere near this many fields.
const MaxMapPairs = 1 << 16

// MapSize returns the serialized size in bytes of a map with n pairs whose
// keys and values together hold kvBytes bytes (spec "Serialization"):
// a u32 count, n pairs of u32 sizes, then each key and value followed by a
// NUL byte. An empty map is 4 bytes (a zero count), which every SDK reads
// as empty.
func MapSize(n, kvBytes int) int { return 4 + 8*n + kvBytes + 2*n }

// MapWriter serializes a map into a buffer of exactly MapSize bytes, such as
// a window of guest memory. Add pairs in order, n of them.
type MapWriter struct {
	dst  []byte
	i    int // pairs written
	data int // offset of the next key or value
}

// NewMapWriter starts a map of n pairs in dst, which must be MapSize bytes.
func NewMapWriter(dst []byte, n int) MapWriter {
	binary.LittleEndian.PutUint32(dst, uint32(n))
	return MapWriter{dst: dst, data: 4 + 8*n}
}

// Add writes one pair. lower, when true, writes the key in ASCII lower case,
// as Envoy presents HTTP field names.
func (w *MapWriter) Add(key, value string, lower bool) {
	sz := 4 + 8*w.i
	binary.LittleEndian.PutUint32(w.dst[sz:], uint32(len(key)))
	binary.LittleEndian.PutUint32(w.dst[sz+4:], uint32(len(value)))
	w.i++
	d := w.dst[w.data:]
	if lower {
		for i := 0; i < len(key); i++ {
			c := key[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			d[i] = c
		}
	} else {
		copy(d, key)
	}
	d[len(key)] = 0
	d = d[len(key)+1:]
	copy(d, value)
	d[len(value)] = 0
	w.data += len(key) + len(value) + 2
}

// DecodeMap walks a serialized map, calling yield for each pair in order
// with views into b (copy them to keep them). It checks every size against
// len(b) before reading, so it never reads outside b; the NUL terminators
// are skipped without being checked, as Envoy does. An empty b, or a single
// 0x00 byte, is the empty map. It stops early, without error, when yield
// returns false.
func DecodeMap(b []byte, yield func(key, value []byte) bool) error {
	if len(b) == 0 || (len(b) == 1 && b[0] == 0) {
		return nil
	}
	if len(b) < 4 {
		return ErrMalformedMap
	}
	n := binary.LittleEndian.Uint32(b)
	if n > MaxMapPairs || uint64(n)*8+4 > uint64(len(b)) {
		return ErrMalformedMap
	}
	sizes := b[4 : 4+8*int(n)]
	data := uint64(4 + 8*int(n))
	end := uint64(len(b))
	for i := 0; i < int(n); i++ {
		ks := uint64(binary.LittleEndian.Uint32(sizes[8*i:]))
		vs := uint64(binary.LittleEndian.Uint32(sizes[8*i+4:]))
		if data+ks+1 > end {
			return ErrMalformedMap
		}
		key := b[data : data+ks]
		data += ks + 1
		if data+vs > end {
			return ErrMalformedMap
		}
		value := b[data : data+vs]
		data += vs + 1 // the last NUL may be missing; nothing reads it
		if !yield(key, value) {
			return nil
		}
	}
	return nil
}

// PutInt64 writes v as Envoy serializes an int or uint attribute: 8 bytes,
// little-endian ("integers are passed as 64 bits directly").
func PutInt64(dst []byte, v int64) { binary.LittleEndian.PutUint64(dst, uint64(v)) }
