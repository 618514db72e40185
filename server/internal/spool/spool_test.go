package spool

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"testing/iotest"

	"github.com/wedgeproxy/wedge/server/internal/message"
)

// pattern returns n bytes that differ at every offset modulo 251, so a
// misplaced chunk shows.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// noTempFiles fails t if dir holds any entry: temp files are unlinked at
// creation.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left in temp dir: %s", e.Name())
	}
}

// readAll returns the spool's body through Bytes.
func readAll(t *testing.T, s *Spool) []byte {
	t.Helper()
	b, err := s.Bytes()
	if err != nil {
		t.Fatalf("Bytes: %v", err)
	}
	return b
}

func TestSpool_Write(t *testing.T) {
	tests := []struct {
		name     string
		opt      Options
		writes   []int // sizes of successive writes
		wantFile bool
		wantErr  error // of the last write
		wantLen  int64
	}{
		{name: "empty", opt: Options{MemLimit: 100}, writes: nil, wantLen: 0},
		{name: "memory only", opt: Options{MemLimit: 100}, writes: []int{10, 20, 30}, wantLen: 60},
		{name: "exactly the memory limit", opt: Options{MemLimit: 100, MaxFile: -1}, writes: []int{60, 40}, wantLen: 100},
		{name: "one past the memory limit spills", opt: Options{MemLimit: 100, MaxFile: -1}, writes: []int{60, 41}, wantFile: true, wantLen: 101},
		{name: "several chunks in memory", opt: Options{MemLimit: 3 * ChunkSize}, writes: []int{ChunkSize - 1, 2, ChunkSize, ChunkSize - 1}, wantLen: 3 * ChunkSize},
		{name: "spill of several chunks", opt: Options{MemLimit: 2 * ChunkSize, MaxFile: -1}, writes: []int{ChunkSize + 7, ChunkSize, 9}, wantFile: true, wantLen: 2*ChunkSize + 16},
		{name: "zero memory goes to file at once", opt: Options{MemLimit: 0, MaxFile: -1}, writes: []int{1}, wantFile: true, wantLen: 1},
		{name: "no temp file allowed", opt: Options{MemLimit: 100, MaxFile: 0}, writes: []int{100, 1}, wantErr: ErrTooLarge, wantLen: 100},
		{name: "file limit reached exactly", opt: Options{MemLimit: 10, MaxFile: 50}, writes: []int{10, 40}, wantFile: true, wantLen: 50},
		{name: "file limit passed", opt: Options{MemLimit: 10, MaxFile: 50}, writes: []int{10, 40, 1}, wantFile: true, wantErr: ErrTooLarge, wantLen: 50},
		{name: "spill refused when memory already past file limit", opt: Options{MemLimit: 100, MaxFile: 50}, writes: []int{80, 30}, wantErr: ErrTooLarge, wantLen: 80},
		{name: "zero-length writes", opt: Options{MemLimit: 0, MaxFile: 0}, writes: []int{0, 0}, wantLen: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.opt.Dir = dir
			s := New(tt.opt)
			defer s.Close()
			var want []byte
			var err error
			off := 0
			for i, n := range tt.writes {
				p := pattern(off + n)[off:]
				var m int
				m, err = s.Write(p)
				if err == nil {
					if m != n {
						t.Fatalf("write %d: wrote %d of %d", i, m, n)
					}
					want = append(want, p...)
					off += n
				} else if i != len(tt.writes)-1 {
					t.Fatalf("write %d: %v", i, err)
				} else if m != 0 {
					t.Fatalf("failed write %d wrote %d bytes", i, m)
				}
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("last write: err %v, want %v", err, tt.wantErr)
			}
			if s.InFile() != tt.wantFile {
				t.Errorf("InFile = %v, want %v", s.InFile(), tt.wantFile)
			}
			if s.Len() != tt.wantLen {
				t.Errorf("Len = %d, want %d", s.Len(), tt.wantLen)
			}
			if got := readAll(t, s); !bytes.Equal(got, want) {
				t.Errorf("body differs: %d bytes, want %d", len(got), len(want))
			}
			noTempFiles(t, dir)
		})
	}
}

