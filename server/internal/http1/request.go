package http1

import (
	"bufio"
	"strings"

	"github.com/wedgeproxy/wedge/server/internal/message"
)

// Request errors that have no exported sentinel; each is a 400.
var (
	errRequestLineTooLong = &Error{Status: 400, Reason: "request line too long"}
	errRequestLine        = &Error{Status: 400, Reason: "malformed request line"}
	errMethod             = &Error{Status: 400, Reason: "invalid method"}
	errVersion            = &Error{Status: 400, Reason: "malformed http version"}
	errTarget             = &Error{Status: 400, Reason: "invalid request-target"}
	errAsterisk           = &Error{Status: 400, Reason: "asterisk-form target without OPTIONS"}
	errObsFold            = &Error{Status: 400, Reason: "obsolete line folding"}
	errFieldLine          = &Error{Status: 400, Reason: "malformed field line"}
	errFieldName          = &Error{Status: 400, Reason: "invalid field name"}
	errFieldValue         = &Error{Status: 400, Reason: "invalid field value"}
	errDuplicateHost      = &Error{Status: 400, Reason: "repeated host"}
	errHost               = &Error{Status: 400, Reason: "invalid host"}
	errContentLength      = &Error{Status: 400, Reason: "invalid content-length"}
	errDuplicateLength    = &Error{Status: 400, Reason: "repeated content-length"}
	errLengthAndEncoding  = &Error{Status: 400, Reason: "transfer-encoding with content-length"}
	errTransferEncoding   = &Error{Status: 400, Reason: "invalid transfer-encoding"}
	errEncodingHTTP10     = &Error{Status: 400, Reason: "transfer-encoding in http/1.0"}
)

// ReadRequest reads one request head from br into req (RFC 9112 §2-§6) and
// returns how its body is framed: NoBody, Length (req.ContentLength bytes,
// possibly 0) or Chunked (req.ContentLength -1).
//
// It sets Method, Target (always origin-form "/path?query", or "*" for
// OPTIONS), Host, Proto ("HTTP/1.1" or "HTTP/1.0"), Header and
// ContentLength; Scheme is left to the caller. Header reuses req.Header's
// capacity and never holds the Host field. An absolute-form target is
// reduced to origin-form and its authority replaces Host (RFC 9112 §3.2.2).
// All strings are substrings of one string made for the whole head.
//
// Errors:
//   - io.EOF: the connection closed before the first byte of a request
//     (empty lines aside): a clean keep-alive close.
//   - io.ErrUnexpectedEOF: it closed in the middle of the head.
//   - a read error (a net.Error timeout) before the first byte, as it is;
//     after it, wrapped with ErrIncompleteHead.
//   - *Error: the request is malformed or refused; answer Status and close.
//     414 (ErrURITooLong), 431 (ErrHeadTooLarge), 501
//     (ErrConnectNotSupported, ErrUnsupportedTransferCoding), 505
//     (ErrVersionNotSupported), 400 for the rest.
//
// Rules, each refused with 400 unless said otherwise: single SPs in the
// request line; a token method; HTTP/1.0 or HTTP/1.1 (another well-formed
// version is 505); an origin-form, absolute-form (http or https, no
// userinfo) or, for OPTIONS, asterisk-form target of visible ASCII without
// "#"; CONNECT is 501; lines end in CRLF or LF, never a bare CR; no CTL
// but HTAB in values; token field names with no whitespace before the
// colon; no obs-fold; exactly one valid Host in HTTP/1.1, at most one in
// HTTP/1.0; at most one Content-Length, 1*DIGIT, no list, at most 2^63-1;
// Transfer-Encoding only in HTTP/1.1, never with Content-Length, chunked
// exactly once and last (other codings before it are 501).
//
// On error req's fields are unspecified.
func ReadRequest(br *bufio.Reader, lim HeadLimits, req *message.Request) (Framing, error) {
	var h head
	if err := h.read(br, lim, false); err != nil {
		return NoBody, err
	}
	f, end, err := parseRequest(h.b, h.s, req)
	h.release(br, end)
	return f, err
}

