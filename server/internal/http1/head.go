package http1

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
)

// maxLeadingEmptyLines is how many empty lines may precede a start line;
// RFC 9112 §2.2 asks servers to ignore "at least one".
const maxLeadingEmptyLines = 4

// maxPooledHead is the largest scratch buffer kept for reuse, in bytes.
const maxPooledHead = 64 << 10

// headBufPool holds *[]byte scratch buffers for readHead.
var headBufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 2048)
	return &b
}}

// readHeadString reads one head with readHead and returns it as a string:
// the one allocation of a parse.
func readHeadString(br *bufio.Reader, lim HeadLimits, resp bool) (string, error) {
	bp := headBufPool.Get().(*[]byte)
	buf, err := readHead(br, lim, (*bp)[:0], resp)
	var s string
	if err == nil {
		s = string(buf)
	}
	if cap(buf) <= maxPooledHead {
		*bp = buf[:0]
		headBufPool.Put(bp)
	}
	return s, err
}

// readHead appends one message head to buf: the start line, the field
// lines and the empty line that ends the head, each with the terminator it
// arrived with (CRLF or a bare LF, RFC 9112 §2.2). Empty lines before the
// start line are skipped. It enforces lim and returns, for a line or head
// that is too long, the *Error for the client (resp selects 502s).
//
// Characters are not checked here; the parsers check them on the string.
func readHead(br *bufio.Reader, lim HeadLimits, buf []byte, resp bool) ([]byte, error) {
	maxLine, maxHead := lim.norm()
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
				return buf, lineTooLong(buf[lineStart:], lineStart == 0, resp)
			}
			if len(buf) > maxHead {
				return buf, headTooLarge(resp)
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if len(buf) == 0 {
				// Nothing of a message: a clean close or an idle timeout.
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
			return buf, lineTooLong(line, lineStart == 0, resp)
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

// lineTooLong returns the error for a line over MaxLine; line is what was
// read of it. For a request line whose target is what runs long (a method,
// a space, then no second space) it is ErrURITooLong (RFC 9112 §3).
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

// fail returns the *Error for a malformed message: a shared value for a
// request, a fresh 502 for a response.
func fail(resp bool, status int, reason string) *Error {
	if resp {
		return &Error{Status: 502, Reason: reason}
	}
	return &Error{Status: status, Reason: reason}
}

// nextLine returns the line of head s that starts at i, without its
// terminator (CRLF or LF), and the index of the next line. readHead
// guarantees every line of s ends in LF.
func nextLine(s string, i int) (line string, next int) {
	j := strings.IndexByte(s[i:], '\n')
	line = s[i : i+j]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, i + j + 1
}