func TestSpool_ReadFrom(t *testing.T) {
	tests := []struct {
		name     string
		opt      Options
		size     int
		reader   func(io.Reader) io.Reader
		wantFile bool
		wantErr  error
		wantLen  int64 // bytes held afterwards; the rest stays unread in the reader
	}{
		{name: "memory only", opt: Options{MemLimit: 1 << 20}, size: 100 << 10, wantLen: 100 << 10},
		{name: "exactly the memory limit", opt: Options{MemLimit: 64 << 10, MaxFile: -1}, size: 64 << 10, wantLen: 64 << 10},
		{name: "exactly the memory limit, one byte reads", opt: Options{MemLimit: 100, MaxFile: -1}, size: 100, reader: iotest.OneByteReader, wantLen: 100},
		{name: "one past the memory limit", opt: Options{MemLimit: 64 << 10, MaxFile: -1}, size: 64<<10 + 1, wantFile: true, wantLen: 64<<10 + 1},
		{name: "half reads", opt: Options{MemLimit: 1000, MaxFile: -1}, size: 5000, reader: iotest.HalfReader, wantFile: true, wantLen: 5000},
		{name: "data with EOF", opt: Options{MemLimit: 1000, MaxFile: -1}, size: 999, reader: iotest.DataErrReader, wantLen: 999},
		{name: "no temp file: stops at the memory limit", opt: Options{MemLimit: 1000, MaxFile: 0}, size: 1500, wantErr: ErrTooLarge, wantLen: 1000},
		{name: "file limit: stops at it", opt: Options{MemLimit: 1000, MaxFile: 100 << 10}, size: 200 << 10, wantFile: true, wantErr: ErrTooLarge, wantLen: 100 << 10},
		{name: "file limit: stops at it, one byte reads", opt: Options{MemLimit: 10, MaxFile: 20}, size: 30, reader: iotest.OneByteReader, wantFile: true, wantErr: ErrTooLarge, wantLen: 20},
		{name: "file limit below memory limit", opt: Options{MemLimit: 1000, MaxFile: 10}, size: 2000, wantErr: ErrTooLarge, wantLen: 1000},
		{name: "file limit reached exactly", opt: Options{MemLimit: 10, MaxFile: 100}, size: 100, reader: iotest.DataErrReader, wantFile: true, wantLen: 100},
		{name: "empty", opt: Options{MemLimit: 10, MaxFile: -1}, size: 0, wantLen: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.opt.Dir = dir
			s := New(tt.opt)
			defer s.Close()
			src := pattern(tt.size)
			var r io.Reader = bytes.NewReader(src)
			br := r.(*bytes.Reader)
			if tt.reader != nil {
				r = tt.reader(r)
			}
			n, err := s.ReadFrom(r)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ReadFrom err = %v, want %v", err, tt.wantErr)
			}
			if n != tt.wantLen || s.Len() != tt.wantLen {
				t.Fatalf("ReadFrom = %d, Len = %d, want %d", n, s.Len(), tt.wantLen)
			}
			if s.InFile() != tt.wantFile {
				t.Errorf("InFile = %v, want %v", s.InFile(), tt.wantFile)
			}
			if got := readAll(t, s); !bytes.Equal(got, src[:tt.wantLen]) {
				t.Errorf("body differs")
			}
			// Nothing past the limit was consumed: the rest is still in the reader.
			if left := int64(br.Len()); left != int64(tt.size)-tt.wantLen {
				t.Errorf("reader has %d bytes left, want %d (bytes were lost)", left, int64(tt.size)-tt.wantLen)
			}
			noTempFiles(t, dir)
		})
	}
}

func TestSpool_ReadFromError(t *testing.T) {
	boom := errors.New("boom")
	for _, memLimit := range []int64{1 << 20, 10} {
		s := New(Options{MemLimit: memLimit, MaxFile: -1, Dir: t.TempDir()})
		n, err := s.ReadFrom(io.MultiReader(bytes.NewReader(pattern(100)), iotest.ErrReader(boom)))
		if !errors.Is(err, boom) || n != 100 || s.Len() != 100 {
			t.Errorf("MemLimit %d: ReadFrom = %d, %v; Len %d", memLimit, n, err, s.Len())
		}
		s.Close()
	}
}

