package http1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Chunked body limits.
const (
	// DefaultMaxTrailer is the trailer section limit, in bytes, when
	// ChunkedReader.Reset gets zero.
	DefaultMaxTrailer = 16 << 10
	// maxChunkLine bounds a chunk-size line with its extensions, in bytes.
	maxChunkLine = 4 << 10
	// Overhead allowance: each chunk may carry chunkFreeOverhead bytes of
	// framing plus twice its data size before the excess counts; more than
	// maxChunkExcess bytes of excess (long extensions on tiny chunks) fail.
	chunkFreeOverhead = 32
	maxChunkExcess    = 16 << 10
)

var (
	errChunkSize       = &Error{Status: 400, Reason: "invalid chunk size"}
	errChunkTooLarge   = &Error{Status: 400, Reason: "chunk size too large"}
	errChunkExt        = &Error{Status: 400, Reason: "invalid chunk extension"}
	errChunkLine       = &Error{Status: 400, Reason: "chunk line too long"}
	errChunkCRLF       = &Error{Status: 400, Reason: "missing CRLF after chunk data"}
	errChunkOverhead   = &Error{Status: 400, Reason: "too much chunk framing for the data"}
	errTrailerLine     = &Error{Status: 400, Reason: "invalid trailer field line"}
	errTrailerTooLarge = &Error{Status: 431, Reason: "trailer section too large"}
)

// Reader states.
const (
	crSize    = iota // before a chunk-size line
	crData           // inside chunk data, remaining > 0
	crDataEnd        // after chunk data, before its CRLF
	crTrailer        // after the last chunk, inside the trailer section
	crDone           // after the final CRLF
)

// ChunkedReader decodes a body in the chunked transfer coding (RFC 9112
// §7.1) from a bufio.Reader, returning only the chunk data. Chunk
// extensions are checked against the grammar and discarded; trailer fields
// are checked and discarded, up to a bounded size. Line ends must be CRLF:
// a bare LF or CR inside the framing is malformed, since parsers that
// disagree on it are a request smuggling vector.
//
// Read returns io.EOF after the last chunk and its trailer section, with
// br positioned just after the body; io.ErrUnexpectedEOF if the stream
// ends before; an *Error (status 400, or 431 for a trailer section over
// its limit) for malformed framing, a chunk size over 2^63-1, or chunks
// that carry much more framing than data; read errors of br as they are.
// Errors are sticky.
//
// The zero value is unusable; call Reset first. A ChunkedReader can be
// reused for another body by calling Reset again.
type ChunkedReader struct {
	br         *bufio.Reader
	maxTrailer int
	state      uint8
	remaining  int64 // data bytes left in the current chunk
	excess     int64 // framing overhead beyond the allowance
	trailer    int   // trailer section bytes read
	err        error
}

// Reset makes r read a new chunked body from br, allowing a trailer
// section of up to maxTrailer bytes (DefaultMaxTrailer if zero or less).
func (r *ChunkedReader) Reset(br *bufio.Reader, maxTrailer int) {
	if maxTrailer <= 0 {
		maxTrailer = DefaultMaxTrailer
	}
	*r = ChunkedReader{br: br, maxTrailer: maxTrailer}
}

// Read reads chunk data into p. Once it has data it does not block for
// more framing: it continues into the next chunk only when that chunk's
// size line is already buffered.
func (r *ChunkedReader) Read(p []byte) (n int, err error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.br == nil {
		return 0, errors.New("reading chunked body: reader not Reset")
	}
	for n < len(p) {
		switch r.state {
		case crSize:
			if n > 0 && !r.lineBuffered(0) {
				return n, nil
			}
			if err := r.readSizeLine(); err != nil {
				return n, r.fail(err)
			}
		case crData:
			m := len(p) - n
			if int64(m) > r.remaining {
				m = int(r.remaining)
			}
			k, err := r.br.Read(p[n : n+m])
			n += k
			r.remaining -= int64(k)
			if r.remaining == 0 {
				r.state = crDataEnd
			}
			if err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return n, r.fail(err)
			}
			if k < m {
				return n, nil // no more data buffered
			}
		case crDataEnd:
			if n > 0 && !r.lineBuffered(0) {
				return n, nil
			}
			if err := r.readCRLF(); err != nil {
				return n, r.fail(err)
			}
			r.state = crSize
			// Look past the CRLF: continue only if the next size line is
			// buffered too.
			if n > 0 && !r.lineBuffered(0) {
				return n, nil
			}
		case crTrailer:
			if n > 0 && !r.lineBuffered(0) {
				return n, nil
			}
			if err := r.readTrailerLine(); err != nil {
				return n, r.fail(err)
			}
		case crDone:
			r.err = io.EOF
			if n > 0 {
				return n, nil
			}
			return 0, io.EOF
		}
	}
	if r.state == crDone && n == 0 {
		r.err = io.EOF
		return 0, io.EOF
	}
	return n, nil
}

