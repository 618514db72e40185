// Package compress holds the content codings Wedge applies to response
// bodies for the compress plugin (wedge_compress_response): gzip (RFC 1952,
// github.com/klauspost/compress/gzip), brotli (RFC 7932,
// github.com/andybalholm/brotli) and zstd (RFC 8878,
// github.com/klauspost/compress/zstd), as named in RFC 9110 §8.4.1 and
// the IANA HTTP Content Coding registry ("gzip", "br", "zstd").
//
// Encoders are costly to create (a zstd encoder or a brotli writer holds
// megabytes of tables and window), so each is kept in a sync.Pool per
// coding and level and reset onto the next destination.
package compress

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Coding is a content coding Wedge can apply.
type Coding uint8

// The codings, named as in Content-Encoding.
const (
	Gzip   Coding = iota + 1 // "gzip", levels 1-9 (zlib's; 6 is gzip(1)'s default)
	Brotli                   // "br", quality 0-11
	Zstd                     // "zstd", levels 1-22 (zstd(1)'s scale; see Zstd's levels in Levels)
)

// Codings lists every coding, in Wedge's default order of preference.
var Codings = [...]Coding{Zstd, Brotli, Gzip}

// ParseCoding returns the coding named name ("gzip", "br", "zstd", in
// lower case as Content-Encoding registers them) and true, or 0 and false.
func ParseCoding(name string) (Coding, bool) {
	switch name {
	case "gzip":
		return Gzip, true
	case "br":
		return Brotli, true
	case "zstd":
		return Zstd, true
	}
	return 0, false
}

// String returns the coding's Content-Encoding name.
func (c Coding) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Brotli:
		return "br"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("Coding(%d)", uint8(c))
}

// Levels returns the lowest and highest level c accepts. For Zstd the
// levels are zstd(1)'s 1-22, mapped onto klauspost/compress's four
// encoders as zstd.EncoderLevelFromZstd does: 1-2 fastest, 3-5 default,
// 6-9 better, 10-22 best.
func (c Coding) Levels() (lowest, highest int) {
	switch c {
	case Gzip:
		return 1, 9
	case Brotli:
		return 0, 11
	case Zstd:
		return 1, 22
	}
	return 0, -1
}

// DefaultLevel returns the level used when none is given: gzip 6 (zlib's
// and gzip(1)'s default), brotli 5 (andybalholm/brotli's quality 4 is as
// slow and 6% larger on HTML; 6 and up cost more for little), zstd 3
// (zstd(1)'s default).
func (c Coding) DefaultLevel() int {
	switch c {
	case Gzip:
		return 6
	case Brotli:
		return 5
	case Zstd:
		return 3
	}
	return 0
}

// ErrLevel is returned for a level outside Coding.Levels.
var ErrLevel = errors.New("compression level out of range")

// ErrCoding is returned for a Coding that is not one of Codings.
var ErrCoding = errors.New("unknown content coding")

// CheckLevel returns nil when level is valid for c, else an error
// wrapping ErrCoding or ErrLevel.
func (c Coding) CheckLevel(level int) error {
	lo, hi := c.Levels()
	if hi < lo {
		return fmt.Errorf("checking level: %w: %v", ErrCoding, c)
	}
	if level < lo || level > hi {
		return fmt.Errorf("checking level: %w: %s takes %d to %d, not %d", ErrLevel, c, lo, hi, level)
	}
	return nil
}

// Writer compresses what is written to it into a destination with one
// coding at one level. Get one with NewWriter and Close it exactly once:
// Close ends the compressed stream and returns the encoder to its pool.
type Writer struct {
	pool *sync.Pool
	enc  io.WriteCloser // a *gzip.Writer, *brotli.Writer or *zstd.Encoder
}

// pools holds one pool per coding and level: pools[c][level].
var pools [Zstd + 1][23]sync.Pool

// zstdLevel maps zstd(1)'s levels to klauspost's encoder levels; encoders
// are pooled per encoder level, so levels 3, 4 and 5 share one pool.
func zstdLevel(level int) zstd.EncoderLevel { return zstd.EncoderLevelFromZstd(level) }

// NewWriter returns a Writer compressing into dst with c at level.
// size is the length of what will be written, or -1 when unknown: zstd
// records it in its frame header (RFC 8878 §3.1.1.1.4, so a decoder can
// size its buffer); the others ignore it. It fails with ErrCoding or
// ErrLevel.
func NewWriter(dst io.Writer, c Coding, level int, size int64) (*Writer, error) {
	if err := c.CheckLevel(level); err != nil {
		return nil, fmt.Errorf("creating %s writer: %w", c, err)
	}
	slot := level
	if c == Zstd {
		slot = int(zstdLevel(level))
	}
	p := &pools[c][slot]
	w := &Writer{pool: p}
	if e := p.Get(); e != nil {
		w.enc = e.(io.WriteCloser)
		switch e := e.(type) {
		case *gzip.Writer:
			e.Reset(dst)
		case *brotli.Writer:
			e.Reset(dst)
		case *zstd.Encoder:
			e.ResetContentSize(dst, size)
		}
		return w, nil
	}
	switch c {
	case Gzip:
		g, err := gzip.NewWriterLevel(dst, level)
		if err != nil {
			return nil, fmt.Errorf("creating gzip writer: %w", err)
		}
		w.enc = g
	case Brotli:
		w.enc = brotli.NewWriterLevel(dst, level)
	case Zstd:
		// One goroutine per request (the request's own), and the 8 MiB
		// window RFC 9659 §3 requires of zstd as an HTTP content coding.
		z, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstdLevel(level)),
			zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(8<<20))
		if err != nil {
			return nil, fmt.Errorf("creating zstd writer: %w", err)
		}
		z.ResetContentSize(dst, size)
		w.enc = z
	}
	return w, nil
}

// Write compresses p.
func (w *Writer) Write(p []byte) (int, error) { return w.enc.Write(p) }

// Close writes the end of the compressed stream and pools the encoder.
// The Writer must not be used afterwards.
func (w *Writer) Close() error {
	err := w.enc.Close()
	if err == nil {
		w.pool.Put(w.enc)
	}
	w.enc = nil
	return err
}

// Abandon drops the Writer after a failed write, without finishing the
// stream: an encoder in an unknown state is not pooled. The Writer must
// not be used afterwards.
func (w *Writer) Abandon() { w.enc = nil }
