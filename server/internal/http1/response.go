package http1

import (
	"bufio"
	"strings"

	"github.com/wedgeproxy/wedge/server/internal/message"
)

// ReadResponse reads one response head from br into resp (RFC 9112 §4-§6)
// for a request made with method reqMethod, and returns how its body is
// framed (RFC 9112 §6.3):
//   - NoBody when BodyAllowed(status, reqMethod) is false; ContentLength is
//     then the Content-Length sent (a HEAD response may carry one), or 0.
//   - Chunked when the final transfer coding is chunked; ContentLength -1.
//   - Length with a Content-Length; ContentLength holds it.
//   - UntilClose otherwise; ContentLength -1.
//
// It sets Status, Reason (possibly empty), Proto ("HTTP/1.0", "HTTP/1.1"
// or another "HTTP/1.x" as sent) and Header, reusing resp.Header's
// capacity. A 1xx response is returned like any other; the caller reads
// the next head.
//
// It is lenient where RFC 9112 lets a client be: up to a few empty lines
// before the status line, a missing reason phrase or the SP before it,
// obs-fold (replaced by one SP, §5.2), whitespace between a field name and
// its colon (removed, §5.1). It is strict about framing: an invalid or
// differing Content-Length, Transfer-Encoding with Content-Length or in an
// HTTP/1.0 response, a transfer coding other than chunked, all fail.
// Repeated Content-Length values that are all equal are collapsed to one
// field (RFC 9110 §8.6).
//
// Errors are as for ReadRequest, except that every *Error has Status 502.
// On error resp's fields are unspecified.
func ReadResponse(br *bufio.Reader, lim HeadLimits, reqMethod string, resp *message.Response) (Framing, error) {
	s, err := readHeadString(br, lim, true)
	if err != nil {
		return NoBody, err
	}
	return parseResponse(s, reqMethod, resp)
}

func badResponse(reason string) error { return &Error{Status: 502, Reason: reason} }

// parseResponse parses the head s that readHead read.
func parseResponse(s, reqMethod string, resp *message.Response) (Framing, error) {
	// Status line (RFC 9112 §4): HTTP-version SP status-code SP [reason].
	line, i := nextLine(s, 0)
	if len(line) < 12 || line[:7] != "HTTP/1." || !isDigit(line[7]) || line[8] != ' ' {
		return NoBody, badResponse("malformed status line")
	}
	var proto string
	switch line[:8] {
	case "HTTP/1.1":
		proto = "HTTP/1.1"
	case "HTTP/1.0":
		proto = "HTTP/1.0"
	default:
		proto = line[:8] // a later 1.x minor version is 1.1-compatible (RFC 9110 §2.5)
	}
	if !isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11]) {
		return NoBody, badResponse("malformed status code")
	}
	status := int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	if status < 100 {
		return NoBody, badResponse("status code out of range")
	}
	var reason string
	if len(line) > 12 {
		if line[12] != ' ' {
			return NoBody, badResponse("malformed status line")
		}
		reason = line[13:]
		if !validValue(reason) {
			return NoBody, badResponse("invalid reason phrase")
		}
	}

	// Field lines (RFC 9112 §5).
	h := resp.Header[:0]
	oldLen := len(resp.Header)
	var special bool // a Content-Length or Transfer-Encoding field
	for {
		line, i = nextLine(s, i)
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			// §5.2: a proxy may replace obs-fold with SP.
			if len(h) == 0 {
				return NoBody, badResponse("whitespace before first field")
			}
			v := trimOWS(line)
			if !validValue(v) {
				return NoBody, badResponse("invalid field value")
			}
			if v != "" {
				last := &h[len(h)-1]
				if last.Value == "" {
					last.Value = v
				} else {
					last.Value = last.Value + " " + v
				}
			}
			continue
		}
		colon := strings.IndexByte(line, ':')
		if colon < 0 {
			return NoBody, badResponse("malformed field line")
		}
		name := line[:colon]
		if n := len(name); n > 0 && (name[n-1] == ' ' || name[n-1] == '\t') {
			name = trimOWS(name) // §5.1: a proxy removes it
		}
		if !isToken(name) {
			return NoBody, badResponse("invalid field name")
		}
		value := trimOWS(line[colon+1:])
		if !validValue(value) {
			return NoBody, badResponse("invalid field value")
		}
		if len(name) == len("content-length") || len(name) == len("transfer-encoding") {
			special = true
		}
		h = append(h, message.Field{Name: name, Value: value})
	}
	if len(h) < oldLen {
		clear(resp.Header[len(h):oldLen])
	}
	resp.Status = status
	resp.Reason = reason
	resp.Proto = proto

	// Framing (RFC 9112 §6.1, §6.3).
	var (
		length    int64 = -1
		hasLength bool
		te        teState
	)
	if special {
		var err error
		h, length, hasLength, err = responseLength(h)
		if err != nil {
			resp.Header = h
			return NoBody, err
		}
		for j := range h {
			if len(h[j].Name) == len("transfer-encoding") && strings.EqualFold(h[j].Name, "transfer-encoding") {
				te.add(h[j].Value)
			}
		}
	}
	resp.Header = h
	if te.present {
		switch {
		case proto == "HTTP/1.0":
			return NoBody, badResponse("transfer-encoding in http/1.0") // §6.1
		case hasLength:
			return NoBody, badResponse("transfer-encoding with content-length") // §6.3 item 3
		case te.invalid || te.chunked > 1:
			return NoBody, badResponse("invalid transfer-encoding")
		case te.other:
			// Wedge never sends TE, so a server must not use other codings
			// (RFC 9112 §6.1); they cannot be passed on as they are.
			return NoBody, badResponse("unsupported transfer coding")
		}
	}
	if !BodyAllowed(status, reqMethod) {
		if hasLength {
			resp.ContentLength = length
		} else {
			resp.ContentLength = 0
		}
		return NoBody, nil
	}
	switch {
	case te.present && te.lastChunked:
		resp.ContentLength = -1
		return Chunked, nil
	case te.present:
		resp.ContentLength = -1 // §6.3 item 4: final coding not chunked
		return UntilClose, nil
	case hasLength:
		resp.ContentLength = length
		return Length, nil
	}
	resp.ContentLength = -1
	return UntilClose, nil
}

// responseLength finds the Content-Length of a response's fields (RFC 9110
// §8.6, RFC 9112 §6.3 item 5). Lines and list elements that all carry the
// same value are collapsed to the first field with that one value; any
// invalid or differing value is an error.
func responseLength(h message.Header) (_ message.Header, n int64, ok bool, err error) {
	var (
		first  = -1
		digits string
		dups   bool
	)
	for j := range h {
		if len(h[j].Name) != len("content-length") || !strings.EqualFold(h[j].Name, "content-length") {
			continue
		}
		if first >= 0 {
			dups = true
		} else {
			first = j
		}
		v := h[j].Value
		for {
			elem, rest, more := strings.Cut(v, ",")
			elem = trimOWS(elem)
			m, valid := parseDigits(elem)
			if !valid {
				return h, 0, false, badResponse("invalid content-length")
			}
			if ok && m != n {
				return h, 0, false, badResponse("differing content-length values")
			}
			n, ok, digits = m, true, elem
			if !more {
				break
			}
			dups = true
			v = rest
		}
	}
	if dups {
		h[first].Value = digits
		out := h[:first+1]
		for j := first + 1; j < len(h); j++ {
			if len(h[j].Name) != len("content-length") || !strings.EqualFold(h[j].Name, "content-length") {
				out = append(out, h[j])
			}
		}
		clear(h[len(out):])
		h = out
	}
	return h, n, ok, nil
}
