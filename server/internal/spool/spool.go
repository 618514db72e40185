// Package spool holds a message body while Wedge buffers it: in memory up to
// a limit, then in a temp file. It is what lets the proxy read a whole
// request before the upstream sees a byte, and a whole response before the
// client is written to (nginx client_body_buffer_size / proxy_buffers with
// their temp files).
//
// The temp file is unlinked the moment it is created (as nginx does with its
// client_body_temp and proxy_temp files), so nothing is left on disk even if
// the process dies: the space is freed when the Spool is closed.
package spool

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"sync"

	"github.com/wedgeproxy/wedge/server/internal/message"
)

// ChunkSize is the size of the memory chunks a Spool fills, in bytes.
const ChunkSize = 32 << 10

// ErrTooLarge is returned by writes that would take the spool past MaxFile
// bytes on disk.
var ErrTooLarge = errors.New("spool: body exceeds the temp file limit")

var chunkPool = sync.Pool{New: func() any { b := make([]byte, ChunkSize); return &b }}

// Options bound a Spool. The zero value keeps everything in memory.
type Options struct {
	// MemLimit is the most bytes kept in memory; past it the body moves to
	// a temp file. 0 means no file is used unless MaxFile says otherwise.
	MemLimit int64
	// MaxFile is the most bytes written to the temp file. 0 means no temp
	// file: the spool then holds at most MemLimit bytes and further writes
	// fail with ErrTooLarge. -1 means no limit.
	MaxFile int64
	// Dir is where temp files are created; "" is os.TempDir().
	Dir string
}

// Spool is a write-once, read-many body buffer. The zero value is not
// usable; use New or Reset. A Spool is not safe for concurrent use.
type Spool struct {
	opt    Options
	chunks []*[]byte // memory part, each chunk ChunkSize bytes, the last one filled to n%ChunkSize
	file   *os.File  // once spilled, the whole body lives here
	n      int64
}

// New returns an empty spool bounded by opt.
func New(opt Options) *Spool { return &Spool{opt: opt} }

// Reset empties s and rebinds it to opt, releasing its memory and file.
func (s *Spool) Reset(opt Options) {
	s.Close()
	s.opt = opt
}

// Len returns the body's length in bytes.
func (s *Spool) Len() int64 { return s.n }

// InFile reports whether the body has spilled to a temp file.
func (s *Spool) InFile() bool { return s.file != nil }

// Write appends p. It spills to a temp file when the memory limit is
// passed, and fails with ErrTooLarge past the file limit.
func (s *Spool) Write(p []byte) (int, error) {
	if s.file == nil && s.n+int64(len(p)) > s.opt.MemLimit {
		if err := s.spill(); err != nil {
			return 0, err
		}
	}
	if s.file != nil {
		if s.opt.MaxFile >= 0 && s.n+int64(len(p)) > s.opt.MaxFile {
			return 0, ErrTooLarge
		}
		n, err := s.file.Write(p)
		s.n += int64(n)
		if err != nil {
			return n, fmt.Errorf("writing temp file: %w", err)
		}
		return n, nil
	}
	written := 0
	for len(p) > 0 {
		c := s.tail()
		m := copy(c, p)
		p = p[m:]
		s.n += int64(m)
		written += m
	}
	return written, nil
}

// tail returns the free space of the last chunk, adding a chunk when full.
func (s *Spool) tail() []byte {
	off := int(s.n % ChunkSize)
	if off == 0 && int64(len(s.chunks))*ChunkSize == s.n {
		s.chunks = append(s.chunks, chunkPool.Get().(*[]byte))
	}
	return (*s.chunks[len(s.chunks)-1])[off:]
}

// ReadFrom fills the spool from r until io.EOF, reading straight into its
// chunks (no intermediate copy) while it stays in memory. It returns the
// bytes read and the first error other than io.EOF.
//
// It never reads from r more than the spool can hold, so no byte is lost
// when the limit is reached: once the spool is full (MemLimit bytes with
// MaxFile 0, max(MemLimit, MaxFile) bytes otherwise) and r has not yet
// reported io.EOF, it returns ErrTooLarge and the rest of the body is still
// unread in r, for the caller to relay after the spool's sections (nginx
// relays a response past proxy_max_temp_file_size the same way).
func (s *Spool) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		if s.file != nil || s.n >= s.opt.MemLimit {
			// past the memory limit: Write spills on the first byte that
			// does not fit, so an exactly-full body never creates a file.
			n, err := s.copyVia(r)
			return total + n, err
		}
		c := s.tail()
		if room := s.opt.MemLimit - s.n; room < int64(len(c)) {
			c = c[:room]
		}
		n, err := r.Read(c)
		s.n += int64(n)
		total += int64(n)
		if err == io.EOF {
			s.trimEmptyTail()
			return total, nil
		}
		if err != nil {
			s.trimEmptyTail()
			return total, err
		}
	}
}