func TestSpool_ReadAt(t *testing.T) {
	const size = 3*ChunkSize + 100
	src := pattern(size)
	for _, tc := range []struct {
		name string
		opt  Options
	}{
		{"memory", Options{MemLimit: size}},
		{"file", Options{MemLimit: 10, MaxFile: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opt.Dir = t.TempDir()
			s := New(tc.opt)
			defer s.Close()
			if _, err := s.Write(src); err != nil {
				t.Fatal(err)
			}
			tests := []struct {
				off, n  int64
				wantN   int
				wantEOF bool
			}{
				{0, 10, 10, false},
				{ChunkSize - 5, 10, 10, false},                           // across a chunk boundary
				{ChunkSize - 1, 2*ChunkSize + 2, 2*ChunkSize + 2, false}, // across three chunks
				{ChunkSize, ChunkSize, ChunkSize, false},                 // exactly one chunk
				{size - 10, 10, 10, false},                               // the tail exactly
				{size - 10, 20, 10, true},                                // past the end
				{0, size, size, false},
				{size, 1, 0, true},
				{size + 5, 1, 0, true},
			}
			for _, tt := range tests {
				p := make([]byte, tt.n)
				n, err := s.ReadAt(p, tt.off)
				if n != tt.wantN || (err == io.EOF) != tt.wantEOF || (err != nil && err != io.EOF) {
					t.Errorf("ReadAt(%d, off %d) = %d, %v; want %d, EOF %v", tt.n, tt.off, n, err, tt.wantN, tt.wantEOF)
					continue
				}
				if n > 0 && !bytes.Equal(p[:n], src[tt.off:tt.off+int64(n)]) {
					t.Errorf("ReadAt(%d, off %d): wrong bytes", tt.n, tt.off)
				}
			}
			if _, err := s.ReadAt(make([]byte, 1), -1); err == nil {
				t.Error("ReadAt at a negative offset did not fail")
			}
			// io.SectionReader over it, as Replace uses
			got, err := io.ReadAll(io.NewSectionReader(s, 7, size-14))
			if err != nil || !bytes.Equal(got, src[7:size-7]) {
				t.Errorf("SectionReader: %d bytes, %v", len(got), err)
			}
		})
	}
}

