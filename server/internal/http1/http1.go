// Package http1 is Wedge's strict HTTP/1.1 wire codec (RFC 9112). The
// client-facing listener uses it to parse request heads and write response
// heads; the upstream client uses it to write request heads and parse
// response heads. Bodies are framed by the caller from the [Framing] a read
// returns, with [ChunkedReader] and [ChunkedWriter] for the chunked transfer
// coding (RFC 9112 §7.1).
//
// # Strictness
//
// Requests come from the open internet, so the request parser rejects
// everything RFC 9112 allows a server to reject: obs-fold, whitespace before
// a field's colon, control characters, bare CR, repeated or malformed
// Content-Length, Transfer-Encoding with Content-Length, codings other than
// chunked. Every rejection is an [*Error] carrying the status the client
// must get. Responses come from configured upstreams, so the response parser
// is lenient where RFC 9112 lets a client be (obs-fold is unfolded,
// whitespace before a colon is removed, the reason phrase may be missing)
// and strict about framing, which a proxy must never guess; its errors carry
// status 502.
//
// # Allocations
//
// A head is converted to a string once; the method, target, field names
// and values are substrings of that one string, so a parsed head costs one
// allocation (plus the growth of the caller's Header slice, which it
// reuses across requests). A head that is already whole in the
// bufio.Reader's buffer is parsed there (the fast path); one that arrives
// in pieces or outgrows the buffer is first copied line by line into a
// pooled scratch buffer. Size the bufio.Reader to hold a typical head
// (4 KiB does for most browsers; 8-16 KiB for large cookies).
package http1

import (
	"errors"
	"strconv"
	"strings"

	"github.com/wedgeproxy/wedge/server/internal/message"
)

// Default limits, used when a [HeadLimits] field is zero or negative. They
// match nginx's default large_client_header_buffers "4 8k".
const (
	DefaultMaxLine = 8 << 10  // bytes
	DefaultMaxHead = 32 << 10 // bytes
)

// HeadLimits bounds a message head. The zero value means the defaults.
type HeadLimits struct {
	// MaxLine is the longest single line (request line, status line or
	// field line) in bytes, not counting its CRLF. Zero means
	// DefaultMaxLine. A MaxLine above MaxHead is lowered to MaxHead.
	MaxLine int
	// MaxHead is the whole head in bytes: every line with its CRLF and the
	// final empty line. Zero means DefaultMaxHead.
	MaxHead int
}

func (l HeadLimits) norm() (maxLine, maxHead int) {
	maxLine, maxHead = l.MaxLine, l.MaxHead
	if maxHead <= 0 {
		maxHead = DefaultMaxHead
	}
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	if maxLine > maxHead {
		maxLine = maxHead
	}
	return maxLine, maxHead
}

// Framing says how a message body is delimited (RFC 9112 §6.3).
type Framing uint8

const (
	// NoBody: the message has no body (a request without Content-Length or
	// Transfer-Encoding; a response to HEAD, a 1xx, 204 or 304).
	NoBody Framing = iota
	// Length: the body is exactly ContentLength bytes (possibly 0).
	Length
	// Chunked: the body uses the chunked transfer coding; read it with a
	// ChunkedReader. ContentLength is -1.
	Chunked
	// UntilClose: the body runs until the server closes the connection
	// (responses only, RFC 9112 §6.3 item 8). ContentLength is -1.
	UntilClose
)

// String returns the framing's name, e.g. "chunked".
func (f Framing) String() string {
	switch f {
	case NoBody:
		return "no-body"
	case Length:
		return "length"
	case Chunked:
		return "chunked"
	case UntilClose:
		return "until-close"
	}
	return "framing(" + strconv.Itoa(int(f)) + ")"
}

// Error is a malformed or refused message. Status is the HTTP status the
// client must get: 400, 414, 431, 501 or 505 for requests (RFC 9112 §3,
// RFC 9110 §15), 502 for anything wrong in an upstream's response. Reason
// is a short lowercase phrase for logs, never sent to the client as is.
type Error struct {
	Status int
	Reason string
}

// Error returns "parsing http/1.1: <reason> (status <status>)".
func (e *Error) Error() string {
	return "parsing http/1.1: " + e.Reason + " (status " + strconv.Itoa(e.Status) + ")"
}

// HTTPStatus returns Status. It makes *Error satisfy the proxy's
// statusError, so a malformed chunked request body gets its 400 (431 for a
// large trailer) rather than a silent close.
func (e *Error) HTTPStatus() int { return e.Status }

// Sentinel errors, returned as they are by ReadRequest (compare with ==
// or errors.Is). ReadResponse returns a fresh *Error with status 502.
var (
	// ErrURITooLong: the request line exceeds MaxLine because of its
	// request-target (RFC 9112 §3: "MUST respond with a 414").
	ErrURITooLong = &Error{Status: 414, Reason: "request-target too long"}
	// ErrHeadTooLarge: a field line exceeds MaxLine or the head exceeds
	// MaxHead (RFC 6585 §5).
	ErrHeadTooLarge = &Error{Status: 431, Reason: "request header fields too large"}
	// ErrVersionNotSupported: a well-formed HTTP-version other than
	// HTTP/1.0 and HTTP/1.1 (RFC 9110 §15.6.6).
	ErrVersionNotSupported = &Error{Status: 505, Reason: "http version not supported"}
	// ErrConnectNotSupported: Wedge does not tunnel CONNECT.
	ErrConnectNotSupported = &Error{Status: 501, Reason: "CONNECT not supported"}
	// ErrUnsupportedTransferCoding: a transfer coding other than chunked
	// (RFC 9112 §6.1: "SHOULD respond with 501").
	ErrUnsupportedTransferCoding = &Error{Status: 501, Reason: "unsupported transfer coding"}
	// ErrMissingHost: an HTTP/1.1 request without Host (RFC 9112 §3.2).
	ErrMissingHost = &Error{Status: 400, Reason: "missing host"}
	// ErrIncompleteHead wraps a read error (a timeout, a reset) that ended a
	// head after some of it had arrived; errors.As still finds the
	// underlying net.Error. A read error before the first byte is returned
	// unwrapped, so the caller can tell an idle keep-alive connection
	// (close silently) from a stalled request (408).
	ErrIncompleteHead = errors.New("reading http/1.1 head: incomplete")
)

// BodyAllowed reports whether a response with this status to a request with
// this method can have a body: false for HEAD, 1xx, 204 and 304
// (RFC 9112 §6.3 items 1-2).
func BodyAllowed(status int, reqMethod string) bool {
	if reqMethod == "HEAD" {
		return false
	}
	return status >= 200 && status != 204 && status != 304
}

// KeepAlive reports whether the connection persists after a message of
// protocol proto ("HTTP/1.1", "HTTP/1.0") with header h (RFC 9112 §9.3):
// never with "Connection: close"; always for HTTP/1.1 (and later 1.x); for HTTP/1.0 only
// with "Connection: keep-alive". It does not look at framing: a response
// read until close never persists.
func KeepAlive(proto string, h message.Header) bool {
	var keep bool
	for i := range h {
		if len(h[i].Name) != len("connection") || !strings.EqualFold(h[i].Name, "connection") {
			continue
		}
		if message.ListHasToken(h[i].Value, "close") {
			return false
		}
		if message.ListHasToken(h[i].Value, "keep-alive") {
			keep = true
		}
	}
	return proto != "HTTP/1.0" || keep
}
