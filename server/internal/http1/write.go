package http1

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/wedgeproxy/wedge/server/internal/message"
)

// AppendRequestHead appends req's head in HTTP/1.1 form to dst and returns
// the extended slice (RFC 9112 §3, §5):
//
//	METHOD SP target SP "HTTP/1.1" CRLF
//	"Host: " req.Host CRLF
//	field lines of req.Header, in order, except Host
//	CRLF
//
// An empty Target is written as "/". It never writes a head that would
// parse differently from what req says, whatever a plugin put in it: bytes
// of Method that are not tchar are dropped, bytes of Target that may not
// appear raw (SP, CTL, "#", non-ASCII) are percent-encoded, fields whose
// name is not a token are skipped, and CR, LF, NUL and other CTLs in values
// become SP (RFC 9110 §5.5). Framing fields (Content-Length,
// Transfer-Encoding) are the caller's to set.
func AppendRequestHead(dst []byte, req *message.Request) []byte {
	dst = appendToken(dst, req.Method)
	dst = append(dst, ' ')
	if req.Target == "" {
		dst = append(dst, '/')
	} else {
		dst = appendTarget(dst, req.Target)
	}
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = appendValue(dst, req.Host)
	dst = append(dst, "\r\n"...)
	for _, f := range req.Header {
		if len(f.Name) == len("host") && strings.EqualFold(f.Name, "host") {
			continue
		}
		dst = appendField(dst, f)
	}
	return append(dst, "\r\n"...)
}

// AppendResponseHead appends a response head in HTTP/1.1 form to dst and
// returns the extended slice (RFC 9112 §4, §5):
//
//	"HTTP/1.1" SP status SP reason CRLF
//	field lines of h, in order
//	CRLF
//
// An empty reason is replaced by the standard one (http.StatusText), or
// left empty for an unknown code. A status outside 100-999 is written as
// 500. Names and values are sanitised as in AppendRequestHead.
func AppendResponseHead(dst []byte, status int, reason string, h message.Header) []byte {
	if status < 100 || status > 999 {
		status = 500
	}
	if reason == "" {
		reason = http.StatusText(status)
	}
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = appendValue(dst, reason)
	dst = append(dst, "\r\n"...)
	for _, f := range h {
		dst = appendField(dst, f)
	}
	return append(dst, "\r\n"...)
}

// appendField appends "name: value\r\n", or nothing for an invalid name.
func appendField(dst []byte, f message.Field) []byte {
	if !isToken(f.Name) {
		return dst
	}
	dst = append(dst, f.Name...)
	dst = append(dst, ": "...)
	dst = appendValue(dst, f.Value)
	return append(dst, "\r\n"...)
}

// appendValue appends v with every byte that is not field-vchar, SP or
// HTAB replaced by SP, and without leading or trailing SP/HTAB, which a
// reader would strip.
func appendValue(dst []byte, v string) []byte {
	start := len(dst)
	dst = append(dst, trimOWS(v)...)
	if !validValueBytes(dst[start:]) {
		for i := start; i < len(dst); i++ {
			if charClass[dst[i]]&cValue == 0 {
				dst[i] = ' '
			}
		}
	}
	return dst
}

// appendToken appends the tchar bytes of s.
func appendToken(dst []byte, s string) []byte {
	if isToken(s) {
		return append(dst, s...)
	}
	for i := 0; i < len(s); i++ {
		if charClass[s[i]]&cToken != 0 {
			dst = append(dst, s[i])
		}
	}
	return dst
}

// appendTarget appends t with bytes that may not appear raw in a
// request-target percent-encoded.
func appendTarget(dst []byte, t string) []byte {
	start := len(dst)
	dst = append(dst, t...)
	if validTargetBytes(dst[start:]) {
		return dst
	}
	dst = dst[:start]
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(t); i++ {
		c := t[i]
		if charClass[c]&cTarget == 0 {
			dst = append(dst, '%', hex[c>>4], hex[c&15])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}
