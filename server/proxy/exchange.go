package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/wedgeproxy/wedge/server/internal/message"
)

// Exchange is one client request as a listener hands it to the pipeline,
// with the means to answer it. A listener fills it, calls Handler.Serve,
// and may reuse it once Serve returns.
type Exchange struct {
	// Req is the parsed request head. The pipeline rewrites it in place
	// when it forwards it.
	Req message.Request
	// Body is the request body as the client sends it, already decoded
	// from chunked framing; nil when the request has none. Reads fail with
	// a net.Error whose Timeout() is true past client_body_timeout or
	// client_body_min_rate, and with *http1.Error on bad framing.
	Body io.Reader
	// Remote and Local are the client's and Wedge's addresses.
	Remote, Local netip.AddrPort
	// TLS is the connection's TLS state, nil for cleartext.
	TLS *tls.ConnectionState
	// Start is when the first byte of the request arrived.
	Start time.Time
	// W answers the client.
	W ResponseWriter

	// CloseAfter is set by the pipeline when the client connection must
	// not be reused (the body was not read to its end, or an error).
	CloseAfter bool
}

// ResponseWriter is the client side of one exchange, provided by each
// listener: HTTP/1.1 writes it straight to the connection, HTTP/2 and
// HTTP/3 adapt net/http's ResponseWriter. Writes honour send_timeout and
// send_min_rate.
type ResponseWriter interface {
	// WriteResponse sends a whole response: the head and then the body
	// sections in order. It sets Content-Length to the sum of the
	// sections unless resp answers HEAD or has a status without a body
	// (RFC 9110 §6.4.1), in which case resp's own Content-Length field is
	// sent as it is and no body is written.
	WriteResponse(resp *message.Response, body []message.Section) error
	// WriteHead starts a streamed response. resp.ContentLength < 0 means
	// the length is unknown (HTTP/1.1 then uses chunked framing).
	WriteHead(resp *message.Response) error
	// Write sends part of a streamed body and flushes it to the client.
	Write(p []byte) (int, error)
	// EndStream finishes a streamed response.
	EndStream() error
	// Hijack hands over the client connection after a 101 response was
	// written with WriteHead, with the reader holding any bytes the client
	// already sent. Only HTTP/1.1 supports it; others return
	// ErrHijackNotSupported.
	Hijack() (net.Conn, *bufio.Reader, error)
	// BytesWritten returns the body bytes sent so far.
	BytesWritten() int64
}

// ErrHijackNotSupported is returned by ResponseWriter.Hijack on protocols
// that cannot tunnel a connection (HTTP/2, HTTP/3).
var ErrHijackNotSupported = errors.New("proxy: protocol cannot hand over the connection")
