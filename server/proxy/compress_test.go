package proxy

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/wedgeproxy/wedge/server/internal/compress"
	"github.com/wedgeproxy/wedge/server/internal/message"
	"github.com/wedgeproxy/wedge/server/internal/spool"
)

// TestParseCompressArgs checks wedge_compress_response's arguments.
func TestParseCompressArgs(t *testing.T) {
	tests := []struct {
		args   string
		coding compress.Coding
		level  int
		err    string
	}{
		{args: `{"encoding":"gzip","level":1}`, coding: compress.Gzip, level: 1},
		{args: `{"encoding":"br","level":11}`, coding: compress.Brotli, level: 11},
		{args: `{"encoding":"zstd","level":22}`, coding: compress.Zstd, level: 22},
		{args: `{"encoding":"gzip"}`, coding: compress.Gzip, level: 6},
		{args: `{"encoding":"br"}`, coding: compress.Brotli, level: 5},
		{args: ` {"level":3,"encoding":"zstd"} `, coding: compress.Zstd, level: 3},
		{args: `{"encoding":"deflate"}`, err: "unknown content coding"},
		{args: `{"encoding":"GZIP"}`, err: "unknown content coding"},
		{args: `{"encoding":""}`, err: "unknown content coding"},
		{args: `{}`, err: "unknown content coding"},
		{args: `{"encoding":"gzip","level":0}`, err: "out of range"},
		{args: `{"encoding":"gzip","level":10}`, err: "out of range"},
		{args: `{"encoding":"br","level":-1}`, err: "out of range"},
		{args: `{"encoding":"zstd","level":23}`, err: "out of range"},
		{args: `{"encoding":"gzip","level":1.5}`, err: "decoding arguments"},
		{args: `{"encoding":"gzip","lvl":1}`, err: "unknown field"},
		{args: `{"encoding":"gzip"} {}`, err: "data after"},
		{args: ``, err: "decoding arguments"},
		{args: `[]`, err: "decoding arguments"},
	}
	for _, tt := range tests {
		c, level, err := parseCompressArgs([]byte(tt.args))
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("parseCompressArgs(%s) error %v, want %q", tt.args, err, tt.err)
		case tt.err == "" && (err != nil || c != tt.coding || level != tt.level):
			t.Errorf("parseCompressArgs(%s) = %v, %d, %v; want %v, %d", tt.args, c, level, err, tt.coding, tt.level)
		}
	}
}

// FuzzCompressArgs feeds wedge_compress_response arbitrary guest bytes:
// they either parse into a coding and a level it accepts, or fail.
func FuzzCompressArgs(f *testing.F) {
	for _, s := range []string{`{"encoding":"gzip","level":1}`, `{"encoding":"br"}`, `{"encoding":"zstd","level":99}`, `{`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, args []byte) {
		c, level, err := parseCompressArgs(args)
		if err != nil {
			return
		}
		if err := c.CheckLevel(level); err != nil {
			t.Fatalf("%q parsed into %v level %d: %v", args, c, level, err)
		}
	})
}

// TestLastCoding checks how the coding a response is labelled with is found.
func TestLastCoding(t *testing.T) {
	tests := []struct {
		h    message.Header
		want string
	}{
		{nil, ""},
		{message.Header{{Name: "Content-Encoding", Value: "gzip"}}, "gzip"},
		{message.Header{{Name: "content-encoding", Value: " BR "}}, "br"},
		{message.Header{{Name: "Content-Encoding", Value: "deflate, zstd"}}, "zstd"},
		{message.Header{{Name: "Content-Encoding", Value: "zstd, "}}, "zstd"},
		{message.Header{{Name: "Content-Encoding", Value: "gzip"}, {Name: "Content-Encoding", Value: "br"}}, "br"},
		{message.Header{{Name: "Content-Encoding", Value: "gzip"}, {Name: "Content-Encoding", Value: " , "}}, "gzip"},
	}
	for _, tt := range tests {
		if got := lastCoding(tt.h); got != tt.want {
			t.Errorf("lastCoding(%v) = %q, want %q", tt.h, got, tt.want)
		}
	}
}

// TestEncodeBody compresses bodies held in memory and spilled to a temp
// file, with every coding, and decodes them with the libraries' readers.
func TestEncodeBody(t *testing.T) {
	text := bytes.Repeat([]byte("<tr><td>row</td><td>of a table</td></tr>\n"), 10000) // 410 KB
	for _, memLimit := range []int64{1 << 20, 64 << 10} {
		for _, c := range compress.Codings {
			in := spool.New(spool.Options{MemLimit: memLimit, MaxFile: -1, Dir: t.TempDir()})
			if _, err := in.Write(text); err != nil {
				t.Fatal(err)
			}
			if in.InFile() != (memLimit < int64(len(text))) {
				t.Fatalf("in file: %v", in.InFile())
			}
			out := spool.New(spool.Options{MemLimit: 1 << 20})
			if err := encodeBody(out, in, c, c.DefaultLevel(), nil); err != nil {
				t.Fatalf("%s: %v", c, err)
			}
			z, _ := out.Bytes()
			if got := decodeAll(t, c, z); !bytes.Equal(got, text) {
				t.Errorf("%s (in file %v): decoded %d bytes, want %d", c, in.InFile(), len(got), len(text))
			}
			if len(z) > len(text)/10 {
				t.Errorf("%s: %d bytes compressed to %d", c, len(text), len(z))
			}
			in.Close()
			out.Close()
		}
	}
}

// TestEncodeBody_WriteError checks that a failing destination fails the encoding.
func TestEncodeBody_WriteError(t *testing.T) {
	in := spool.New(spool.Options{MemLimit: 1 << 20})
	in.Write(bytes.Repeat([]byte("x"), 300<<10))
	for _, c := range compress.Codings {
		err := encodeBody(failWriter{}, in, c, c.DefaultLevel(), nil)
		if !errors.Is(err, errDisk) {
			t.Errorf("%s: error %v, want errDisk", c, err)
		}
	}
}

var errDisk = errors.New("disk full")

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errDisk }

func decodeAll(t *testing.T, c compress.Coding, b []byte) []byte {
	t.Helper()
	var r io.Reader
	switch c {
	case compress.Gzip:
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case compress.Brotli:
		r = brotli.NewReader(bytes.NewReader(b))
	case compress.Zstd:
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

// BenchmarkEncodeBody compresses a 100 KiB HTML-like body held in memory
// and in a temp file, as wedge_compress_response does after the response
// phases.
func BenchmarkEncodeBody(b *testing.B) {
	text := bytes.Repeat([]byte("<tr><td>1</td><td><a href=\"/items/7\">item 1</a></td><td>37.01 EUR</td></tr>\n"), 1400)[:100<<10]
	for _, where := range []struct {
		name string
		mem  int64
	}{{"memory", 1 << 20}, {"file", 16 << 10}} {
		in := spool.New(spool.Options{MemLimit: where.mem, MaxFile: -1, Dir: b.TempDir()})
		in.Write(text)
		for _, c := range compress.Codings {
			b.Run(where.name+"/"+c.String(), func(b *testing.B) {
				b.SetBytes(int64(len(text)))
				b.ReportAllocs()
				var secs []message.Section
				for b.Loop() {
					out := spool.New(spool.Options{MemLimit: 1 << 20})
					if err := encodeBody(out, in, c, c.DefaultLevel(), secs[:0]); err != nil {
						b.Fatal(err)
					}
					out.Close()
				}
			})
		}
		in.Close()
	}
}