// fail records a sticky error.
func (r *ChunkedReader) fail(err error) error {
	r.err = err
	return err
}

// lineBuffered reports whether br holds a whole line after skipping skip
// bytes, so reading it cannot block.
func (r *ChunkedReader) lineBuffered(skip int) bool {
	b, _ := r.br.Peek(r.br.Buffered())
	return len(b) > skip && bytes.IndexByte(b[skip:], '\n') >= 0
}

// readErr maps a read error inside the framing.
func readErr(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readCRLF reads the CRLF that ends chunk data.
func (r *ChunkedReader) readCRLF() error {
	c, err := r.br.ReadByte()
	if err != nil {
		return readErr(err)
	}
	if c != '\r' {
		return errChunkCRLF
	}
	if c, err = r.br.ReadByte(); err != nil {
		return readErr(err)
	}
	if c != '\n' {
		return errChunkCRLF
	}
	return nil
}

// Size-line states, following RFC 9112 §7.1.1:
//
//	chunk-size [ chunk-ext ] CRLF
//	chunk-ext     = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//	chunk-ext-val = token / quoted-string
const (
	lsSize      = iota // in chunk-size
	lsSizeWS           // BWS after chunk-size, before ";"
	lsPreName          // after ";", BWS before the name
	lsName             // in chunk-ext-name
	lsPostName         // BWS after the name, before "=" or ";"
	lsPreVal           // after "=", BWS before the value
	lsToken            // in a token value
	lsQuoted           // in a quoted-string value
	lsQuotedEsc        // after a backslash in a quoted-string
	lsPostVal          // after a value, BWS before the next ";"
	lsCR               // after CR, LF expected
	lsDone
)

// readSizeLine reads one chunk-size line, sets the next state and, for the
// last chunk, moves on to the trailer section.
func (r *ChunkedReader) readSizeLine() error {
	var (
		st     = lsSize
		size   int64
		digits int
		total  int
	)
	for st != lsDone {
		frag, err := r.br.ReadSlice('\n')
		total += len(frag)
		tooLong := total > maxChunkLine
		if tooLong {
			// Check the bytes within the limit first, so the error does
			// not depend on how the line was buffered.
			frag = frag[:len(frag)-(total-maxChunkLine)]
		}
		for _, c := range frag {
			switch st {
			case lsSize:
				switch {
				case charClass[c]&cHex != 0:
					if size >= 1<<59 { // size<<4 would pass 2^63-1
						return errChunkTooLarge
					}
					size = size<<4 | int64(unhex(c))
					digits++
					continue
				case digits == 0:
					return errChunkSize
				case c == ' ' || c == '\t':
					st = lsSizeWS
				case c == ';':
					st = lsPreName
				case c == '\r':
					st = lsCR
				default:
					return errChunkSize
				}
			case lsSizeWS:
				switch c {
				case ' ', '\t':
				case ';':
					st = lsPreName
				default:
					return errChunkSize // no trailing whitespace without an extension
				}
			case lsPreName:
				switch {
				case c == ' ' || c == '\t':
				case charClass[c]&cToken != 0:
					st = lsName
				default:
					return errChunkExt
				}
			case lsName:
				switch {
				case charClass[c]&cToken != 0:
				case c == ' ' || c == '\t':
					st = lsPostName
				case c == '=':
					st = lsPreVal
				case c == ';':
					st = lsPreName
				case c == '\r':
					st = lsCR
				default:
					return errChunkExt
				}
			case lsPostName:
				switch c {
				case ' ', '\t':
				case '=':
					st = lsPreVal
				case ';':
					st = lsPreName
				default:
					return errChunkExt
				}
			case lsPreVal:
				switch {
				case c == ' ' || c == '\t':
				case c == '"':
					st = lsQuoted
				case charClass[c]&cToken != 0:
					st = lsToken
				default:
					return errChunkExt
				}
			case lsToken:
				switch {
				case charClass[c]&cToken != 0:
				case c == ' ' || c == '\t':
					st = lsPostVal
				case c == ';':
					st = lsPreName
				case c == '\r':
					st = lsCR
				default:
					return errChunkExt
				}
			case lsQuoted:
				// qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
				switch {
				case c == '"':
					st = lsPostVal
				case c == '\\':
					st = lsQuotedEsc
				case charClass[c]&cValue == 0:
					return errChunkExt
				}
			case lsQuotedEsc:
				if charClass[c]&cValue == 0 {
					return errChunkExt
				}
				st = lsQuoted
			case lsPostVal:
				switch c {
				case ' ', '\t':
				case ';':
					st = lsPreName
				case '\r':
					st = lsCR
				default:
					return errChunkExt
				}
			case lsCR:
				if c != '\n' {
					return errChunkSize
				}
				st = lsDone
			}
		}
		if tooLong {
			return errChunkLine
		}
		if err != nil && err != bufio.ErrBufferFull {
			return readErr(err)
		}
		if st != lsDone && err == nil {
			return errChunkSize // a LF that did not follow a CR
		}
	}
	// Overhead accounting: the size line plus the CRLF after the data.
	r.excess += int64(total) + 2 - chunkFreeOverhead - 2*size
	if r.excess < 0 {
		r.excess = 0
	} else if r.excess > maxChunkExcess {
		return errChunkOverhead
	}
	if size == 0 {
		r.state = crTrailer
		return nil
	}
	r.remaining = size
	r.state = crData
	return nil
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// Trailer-line states: field-name ":" OWS field-value OWS CRLF, or the
// final CRLF (RFC 9112 §7.1.2).
const (
	tsStart = iota // first byte of the line
	tsName         // in field-name
	tsValue        // after ":", in the value
	tsCR           // after CR, LF expected, then another field
	tsEndCR        // CR of the final empty line, LF expected
	tsField        // a field line was read
	tsEnd          // the final CRLF was read
)

// readTrailerLine reads and discards one trailer field line, or the final
// CRLF, after which the body is done.
func (r *ChunkedReader) readTrailerLine() error {
	st := tsStart
	for st != tsField && st != tsEnd {
		frag, err := r.br.ReadSlice('\n')
		r.trailer += len(frag)
		tooLarge := r.trailer > r.maxTrailer
		if tooLarge {
			frag = frag[:len(frag)-(r.trailer-r.maxTrailer)]
		}
		for _, c := range frag {
			switch st {
			case tsStart:
				switch {
				case c == '\r':
					st = tsEndCR
				case charClass[c]&cToken != 0:
					st = tsName
				default:
					return errTrailerLine // includes obs-fold and bare LF
				}
			case tsName:
				switch {
				case c == ':':
					st = tsValue
				case charClass[c]&cToken == 0:
					return errTrailerLine
				}
			case tsValue:
				switch {
				case c == '\r':
					st = tsCR
				case charClass[c]&cValue == 0:
					return errTrailerLine
				}
			case tsCR, tsEndCR:
				if c != '\n' {
					return errTrailerLine
				}
				if st == tsCR {
					st = tsField
				} else {
					st = tsEnd
				}
			}
		}
		if tooLarge {
			return errTrailerTooLarge
		}
		if err != nil && err != bufio.ErrBufferFull {
			return readErr(err)
		}
		if err == nil && st != tsField && st != tsEnd {
			return errTrailerLine
		}
	}
	if st == tsEnd {
		r.state = crDone
	}
	return nil
}

// ChunkedWriter writes a body in the chunked transfer coding (RFC 9112
// §7.1): each non-empty Write is one chunk, Close writes the last chunk
// and an empty trailer section. Each chunk is three writes to the
// underlying writer (size line, data, CRLF), so give it a buffered one.
// The zero value is unusable; use NewChunkedWriter or Reset.
type ChunkedWriter struct {
	w      io.Writer
	closed bool
	line   [18]byte // 16 hex digits and CRLF
}

// NewChunkedWriter returns a ChunkedWriter that writes to w.
func NewChunkedWriter(w io.Writer) *ChunkedWriter {
	return &ChunkedWriter{w: w}
}

// Reset makes cw write a new body to w.
func (cw *ChunkedWriter) Reset(w io.Writer) {
	cw.w = w
	cw.closed = false
}

var (
	crlf          = []byte("\r\n")
	lastChunk     = []byte("0\r\n\r\n")
	errWriterDone = errors.New("writing chunk: writer closed")
)

// Write writes p as one chunk and returns how many bytes of p were written.
// An empty p writes nothing (a zero-size chunk would end the body). Errors
// of the underlying writer are wrapped ("writing chunk: %w").
func (cw *ChunkedWriter) Write(p []byte) (int, error) {
	if cw.closed {
		return 0, errWriterDone
	}
	if len(p) == 0 {
		return 0, nil
	}
	line := strconv.AppendUint(cw.line[:0], uint64(len(p)), 16)
	line = append(line, '\r', '\n')
	if _, err := cw.w.Write(line); err != nil {
		return 0, fmt.Errorf("writing chunk: %w", err)
	}
	n, err := cw.w.Write(p)
	if err != nil {
		return n, fmt.Errorf("writing chunk: %w", err)
	}
	if _, err := cw.w.Write(crlf); err != nil {
		return n, fmt.Errorf("writing chunk: %w", err)
	}
	return n, nil
}

// Close writes the last chunk and the end of the body ("0\r\n\r\n"). It
// does not close the underlying writer. Writes after Close fail.
func (cw *ChunkedWriter) Close() error {
	if cw.closed {
		return nil
	}
	cw.closed = true
	if _, err := cw.w.Write(lastChunk); err != nil {
		return fmt.Errorf("writing last chunk: %w", err)
	}
	return nil
}
