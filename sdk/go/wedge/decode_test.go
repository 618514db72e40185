package wedge

import (
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

func encodeMap(pairs [][2]string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(pairs)))
	for _, p := range pairs {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p[0])))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p[1])))
	}
	for _, p := range pairs {
		b = append(append(b, p[0]...), 0)
		b = append(append(b, p[1]...), 0)
	}
	return b
}

func TestDecodeMap(t *testing.T) {
	tests := []struct {
		name  string
		in    []byte
		want  [][2]string
		fails bool
	}{
		{"nothing", nil, nil, false},
		{"empty map", []byte{0, 0, 0, 0}, [][2]string{}, false},
		{"pairs", encodeMap([][2]string{{":status", "200"}, {"a", ""}, {"", "b"}}), [][2]string{{":status", "200"}, {"a", ""}, {"", "b"}}, false},
		{"short count", []byte{1, 0}, nil, true},
		{"count past end", []byte{2, 0, 0, 0, 1, 0, 0, 0}, nil, true},
		{"forged count", []byte{255, 255, 255, 255}, nil, true},
		{"size past end", append(encodeMap([][2]string{{"a", "b"}})[:12], 'a', 0, 'b'), nil, true},
		{"no NUL", []byte{1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 'a', 'x', 'b', 0}, nil, true},
		{"trailing bytes", append(encodeMap([][2]string{{"a", "b"}}), 0), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeMap(tt.in)
			if tt.fails {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("decodeMap = %v, %v; want ErrMalformed", got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("decodeMap = %#v, %v; want %#v", got, err, tt.want)
			}
		})
	}
}

func TestDecodeInt64(t *testing.T) {
	if n, err := decodeInt64([]byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}); err != nil || n != -2 {
		t.Errorf("decodeInt64(-2) = %d, %v", n, err)
	}
	for _, b := range [][]byte{nil, make([]byte, 4), make([]byte, 9)} {
		if _, err := decodeInt64(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("decodeInt64(%d bytes) = %v, want ErrMalformed", len(b), err)
		}
	}
}

// FuzzDecodeMap checks that decodeMap never panics and that what it
// accepts encodes back to the same bytes.
func FuzzDecodeMap(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0})
	f.Add(encodeMap([][2]string{{":status", "200"}, {"content-type", "text/plain"}}))
	f.Add([]byte{255, 255, 255, 255, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMap(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(b) == 0 {
			return
		}
		if back := encodeMap(m); string(back) != string(b) {
			t.Fatalf("round trip: %x became %x", b, back)
		}
	})
}

func BenchmarkDecodeMap(b *testing.B) {
	in := encodeMap([][2]string{{":authority", "example.com"}, {":path", "/"}, {":method", "GET"}, {":scheme", "http"}, {"user-agent", "bench"}, {"accept", "*/*"}})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeMap(in); err != nil {
			b.Fatal(err)
		}
	}
}
