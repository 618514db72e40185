package http1

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"sync"
)

// maxLeadingEmptyLines is how many empty lines may precede a start line;
// RFC 9112 §2.2 asks servers to ignore "at least one".
const maxLeadingEmptyLines = 4

// maxPooledHead is the largest scratch buffer kept for reuse, in bytes.
const maxPooledHead = 64 << 10

// headBufPool holds *[]byte scratch buffers for heads that do not arrive
// whole in br's buffer.
var headBufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 2048)
	return &b
}}

// head is one message head being parsed: its bytes b (in br's buffer or
// in a pooled scratch buffer) and the one string s made from them. The
// parsers scan b and slice s at the same offsets.
type head struct {
	b    []byte
	s    string
	bp   *[]byte // the scratch buffer to give back, or nil
	peek int     // bytes of br that b's head starts after (fast path)
}

// read reads one head from br: the start line, the field lines and the
// empty line that ends the head, each with the terminator it arrived with
// (CRLF or a bare LF, RFC 9112 §2.2). Empty lines before the start line are
// skipped. It enforces lim and returns, for a line or head that is too
// long, the *Error for the client (resp selects 502s).
//
// When the whole head is already in br's buffer it is used there (the
// fast path); otherwise it is read line by line into a scratch buffer.
// Characters are not checked here but by the parsers.
func (h *head) read(br *bufio.Reader, lim HeadLimits, resp bool) error {
	maxLine, maxHead := lim.norm()
	if _, err := br.Peek(1); err != nil {
		return err // nothing of a message: a clean close or an idle timeout
	}
	if b, skip, ok := peekHead(br, maxLine, maxHead); ok {
		h.b, h.peek = b, skip
		h.s = string(b)
		return nil
	}
	h.bp = headBufPool.Get().(*[]byte)
	b, err := readHead(br, maxLine, maxHead, (*h.bp)[:0], resp)
	*h.bp = b[:0]
	if err != nil {
		h.release(br, 0)
		return err
	}
	h.b, h.s = b, string(b)
	return nil
}

// release gives back the scratch buffer or, on the fast path, consumes the
// end bytes of the head that the parser used from br.
func (h *head) release(br *bufio.Reader, end int) {
	if h.bp != nil {
		if cap(*h.bp) <= maxPooledHead {
			headBufPool.Put(h.bp)
		}
		h.bp = nil
		return
	}
	br.Discard(h.peek + end)
}

// peekHead finds a whole head in br's buffer without consuming it. It
// returns the head, from the start line to the CRLF CRLF that ends it, and
// how many leading empty lines' bytes precede it. ok is false when the head
// is not all buffered, does not end in CRLF CRLF, or breaks a limit; the
// slow path then reads it and decides.
//
// The parsers stop at the first empty line, which may come earlier if it
// ends in a bare LF; they report where, and only that much is consumed.
func peekHead(br *bufio.Reader, maxLine, maxHead int) (head []byte, skip int, ok bool) {
	buf, _ := br.Peek(br.Buffered())
	for empties := 0; ; empties++ {
		if len(buf) > skip && buf[skip] == '\n' {
			skip++
		} else if len(buf) > skip+1 && buf[skip] == '\r' && buf[skip+1] == '\n' {
			skip += 2
		} else {
			break
		}
		if empties >= maxLeadingEmptyLines {
			return nil, 0, false
		}
	}
	buf = buf[skip:]
	var n int
	if len(buf) <= maxTailHead && bytes.HasSuffix(buf, crlfcrlf) {
		// The usual case: a request or response alone in the buffer. Take
		// all of it without searching; if it holds more than one head, the
		// parser stops at the first and the rest stays in br.
		n = len(buf)
	} else {
		p := bytes.Index(buf, crlfcrlf)
		if p < 0 {
			return nil, 0, false
		}
		n = p + len(crlfcrlf)
	}
	if n > maxHead {
		return nil, 0, false
	}
	head = buf[:n]
	if n > maxLine {
		for rest := head; len(rest) > 0; {
			j := bytes.IndexByte(rest, '\n')
			if j > maxLine { // j counts the CR of a CRLF
				return nil, 0, false
			}
			rest = rest[j+1:]
		}
	}
	return head, skip, true
}

