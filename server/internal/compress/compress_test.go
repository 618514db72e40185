package compress

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// htmlBody returns the first 100 KiB of the Go specification (an HTML page
// shipped with every Go distribution, under GOROOT/doc), the body the
// benchmarks and the size comparison with zlib use.
func htmlBody(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(runtime.GOROOT(), "doc", "go_spec.html"))
	if err != nil || len(b) < 100<<10 {
		tb.Skipf("no GOROOT/doc/go_spec.html to compress: %v", err)
	}
	return b[:100<<10]
}

// decode decompresses b with a decoder independent of the encoders' pools.
func decode(t *testing.T, c Coding, b []byte) []byte {
	t.Helper()
	var r io.Reader
	switch c {
	case Gzip:
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("gzip header: %v", err)
		}
		r = zr
	case Brotli:
		r = brotli.NewReader(bytes.NewReader(b))
	case Zstd:
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decoding %s: %v", c, err)
	}
	return out
}

func encode(t testing.TB, c Coding, level int, body []byte, chunk int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, c, level, int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	for p := body; len(p) > 0; {
		n := min(chunk, len(p))
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestWriter_RoundTrip compresses bodies of several sizes and kinds with
// every coding at its lowest, default and highest level, twice (the second
// time with a pooled encoder), and decodes them with the libraries'
// decoders.
func TestWriter_RoundTrip(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 300<<10)
	for i := range random {
		random[i] = byte(rnd.Uint32())
	}
	text := bytes.Repeat([]byte("<p>Wedge buffers whole responses before writing them.</p>\n"), 20000)
	bodies := map[string][]byte{
		"empty":       nil,
		"one byte":    {'x'},
		"text 1.2MiB": text,
		"random":      random,
	}
	for _, c := range Codings {
		lo, hi := c.Levels()
		for _, level := range []int{lo, c.DefaultLevel(), hi} {
			if c == Brotli && level == hi && testing.Short() {
				continue
			}
			for name, body := range bodies {
				t.Run(fmt.Sprintf("%s-%d/%s", c, level, name), func(t *testing.T) {
					first := encode(t, c, level, body, 7919)
					if got := decode(t, c, first); !bytes.Equal(got, body) {
						t.Fatalf("decoded %d bytes, want the %d written", len(got), len(body))
					}
					again := encode(t, c, level, body, 32<<10) // a pooled encoder, other write sizes
					if got := decode(t, c, again); !bytes.Equal(got, body) {
						t.Fatalf("pooled encoder: decoded %d bytes, want %d", len(got), len(body))
					}
					if len(body) > 1000 && name != "random" && len(first) > len(body)/2 {
						t.Errorf("%d bytes compressed to %d", len(body), len(first))
					}
				})
			}
		}
	}
}

// TestNewWriter_Levels checks the accepted ranges and the errors outside them.
func TestNewWriter_Levels(t *testing.T) {
	tests := []struct {
		c     Coding
		level int
		err   error
	}{
		{Gzip, 0, ErrLevel}, {Gzip, 1, nil}, {Gzip, 9, nil}, {Gzip, 10, ErrLevel},
		{Brotli, -1, ErrLevel}, {Brotli, 0, nil}, {Brotli, 11, nil}, {Brotli, 12, ErrLevel},
		{Zstd, 0, ErrLevel}, {Zstd, 1, nil}, {Zstd, 22, nil}, {Zstd, 23, ErrLevel},
		{0, 1, ErrCoding}, {Zstd + 1, 1, ErrCoding},
	}
	for _, tt := range tests {
		w, err := NewWriter(io.Discard, tt.c, tt.level, -1)
		if !errors.Is(err, tt.err) {
			t.Errorf("NewWriter(%v, %d) error %v, want %v", tt.c, tt.level, err, tt.err)
		}
		if err == nil {
			if err := w.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	}
}

// TestParseCoding checks the names against String.
func TestParseCoding(t *testing.T) {
	for _, c := range Codings {
		got, ok := ParseCoding(c.String())
		if !ok || got != c {
			t.Errorf("ParseCoding(%q) = %v, %v", c.String(), got, ok)
		}
	}
	for _, name := range []string{"", "GZIP", "x-gzip", "deflate", "identity", "brotli"} {
		if _, ok := ParseCoding(name); ok {
			t.Errorf("ParseCoding(%q) accepted", name)
		}
	}
}

// TestWriter_Sizes checks that gzip at nginx's levels (gzip_comp_level 1,
// 6, 9) is within 5% of the bytes zlib makes of the 100 KiB HTML body, and
// logs every coding's size.
func TestWriter_Sizes(t *testing.T) {
	body := htmlBody(t)
	// `head -c 102400 go/doc/go_spec.html | gzip -n -N | wc -c` with
	// Debian bookworm's gzip 1.12 (zlib's deflate) and Go 1.26's spec;
	// zstd(1) 1.5.4 for reference: -1 32,762, -3 30,656.
	zlib := map[int]int{1: 35110, 6: 28429, 9: 28294}
	for _, tt := range []struct {
		c     Coding
		level int
	}{{Gzip, 1}, {Gzip, 6}, {Gzip, 9}, {Brotli, 4}, {Brotli, 6}, {Zstd, 1}, {Zstd, 3}} {
		n := len(encode(t, tt.c, tt.level, body, 32<<10))
		t.Logf("%s-%d: %d bytes (%.1f%% of the body)", tt.c, tt.level, n, 100*float64(n)/float64(len(body)))
		if want, ok := zlib[tt.level]; ok && tt.c == Gzip && float64(n) > 1.05*float64(want) {
			t.Errorf("gzip-%d: %d bytes, over 5%% more than zlib's %d", tt.level, n, want)
		}
	}
}

// BenchmarkEncode compresses the 100 KiB HTML body with each coding at
// several levels, with pooled encoders as the proxy uses them.
func BenchmarkEncode(b *testing.B) {
	body := htmlBody(b)
	for _, tt := range []struct {
		c      Coding
		levels []int
	}{{Gzip, []int{1, 6, 9}}, {Brotli, []int{0, 4, 5, 6, 11}}, {Zstd, []int{1, 3, 6, 10}}} {
		for _, level := range tt.levels {
			b.Run(fmt.Sprintf("%s-%d", tt.c, level), func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				var n int
				for b.Loop() {
					w, err := NewWriter(io.Discard, tt.c, level, int64(len(body)))
					if err != nil {
						b.Fatal(err)
					}
					w.Write(body)
					w.Close()
				}
				n = len(encode(b, tt.c, level, body, len(body)))
				b.ReportMetric(float64(n), "out-bytes")
			})
		}
	}
}