func TestSpool_Replace(t *testing.T) {
	base := []byte("0123456789")
	tests := []struct {
		name          string
		start, length int64
		data          string
		want          string
		wantErr       bool
	}{
		{name: "prepend", start: 0, length: 0, data: "ab", want: "ab0123456789"},
		{name: "append", start: 10, length: 0, data: "ab", want: "0123456789ab"},
		{name: "middle", start: 3, length: 4, data: "xy", want: "012xy789"},
		{name: "middle grows", start: 3, length: 1, data: "xyz", want: "012xyz456789"},
		{name: "whole", start: 0, length: 10, data: "new", want: "new"},
		{name: "whole, length past the end", start: 0, length: 1 << 40, data: "new", want: "new"},
		{name: "tail, length past the end", start: 8, length: 100, data: "!", want: "01234567!"},
		{name: "delete", start: 2, length: 3, data: "", want: "0156789"},
		{name: "start past the end", start: 11, length: 0, data: "x", wantErr: true},
		{name: "negative start", start: -1, length: 0, data: "x", wantErr: true},
		{name: "negative length", start: 0, length: -1, data: "x", wantErr: true},
	}
	for _, where := range []struct {
		name string
		opt  Options
	}{
		{"memory", Options{MemLimit: 1 << 10}},
		{"file", Options{MemLimit: 4, MaxFile: -1}},
	} {
		for _, tt := range tests {
			t.Run(where.name+"/"+tt.name, func(t *testing.T) {
				dir := t.TempDir()
				opt := where.opt
				opt.Dir = dir
				s := New(opt)
				defer s.Close()
				s.Write(base)
				err := s.Replace(tt.start, tt.length, []byte(tt.data))
				if tt.wantErr {
					if err == nil {
						t.Fatal("no error")
					}
					if got := readAll(t, s); string(got) != string(base) {
						t.Errorf("a refused Replace changed the body to %q", got)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if got := readAll(t, s); string(got) != tt.want {
					t.Errorf("body = %q, want %q", got, tt.want)
				}
				if s.Len() != int64(len(tt.want)) {
					t.Errorf("Len = %d, want %d", s.Len(), len(tt.want))
				}
				noTempFiles(t, dir)
			})
		}
	}
	t.Run("large across chunks", func(t *testing.T) {
		src := pattern(3 * ChunkSize)
		s := New(Options{MemLimit: 1 << 20, Dir: t.TempDir()})
		defer s.Close()
		s.Write(src)
		mid := bytes.Repeat([]byte{0xff}, ChunkSize+3)
		if err := s.Replace(ChunkSize-2, ChunkSize, mid); err != nil {
			t.Fatal(err)
		}
		want := append(append(append([]byte(nil), src[:ChunkSize-2]...), mid...), src[2*ChunkSize-2:]...)
		if got := readAll(t, s); !bytes.Equal(got, want) {
			t.Error("body differs")
		}
	})
	t.Run("past the limit", func(t *testing.T) {
		s := New(Options{MemLimit: 8, MaxFile: 0})
		defer s.Close()
		s.Write([]byte("12345678"))
		if err := s.Replace(8, 0, []byte("9")); !errors.Is(err, ErrTooLarge) {
			t.Errorf("err = %v, want ErrTooLarge", err)
		}
	})
}

func TestSpool_Sections(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		src := pattern(2*ChunkSize + 5)
		s := New(Options{MemLimit: 1 << 20})
		defer s.Close()
		s.Write(src)
		secs := s.Sections(nil)
		if len(secs) != 3 {
			t.Fatalf("%d sections, want 3", len(secs))
		}
		var got []byte
		for _, sec := range secs {
			if sec.File != nil {
				t.Fatal("a file section for a memory body")
			}
			got = append(got, sec.Data...)
		}
		if !bytes.Equal(got, src) {
			t.Error("sections differ from the body")
		}
		if bufs := s.Buffers(); len(bufs) != 3 || len(bufs[2]) != 5 {
			t.Errorf("Buffers = %d slices", len(bufs))
		}
		if f, ok := s.File(); ok || f != nil {
			t.Error("File() reported a file for a memory body")
		}
	})
	t.Run("file", func(t *testing.T) {
		src := pattern(100 << 10)
		s := New(Options{MemLimit: 1 << 10, MaxFile: -1, Dir: t.TempDir()})
		defer s.Close()
		s.Write(src)
		pre := []message.Section{{Data: []byte("head")}}
		secs := s.Sections(pre)
		if len(secs) != 2 || secs[1].File == nil || secs[1].Offset != 0 || secs[1].Length != int64(len(src)) {
			t.Fatalf("sections = %+v", secs)
		}
		got := make([]byte, len(src))
		if _, err := secs[1].File.ReadAt(got, 0); err != nil || !bytes.Equal(got, src) {
			t.Errorf("file section differs: %v", err)
		}
		if s.Buffers() != nil {
			t.Error("Buffers not nil for a file body")
		}
		if f, ok := s.File(); !ok || f != secs[1].File {
			t.Error("File() disagrees with Sections")
		}
	})
	t.Run("empty", func(t *testing.T) {
		s := New(Options{})
		if secs := s.Sections(nil); len(secs) != 0 {
			t.Errorf("empty spool has %d sections", len(secs))
		}
	})
}