var crlfcrlf = []byte("\r\n\r\n")

// maxTailHead is the most buffered bytes peekHead takes as a head without
// searching for its end, bounding what a head's string may carry beyond
// the head (a pipelined request, a body ending in CRLF CRLF).
const maxTailHead = 4 << 10

// readHead appends one head to buf reading line by line: the slow path of
// head.read, for heads that arrive in pieces or outgrow br's buffer.
func readHead(br *bufio.Reader, maxLine, maxHead int, buf []byte, resp bool) ([]byte, error) {
	lineStart := 0
	empties := 0
	for {
		// Read one line, in fragments if it is longer than br's buffer.
		for {
			frag, err := br.ReadSlice('\n')
			buf = append(buf, frag...)
			if err == nil {
				break
			}
			// Without its LF the line has at least len-1 content bytes
			// (the last one may be the CR of a CRLF).
			if len(buf)-lineStart-1 > maxLine {
				return buf, lineTooLong(buf[lineStart:lineStart+maxLine+1], lineStart == 0, resp)
			}
			if len(buf) > maxHead {
				return buf, headTooLarge(resp)
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if len(buf) == 0 {
				// Nothing of a message but empty lines: a clean close or
				// an idle timeout.
				return buf, err
			}
			if err == io.EOF {
				return buf, io.ErrUnexpectedEOF
			}
			return buf, fmt.Errorf("%w: %w", ErrIncompleteHead, err)
		}
		line := buf[lineStart : len(buf)-1]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) > maxLine {
			return buf, lineTooLong(line[:maxLine+1], lineStart == 0, resp)
		}
		if len(buf) > maxHead {
			return buf, headTooLarge(resp)
		}
		if len(line) == 1 && line[0] == '\r' {
			// CR CR LF: a bare CR where the head could have ended.
			return buf, fail(resp, 400, "bare CR")
		}
		if len(line) == 0 {
			if lineStart > 0 {
				return buf, nil // the empty line that ends the head
			}
			// RFC 9112 §2.2: ignore empty lines before the start line.
			if empties++; empties > maxLeadingEmptyLines {
				return buf, fail(resp, 400, "too many empty lines before start line")
			}
			buf = buf[:0]
			continue
		}
		lineStart = len(buf)
	}
}

// lineTooLong returns the error for a line over MaxLine; line is its first
// MaxLine+1 bytes, whatever more was buffered.
func lineTooLong(line []byte, first, resp bool) error {
	switch {
	case resp && first:
		return fail(resp, 502, "status line too long")
	case resp:
		return fail(resp, 502, "field line too long")
	case first:
		if targetTooLong(line) {
			return ErrURITooLong
		}
		return errRequestLineTooLong
	default:
		return ErrHeadTooLarge
	}
}

// targetTooLong reports whether the request-target is what makes the
// request line (or the part of it read so far) too long: it is longer than
// the method, and what follows it is no longer than "HTTP/1.1".
func targetTooLong(line []byte) bool {
	i := bytes.IndexByte(line, ' ')
	if i <= 0 {
		return false
	}
	target, version := line[i+1:], []byte(nil)
	if j := bytes.IndexByte(target, ' '); j >= 0 {
		target, version = target[:j], target[j+1:]
	}
	return len(target) > i && len(version) <= len("HTTP/1.1")
}

func headTooLarge(resp bool) error {
	if resp {
		return fail(resp, 502, "response head too large")
	}
	return ErrHeadTooLarge
}

// fail returns the *Error for a malformed message: status for a request,
// 502 for a response.
func fail(resp bool, status int, reason string) *Error {
	if resp {
		return &Error{Status: 502, Reason: reason}
	}
	return &Error{Status: status, Reason: reason}
}

// lineEnd returns the end of the line's content at b[i] (a CR of CRLF or a
// bare LF) and the start of the next line, or ok false if b[i] is neither.
// A head always ends in LF, so b[i+1] exists after a CR.
func lineEnd(b []byte, i int) (end, next int, ok bool) {
	switch b[i] {
	case '\r':
		if b[i+1] == '\n' {
			return i, i + 2, true
		}
	case '\n':
		return i, i + 1, true
	}
	return i, i, false
}