func (s *Spool) copyVia(r io.Reader) (int64, error) {
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	var total int64
	for {
		buf := *bp
		if room := s.room(); room <= 0 {
			return total, ErrTooLarge
		} else if room < int64(len(buf)) {
			buf = buf[:room] // read no byte that Write would refuse (and lose)
		}
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := s.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// room returns how many more bytes Write accepts.
func (s *Spool) room() int64 {
	limit := s.opt.MaxFile
	switch {
	case limit < 0:
		return math.MaxInt64
	case limit == 0:
		limit = s.opt.MemLimit
	case s.file == nil:
		limit = max(limit, s.opt.MemLimit)
	}
	return limit - s.n
}

// trimEmptyTail gives back a chunk taken for a read that returned nothing.
func (s *Spool) trimEmptyTail() {
	if len(s.chunks) > 0 && int64(len(s.chunks)-1)*ChunkSize == s.n {
		chunkPool.Put(s.chunks[len(s.chunks)-1])
		s.chunks = s.chunks[:len(s.chunks)-1]
	}
}

func (s *Spool) spill() error {
	if s.opt.MaxFile == 0 {
		return ErrTooLarge
	}
	f, err := os.CreateTemp(s.opt.Dir, "wedge-body-")
	if err != nil {
		return fmt.Errorf("creating temp file: %w", err)
	}
	// Unlinked at once: the data lives until f is closed and never outlives the process.
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return fmt.Errorf("unlinking temp file: %w", err)
	}
	if s.opt.MaxFile > 0 && s.n > s.opt.MaxFile {
		f.Close()
		return ErrTooLarge
	}
	for _, b := range s.memBuffers() {
		if _, err := f.Write(b); err != nil {
			f.Close()
			return fmt.Errorf("writing temp file: %w", err)
		}
	}
	s.releaseChunks()
	s.file = f
	return nil
}

func (s *Spool) releaseChunks() {
	for _, c := range s.chunks {
		chunkPool.Put(c)
	}
	clear(s.chunks)
	s.chunks = s.chunks[:0]
}

// memBuffers returns the memory part as slices of the chunks (no copy).
func (s *Spool) memBuffers() net.Buffers {
	if s.file != nil || s.n == 0 {
		return nil
	}
	bufs := make(net.Buffers, 0, len(s.chunks))
	left := s.n
	for _, c := range s.chunks {
		m := min(left, ChunkSize)
		bufs = append(bufs, (*c)[:m])
		left -= m
	}
	return bufs
}

// Buffers returns the body as memory slices for a vectored write, or nil
// when the body is in a file (or empty). The slices stay valid until the
// spool is written to, reset or closed.
func (s *Spool) Buffers() net.Buffers { return s.memBuffers() }

// File returns the temp file holding the body and true, or nil and false
// when the body is in memory. The caller must not close it.
func (s *Spool) File() (*os.File, bool) { return s.file, s.file != nil }

// ReadAt reads len(p) bytes at off, as io.ReaderAt does.
func (s *Spool) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("spool: negative offset")
	}
	if off >= s.n {
		return 0, io.EOF
	}
	if s.file != nil {
		if max := s.n - off; int64(len(p)) > max {
			p = p[:max]
			n, err := s.file.ReadAt(p, off)
			if err == nil {
				err = io.EOF
			}
			return n, err
		}
		return s.file.ReadAt(p, off)
	}
	n := 0
	for n < len(p) && off < s.n {
		c := *s.chunks[off/ChunkSize]
		i := off % ChunkSize
		end := min(int64(len(c)), i+(s.n-off))
		m := copy(p[n:], c[i:end])
		n += m
		off += int64(m)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Bytes returns a copy of the whole body. Meant for small bodies and tests.
func (s *Spool) Bytes() ([]byte, error) {
	b := make([]byte, s.n)
	_, err := s.ReadAt(b, 0)
	if err == io.EOF {
		err = nil
	}
	return b, err
}

// Replace swaps bytes [start, start+length) for data, as proxy-wasm's
// proxy_set_buffer_bytes does: start == 0 && length >= Len() replaces the
// whole body, start == Len() appends. The new body stays under the same
// limits. It is rare (a plugin rewrote a body), so it rebuilds the spool.
func (s *Spool) Replace(start, length int64, data []byte) error {
	if start < 0 || length < 0 || start > s.n {
		return errors.New("spool: replace range out of bounds")
	}
	end := min(start+length, s.n)
	old := &Spool{}
	*old = *s
	s.chunks, s.file, s.n = nil, nil, 0
	defer old.Close()
	if err := copySection(s, old, 0, start); err != nil {
		return err
	}
	if _, err := s.Write(data); err != nil {
		return err
	}
	return copySection(s, old, end, old.n-end)
}

func copySection(dst *Spool, src *Spool, off, n int64) error {
	if n <= 0 {
		return nil
	}
	_, err := io.Copy(dst, io.NewSectionReader(src, off, n))
	return err
}

// Close releases the memory and closes (and so frees) the temp file. The
// spool is empty afterwards and may be reused through Reset.
func (s *Spool) Close() error {
	s.releaseChunks()
	s.n = 0
	if s.file != nil {
		err := s.file.Close()
		s.file = nil
		return err
	}
	return nil
}

// Sections returns the body as sections to write: the memory chunks, or
// the whole temp file. They stay valid until the spool is written to,
// reset or closed.
func (s *Spool) Sections(dst []message.Section) []message.Section {
	if s.file != nil {
		return append(dst, message.Section{File: s.file, Offset: 0, Length: s.n})
	}
	left := s.n
	for _, c := range s.chunks {
		m := min(left, ChunkSize)
		dst = append(dst, message.Section{Data: (*c)[:m]})
		left -= m
	}
	return dst
}