func TestSpool_Reset(t *testing.T) {
	dir := t.TempDir()
	s := New(Options{MemLimit: 10, MaxFile: -1, Dir: dir})
	s.Write(pattern(100))
	f, _ := s.File()
	s.Reset(Options{MemLimit: 1 << 10})
	if s.Len() != 0 || s.InFile() {
		t.Fatal("Reset left the old body")
	}
	if _, err := f.Stat(); err == nil {
		t.Error("the old temp file is still open after Reset")
	}
	s.Write([]byte("again"))
	if got := readAll(t, s); string(got) != "again" {
		t.Errorf("after Reset: %q", got)
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestSpool_Unlinked checks that a spilled body leaves no name in Dir at
// any moment: the file is removed the moment it is created.
func TestSpool_Unlinked(t *testing.T) {
	dir := t.TempDir()
	var spools []*Spool
	for i := range 5 {
		s := New(Options{MemLimit: 16, MaxFile: -1, Dir: dir})
		s.Write(pattern(1000 + i))
		if !s.InFile() {
			t.Fatal("did not spill")
		}
		spools = append(spools, s)
	}
	noTempFiles(t, dir) // while the files are open
	for _, s := range spools {
		f, _ := s.File()
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if nlink := linkCount(st); nlink > 0 {
			t.Errorf("temp file has %d links", nlink)
		}
		s.Close()
	}
	noTempFiles(t, dir)
}

func TestSpool_BadDir(t *testing.T) {
	s := New(Options{MemLimit: 1, MaxFile: -1, Dir: "/nonexistent/wedge-spool-test"})
	defer s.Close()
	if _, err := s.Write([]byte("ab")); err == nil {
		t.Fatal("spilling into a missing directory did not fail")
	}
	if s.InFile() {
		t.Error("InFile after a failed spill")
	}
}

// FuzzSpool writes random pieces under random limits and checks that
// ReadAt and Bytes give back exactly what was accepted.
func FuzzSpool(f *testing.F) {
	f.Add(uint64(1), uint16(100), int32(-1), []byte{10, 200, 3})
	f.Add(uint64(2), uint16(0), int32(0), []byte{1})
	f.Add(uint64(3), uint16(5), int32(40), []byte{7, 7, 7, 7, 7, 7, 7})
	f.Add(uint64(4), uint16(65535), int32(70000), []byte{255, 255, 255, 255})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, seed uint64, memLimit uint16, maxFile int32, sizes []byte) {
		if maxFile < -1 {
			maxFile = -1
		}
		rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		s := New(Options{MemLimit: int64(memLimit), MaxFile: int64(maxFile), Dir: dir})
		defer s.Close()
		if len(sizes) > 32 {
			sizes = sizes[:32]
		}
		var want []byte
		for i, sz := range sizes {
			n := int(sz) * (1 + rng.IntN(256)) // up to ~64 KiB a piece, 2 MiB in all
			p := make([]byte, n)
			for j := 0; j < n; j += 8 {
				v := rng.Uint64()
				for k := j; k < min(j+8, n); k++ {
					p[k] = byte(v)
					v >>= 8
				}
			}
			var err error
			if i%2 == 0 {
				_, err = s.Write(p)
				if err == nil {
					want = append(want, p...)
				}
			} else {
				r := bytes.NewReader(p)
				var m int64
				m, err = s.ReadFrom(r)
				want = append(want, p[:m]...)
				if err == nil && r.Len() != 0 {
					t.Fatalf("ReadFrom returned nil with %d bytes unread", r.Len())
				}
			}
			if err != nil && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("piece %d: %v", i, err)
			}
			if s.Len() != int64(len(want)) {
				t.Fatalf("piece %d: Len %d, accepted %d", i, s.Len(), len(want))
			}
		}
		got, err := s.Bytes()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("Bytes differ (%d vs %d bytes): %v", len(got), len(want), err)
		}
		for range 8 {
			if len(want) == 0 {
				break
			}
			off := rng.IntN(len(want))
			n := rng.IntN(len(want)-off+10) + 1
			p := make([]byte, n)
			m, err := s.ReadAt(p, int64(off))
			if m != min(n, len(want)-off) || !bytes.Equal(p[:m], want[off:off+m]) {
				t.Fatalf("ReadAt(%d, %d) = %d, %v", n, off, m, err)
			}
			if (m < n) != (err == io.EOF) {
				t.Fatalf("ReadAt(%d, %d): err %v with %d bytes", n, off, err, m)
			}
		}
		var total int64
		for _, sec := range s.Sections(nil) {
			total += sec.Len()
		}
		if total != s.Len() {
			t.Fatalf("sections hold %d bytes, Len %d", total, s.Len())
		}
	})
}

func BenchmarkReadFrom(b *testing.B) {
	for _, size := range []int{1 << 10, 100 << 10, 1 << 20} {
		src := pattern(size)
		b.Run(byteSize(size), func(b *testing.B) {
			dir := b.TempDir()
			var s Spool
			r := bytes.NewReader(src)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(src)
				// proxy defaults: 256 KiB in memory, then a temp file
				s.Reset(Options{MemLimit: 256 << 10, MaxFile: -1, Dir: dir})
				if _, err := s.ReadFrom(r); err != nil {
					b.Fatal(err)
				}
			}
			s.Close()
		})
	}
}

func byteSize(n int) string {
	switch {
	case n >= 1<<20:
		return strconv.Itoa(n>>20) + "MiB"
	case n >= 1<<10:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
