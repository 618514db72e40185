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
// It sets Status, Reason (trimmed, possibly empty), Proto ("HTTP/1.0", "HTTP/1.1"
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
	var h head
	if err := h.read(br, lim, true); err != nil {
		return NoBody, err
	}
	f, end, err := parseResponse(h.b, h.s, reqMethod, resp)
	h.release(br, end)
	return f, err
}

func badResponse(reason string) error { return &Error{Status: 502, Reason: reason} }

// parseResponse parses the head that head.read read: b is its bytes, s the
// same as a string. It returns the framing and the end of the head in b.
func parseResponse(b []byte, s, reqMethod string, resp *message.Response) (_ Framing, end int, _ error) {
	// Status line (RFC 9112 §4): HTTP-version SP status-code SP [reason].
	if len(b) < 13 || s[:7] != "HTTP/1." || !isDigit(b[7]) || b[8] != ' ' ||
		!isDigit(b[9]) || !isDigit(b[10]) || !isDigit(b[11]) {
		return NoBody, 0, badResponse("malformed status line")
	}
	var proto string
	switch s[:8] {
	case "HTTP/1.1":
		proto = "HTTP/1.1"
	case "HTTP/1.0":
		proto = "HTTP/1.0"
	default:
		proto = s[:8] // a later 1.x minor version is 1.1-compatible (RFC 9110 §2.5)
	}
	status := int(b[9]-'0')*100 + int(b[10]-'0')*10 + int(b[11]-'0')
	if status < 100 {
		return NoBody, 0, badResponse("status code out of range")
	}
	var reason string
	_, i, ok := lineEnd(b, 12) // lenient: no SP and no reason
	if !ok {
		if b[12] != ' ' {
			return NoBody, 0, badResponse("malformed status line")
		}
		rs := 13
		var re int
		re, i, ok = lineEnd(b, scanValue(b, rs))
		if !ok {
			return NoBody, 0, badResponse("invalid reason phrase")
		}
		reason = trimOWS(s[rs:re]) // leading and trailing blanks carry nothing
	}

	// Field lines (RFC 9112 §5).
	h := resp.Header[:0]
	oldLen := len(resp.Header)
	var special bool // a Content-Length or Transfer-Encoding field
	for {
		if _, next, ok := lineEnd(b, i); ok {
			end = next
			break
		}
		if b[i] == ' ' || b[i] == '\t' {
			// §5.2: a proxy may replace obs-fold with SP.
			if len(h) == 0 {
				return NoBody, 0, badResponse("whitespace before first field")
			}
			vs, ve, next, ok := fieldValue(b, i)
			if !ok {
				return NoBody, 0, badResponse("invalid field value")
			}
			i = next
			if v := s[vs:ve]; v != "" {
				last := &h[len(h)-1]
				if last.Value == "" {
					last.Value = v
				} else {
					last.Value = last.Value + " " + v
				}
			}
			continue
		}
		ns := i
		i = scanToken(b, i)
		name := s[ns:i]
		for b[i] == ' ' || b[i] == '\t' {
			i++ // §5.1: whitespace before the colon; a proxy removes it
		}
		if name == "" || b[i] != ':' {
			return NoBody, 0, badResponse("invalid field name")
		}
		vs, ve, next, ok := fieldValue(b, i+1)
		if !ok {
			return NoBody, 0, badResponse("invalid field value")
		}
		i = next
		if len(name) == len("content-length") || len(name) == len("transfer-encoding") {
			special = true
		}
		h = append(h, message.Field{Name: name, Value: s[vs:ve]})
	}
	if len(h) < oldLen {
		clear(resp.Header[len(h):oldLen])
	}
	resp.Status = status
	resp.Reason = reason
	resp.Proto = proto

	// Framing (RFC 9112 §6.1, §6.3).
	var (
		length    int64
		hasLength bool
		te        teState
	)
	if special {
		var err error
		h, length, hasLength, err = responseLength(h)
		if err != nil {
			resp.Header = h
			return NoBody, 0, err
		}
		for j := range h {
			if equalFoldASCII(h[j].Name, "transfer-encoding") {
				te.add(h[j].Value)
			}
		}
	}
	resp.Header = h
	if te.present {
		switch {
		case proto == "HTTP/1.0":
			return NoBody, 0, badResponse("transfer-encoding in http/1.0") // §6.1
		case hasLength:
			return NoBody, 0, badResponse("transfer-encoding with content-length") // §6.3 item 3
		case te.invalid || te.chunked > 1:
			return NoBody, 0, badResponse("invalid transfer-encoding")
		case te.other:
			// Wedge never sends TE, so a server must not use other codings
			// (RFC 9112 §6.1); they cannot be passed on as they are.
			return NoBody, 0, badResponse("unsupported transfer coding")
		}
	}
	if !BodyAllowed(status, reqMethod) {
		resp.ContentLength = length // 0 when absent
		return NoBody, end, nil
	}
	switch {
	case te.present && te.lastChunked:
		resp.ContentLength = -1
		return Chunked, end, nil
	case te.present:
		resp.ContentLength = -1 // §6.3 item 4: final coding not chunked
		return UntilClose, end, nil
	case hasLength:
		resp.ContentLength = length
		return Length, end, nil
	}
	resp.ContentLength = -1
	return UntilClose, end, nil
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
		if !equalFoldASCII(h[j].Name, "content-length") {
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
			if !equalFoldASCII(h[j].Name, "content-length") {
				out = append(out, h[j])
			}
		}
		clear(h[len(out):])
		h = out
	}
	return h, n, ok, nil
}

// fieldValue finds the value that starts at b[i] after optional leading
// whitespace: its bounds [vs, ve) without surrounding OWS (RFC 9110 §5.5),
// and next, the start of the following line. ok is false for characters a
// field value may not hold or a line that does not end properly.
func fieldValue(b []byte, i int) (vs, ve, next int, ok bool) {
	for b[i] == ' ' || b[i] == '\t' {
		i++
	}
	vs = i
	ve, next, ok = lineEnd(b, scanValue(b, i))
	if !ok {
		return 0, 0, 0, false
	}
	for ve > vs && (b[ve-1] == ' ' || b[ve-1] == '\t') {
		ve--
	}
	return vs, ve, next, true
}
