package abi

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

func encode(pairs ...string) []byte {
	kv := 0
	for _, p := range pairs {
		kv += len(p)
	}
	b := make([]byte, MapSize(len(pairs)/2, kv))
	w := NewMapWriter(b, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		w.Add(pairs[i], pairs[i+1], false)
	}
	return b
}

func decode(b []byte) ([]string, error) {
	var out []string
	err := DecodeMap(b, func(k, v []byte) bool {
		out = append(out, string(k), string(v))
		return true
	})
	return out, err
}

func TestMapWriter_Add(t *testing.T) {
	// The spec's example: {{"a": "1"}, {"b": "22"}}.
	want := []byte{2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 'a', 0, '1', 0, 'b', 0, '2', '2', 0}
	if got := encode("a", "1", "b", "22"); !bytes.Equal(got, want) {
		t.Errorf("encode = %v\nwant     %v", got, want)
	}
	b := make([]byte, MapSize(1, 12))
	w := NewMapWriter(b, 1)
	w.Add("Content-Type", "", true)
	if got, _ := decode(b); !slices.Equal(got, []string{"content-type", ""}) {
		t.Errorf("lower-cased = %q", got)
	}
}

func TestDecodeMap(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want []string
		err  error
	}{
		{"empty", nil, nil, nil},
		{"single NUL", []byte{0}, nil, nil},
		{"zero count", []byte{0, 0, 0, 0}, nil, nil},
		{"round trip", encode("a", "1", "b", "22"), []string{"a", "1", "b", "22"}, nil},
		{"empty key and value", encode("", ""), []string{"", ""}, nil},
		{"no final NUL", encode("k", "v")[:MapSize(1, 2)-1], []string{"k", "v"}, nil},
		{"short", []byte{1, 0}, nil, ErrMalformedMap},
		{"count past end", []byte{2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0}, nil, ErrMalformedMap},
		{"huge count", []byte{0xff, 0xff, 0xff, 0xff}, nil, ErrMalformedMap},
		{"key past end", []byte{1, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 'a', 0}, nil, ErrMalformedMap},
		{"value past end", []byte{1, 0, 0, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 'a', 0}, nil, ErrMalformedMap},
	}
	for _, tt := range tests {
		got, err := decode(tt.in)
		if !errors.Is(err, tt.err) || (err == nil && !slices.Equal(got, tt.want)) {
			t.Errorf("%s: %q, %v; want %q, %v", tt.name, got, err, tt.want, tt.err)
		}
	}
}

// FuzzDecodeMap checks that DecodeMap never reads outside its input, and
// that what it decodes encodes back to the same pairs.
func FuzzDecodeMap(f *testing.F) {
	f.Add(encode("a", "1", "b", "22"))
	f.Add([]byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decode(b)
		if err != nil {
			return
		}
		again, err := decode(encode(got...))
		if err != nil || !slices.Equal(got, again) {
			t.Fatalf("re-encoding %q gave %q, %v", got, again, err)
		}
	})
}

func TestStatus_String(t *testing.T) {
	if StatusCASMismatch.String() != "CAS_MISMATCH" || Status(5).String() != "UNKNOWN" {
		t.Error("Status.String")
	}
}