// parseRequest parses the head that head.read read: b is its bytes, s the
// same as a string. It returns the framing and the end of the head in b.
func parseRequest(b []byte, s string, req *message.Request) (_ Framing, end int, _ error) {
	// Request line (RFC 9112 §3): method SP request-target SP HTTP-version,
	// single spaces only.
	i := scanToken(b, 0)
	if i == 0 || b[i] != ' ' { // RFC 9112 §3.1, RFC 9110 §9.1
		if i > 0 && (b[i] == '\r' || b[i] == '\n') {
			return NoBody, 0, errRequestLine
		}
		return NoBody, 0, errMethod
	}
	method := s[:i]
	ts := i + 1
	i = scanTarget(b, ts)
	if i == ts {
		return NoBody, 0, errRequestLine // empty target: a double SP
	}
	if b[i] != ' ' {
		if b[i] == '\r' || b[i] == '\n' {
			return NoBody, 0, errRequestLine // no version
		}
		return NoBody, 0, errTarget
	}
	target := s[ts:i]
	vs := i + 1
	var proto string
	ve, next, ok := vs+8, 0, false
	if ve < len(b) {
		_, next, ok = lineEnd(b, ve)
	}
	switch {
	case ok && s[vs:ve] == "HTTP/1.1":
		proto = "HTTP/1.1"
	case ok && s[vs:ve] == "HTTP/1.0":
		proto = "HTTP/1.0"
	case ok && s[vs:vs+5] == "HTTP/" && isDigit(b[vs+5]) && b[vs+6] == '.' && isDigit(b[vs+7]):
		// RFC 9112 §2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT.
		return NoBody, 0, ErrVersionNotSupported
	default:
		return NoBody, 0, errVersion
	}
	if method == "CONNECT" {
		return NoBody, 0, ErrConnectNotSupported
	}

	// Request target (RFC 9112 §3.2).
	var absHost string
	switch {
	case target[0] == '/': // origin-form, §3.2.1
	case target == "*": // asterisk-form, §3.2.4
		if method != "OPTIONS" {
			return NoBody, 0, errAsterisk
		}
	default: // absolute-form, §3.2.2; authority-form is CONNECT's only
		var ok bool
		target, absHost, ok = splitAbsolute(target)
		if !ok {
			return NoBody, 0, errTarget
		}
	}

	// Field lines (RFC 9112 §5).
	h := req.Header[:0]
	oldLen := len(req.Header)
	var (
		host      string
		hostCount int
		length    int64
		hasLength bool
		te        teState
	)
	i = next
	for {
		if _, next, ok := lineEnd(b, i); ok {
			end = next // the empty line that ends the head
			break
		}
		ns := i
		i = scanToken(b, i)
		if i == ns || b[i] != ':' {
			switch {
			case i == ns && (b[i] == ' ' || b[i] == '\t'):
				// §5.2: obs-fold; §2.2: whitespace before the first field.
				return NoBody, 0, errObsFold
			case b[i] == '\r' || b[i] == '\n':
				return NoBody, 0, errFieldLine // no colon
			}
			// Includes §5.1: whitespace between name and colon.
			return NoBody, 0, errFieldName
		}
		name := s[ns:i]
		i++
		for b[i] == ' ' || b[i] == '\t' {
			i++
		}
		vs := i
		i = scanValue(b, i)
		ve, next, ok := lineEnd(b, i)
		if !ok { // RFC 9110 §5.5: a CTL, NUL or bare CR
			return NoBody, 0, errFieldValue
		}
		for ve > vs && (b[ve-1] == ' ' || b[ve-1] == '\t') {
			ve--
		}
		value := s[vs:ve]
		i = next
		switch len(name) {
		case len("host"):
			if equalFoldASCII(name, "host") {
				// RFC 9112 §3.2: exactly one Host with a valid value.
				if hostCount++; hostCount > 1 {
					return NoBody, 0, errDuplicateHost
				}
				if !validAuthority(value) {
					return NoBody, 0, errHost
				}
				host = value
				continue // Host lives in req.Host, not in Header
			}
		case len("content-length"):
			if equalFoldASCII(name, "content-length") {
				// RFC 9112 §6.3 item 5: a repeated or invalid
				// Content-Length is unrecoverable in a request.
				if hasLength {
					return NoBody, 0, errDuplicateLength
				}
				n, ok := parseDigits(value)
				if !ok {
					return NoBody, 0, errContentLength
				}
				length, hasLength = n, true
			}
		case len("transfer-encoding"):
			if equalFoldASCII(name, "transfer-encoding") {
				te.add(value)
			}
		}
		h = append(h, message.Field{Name: name, Value: value})
	}
	if len(h) < oldLen {
		clear(req.Header[len(h):oldLen]) // drop references to the old head
	}

	req.Method = method
	req.Target = target
	req.Proto = proto
	req.Header = h
	switch {
	case hostCount == 0 && proto == "HTTP/1.1":
		return NoBody, 0, ErrMissingHost
	case absHost != "":
		req.Host = absHost // §3.2.2: the target's authority wins
	default:
		req.Host = host
	}

	// Framing (RFC 9112 §6.1, §6.3).
	if te.present {
		if proto == "HTTP/1.0" {
			return NoBody, 0, errEncodingHTTP10 // §6.1: faulty framing
		}
		if hasLength {
			return NoBody, 0, errLengthAndEncoding // §6.1, §6.3 item 3
		}
		if err := te.check(); err != nil {
			return NoBody, 0, err
		}
		req.ContentLength = -1
		return Chunked, end, nil
	}
	if hasLength {
		req.ContentLength = length
		return Length, end, nil
	}
	req.ContentLength = 0
	return NoBody, end, nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// splitAbsolute splits an absolute-form target "http://authority/path?q"
// (RFC 9112 §3.2.2) into its origin-form "/path?q" and its authority. The
// scheme must be http or https and the authority non-empty, valid and
// without userinfo (RFC 9110 §4.2.1, §4.2.4).
func splitAbsolute(t string) (origin, authority string, ok bool) {
	var rest string
	switch {
	case len(t) > 7 && strings.EqualFold(t[:7], "http://"):
		rest = t[7:]
	case len(t) > 8 && strings.EqualFold(t[:8], "https://"):
		rest = t[8:]
	default:
		return "", "", false
	}
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	authority, origin = rest[:end], rest[end:]
	if authority == "" || !validAuthority(authority) {
		return "", "", false
	}
	switch {
	case origin == "":
		origin = "/"
	case origin[0] == '?':
		origin = "/" + origin
	}
	return origin, authority, true
}

// teState accumulates the transfer codings of every Transfer-Encoding field
// line, in order (RFC 9112 §6.1, RFC 9110 §5.3).
type teState struct {
	present     bool
	invalid     bool // an element that is not a transfer-coding
	chunked     int  // how many times chunked appears
	other       bool // a coding other than chunked
	lastChunked bool // the final coding is chunked
}

// add takes one field value: a list of transfer-codings, empty elements
// ignored (RFC 9110 §5.6.1).
func (t *teState) add(v string) {
	t.present = true
	for v != "" {
		var elem string
		if i := strings.IndexByte(v, ','); i >= 0 {
			elem, v = v[:i], v[i+1:]
		} else {
			elem, v = v, ""
		}
		elem = trimOWS(elem)
		if elem == "" {
			continue
		}
		name, params := elem, ""
		if i := strings.IndexByte(elem, ';'); i >= 0 {
			name, params = trimOWS(elem[:i]), elem[i:]
		}
		switch {
		case !isToken(name):
			t.invalid = true
			t.lastChunked = false
		case strings.EqualFold(name, "chunked"):
			if params != "" { // chunked takes no parameters (§7.1)
				t.invalid = true
			}
			t.chunked++
			t.lastChunked = true
		default:
			t.other = true
			t.lastChunked = false
		}
	}
}

// check returns the request error for the codings, or nil when they are
// exactly "chunked".
func (t *teState) check() error {
	switch {
	case t.invalid, t.chunked > 1:
		return errTransferEncoding
	case !t.lastChunked:
		// §6.3 item 4: a request whose final coding is not chunked: 400.
		return errTransferEncoding
	case t.other:
		// §6.1: a coding the server does not understand: 501.
		return ErrUnsupportedTransferCoding
	}
	return nil
}
