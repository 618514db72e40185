package http1

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/server/internal/message"
)

// hdr builds a Header from name, value pairs.
func hdr(kv ...string) message.Header {
	var h message.Header
	for i := 0; i < len(kv); i += 2 {
		h = append(h, message.Field{Name: kv[i], Value: kv[i+1]})
	}
	return h
}

// errStatus returns the Status of an *Error, or 0.
func errStatus(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

type requestTest struct {
	name    string
	in      string
	lim     HeadLimits
	status  int // expected *Error status; 0 for success
	framing Framing
	want    message.Request
}

var long100 = strings.Repeat("a", 100)

var requestTests = []requestTest{
	// RFC 9112 §3: request-line = method SP request-target SP HTTP-version.
	{name: "simple GET", in: "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
		want: message.Request{Method: "GET", Target: "/", Host: "example.com", Proto: "HTTP/1.1"}},
	{name: "fields kept in order, host out", in: "GET /a?b=c HTTP/1.1\r\nUser-Agent: x\r\nHost: h\r\nAccept: */*\r\nuser-agent: y\r\n\r\n",
		want: message.Request{Method: "GET", Target: "/a?b=c", Host: "h", Proto: "HTTP/1.1",
			Header: hdr("User-Agent", "x", "Accept", "*/*", "user-agent", "y")}},
	{name: "extension method is a token", in: "PROPFIND /d HTTP/1.1\r\nHost: h\r\n\r\n",
		want: message.Request{Method: "PROPFIND", Target: "/d", Host: "h", Proto: "HTTP/1.1"}},
	{name: "method not a token", in: "GE(T / HTTP/1.1\r\nHost: h\r\n\r\n", status: 400},
	{name: "method empty (leading SP)", in: " GET / HTTP/1.1\r\nHost: h\r\n\r\n", status: 400},
	{name: "double SP after method", in: "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", status: 400},
	{name: "double SP after target", in: "GET /  HTTP/1.1\r\nHost: h\r\n\r\n", status: 400},
	{name: "trailing SP after version", in: "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", status: 400},
	{name: "HTAB as separator", in: "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", status: 400},
	{name: "no version (HTTP/0.9 style)", in: "GET /\r\nHost: h\r\n\r\n", status: 400},
	{name: "garbage request line", in: "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", status: 400},
	// RFC 9112 §2.3: HTTP-version.
	{name: "HTTP/1.0 without host", in: "GET / HTTP/1.0\r\n\r\n",
		want: message.Request{Method: "GET", Target: "/", Proto: "HTTP/1.0"}},
	{name: "version 2.0 is 505", in: "GET / HTTP/2.0\r\nHost: h\r\n\r\n", status: 505},
	{name: "version 1.2 is 505", in: "GET / HTTP/1.2\r\nHost: h\r\n\r\n", status: 505},
	{name: "version 0.9 is 505", in: "GET / HTTP/0.9\r\nHost: h\r\n\r\n", status: 505},
	{name: "version lowercase is malformed", in: "GET / http/1.1\r\nHost: h\r\n\r\n", status: 400},
	{name: "version two digits is malformed", in: "GET / HTTP/1.10\r\nHost: h\r\n\r\n", status: 400},
	{name: "version garbage is malformed", in: "GET / FOO\r\nHost: h\r\n\r\n", status: 400},
	// RFC 9112 §3: a long request-target is 414, another long line 400.
	{name: "long target is 414", in: "GET /" + long100 + " HTTP/1.1\r\nHost: h\r\n\r\n", lim: HeadLimits{MaxLine: 50}, status: 414},
	{name: "long target without version yet is 414", in: "GET /" + long100, lim: HeadLimits{MaxLine: 50}, status: 414},
	{name: "long method is 400", in: "GET" + long100 + " / HTTP/1.1\r\nHost: h\r\n\r\n", lim: HeadLimits{MaxLine: 50}, status: 400},
	{name: "long version is 400", in: "GET / HTTP/1.1" + long100 + "\r\nHost: h\r\n\r\n", lim: HeadLimits{MaxLine: 50}, status: 400},
	{name: "line of exactly MaxLine fits", in: "GET /" + strings.Repeat("a", 36) + " HTTP/1.1\r\nHost: h\r\n\r\n", lim: HeadLimits{MaxLine: 50},
		want: message.Request{Method: "GET", Target: "/" + strings.Repeat("a", 36), Host: "h", Proto: "HTTP/1.1"}},
	{name: "line of MaxLine+1 is too long", in: "GET /" + strings.Repeat("a", 37) + " HTTP/1.1\r\nHost: h\r\n\r\n", lim: HeadLimits{MaxLine: 50}, status: 414},
	// RFC 9112 §2.2: empty lines before the request line are ignored.
	{name: "leading empty lines skipped", in: "\r\n\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
		want: message.Request{Method: "GET", Target: "/", Host: "h", Proto: "HTTP/1.1"}},
	{name: "too many leading empty lines", in: strings.Repeat("\r\n", 5) + "GET / HTTP/1.1\r\nHost: h\r\n\r\n", status: 400},
	// RFC 9112 §2.2: bare LF accepted, bare CR refused.
	{name: "bare LF line ends", in: "GET / HTTP/1.1\nHost: h\nA: b\n\n",
		want: message.Request{Method: "GET", Target: "/", Host: "h", Proto: "HTTP/1.1", Header: hdr("A", "b")}},
	{name: "bare CR in request line", in: "GET /\r HTTP/1.1\r\nHost: h\r\n\r\n", status: 400},
	{name: "bare CR as line end", in: "GET / HTTP/1.1\rHost: h\r\n\r\n", status: 400},
	{name: "bare CR in value", in: "GET / HTTP/1.1\r\nHost: h\r\nA: b\rc\r\n\r\n", status: 400},
	{name: "CR CR LF", in: "GET / HTTP/1.1\r\nHost: h\r\nA: b\r\r\n\r\n", status: 400},
	{name: "bare CR in empty line", in: "GET / HTTP/1.1\r\nHost: h\r\n\r\r\n", status: 400},
	// RFC 9110 §5.5: no NUL or CTL (HTAB aside) in values.
	{name: "NUL in value", in: "GET / HTTP/1.1\r\nHost: h\r\nA: b\x00c\r\n\r\n", status: 400},
	{name: "CTL in value", in: "GET / HTTP/1.1\r\nHost: h\r\nA: b\x01c\r\n\r\n", status: 400},
	{name: "DEL in value", in: "GET / HTTP/1.1\r\nHost: h\r\nA: b\x7fc\r\n\r\n", status: 400},
	{name: "HTAB and obs-text in value", in: "GET / HTTP/1.1\r\nHost: h\r\nA: b\tc\xe9\r\n\r\n",
		want: message.Request{Method: "GET", Target: "/", Host: "h", Proto: "HTTP/1.1", Header: hdr("A", "b\tc\xe9")}},
	{name: "NUL in target", in: "GET /\x00 HTTP/1.1\r\nHost: h\r\n\r\n", status: 400},
	{name: "NUL in name", in: "GET / HTTP/1.1\r\nHost: h\r\nA\x00: b\r\n\r\n", status: 400},
	// RFC 9112 §3.2: request-target forms.
	{name: "origin-form with query", in: "GET /p/q?x=1&y=%20 HTTP/1.1\r\nHost: h\r\n\r\n",
		want: message.Request{Method: "GET", Target: "/p/q?x=1&y=%20", Host: "h", Proto: "HTTP/1.1"}},
	{name: "origin-form with lenient bytes", in: "GET /a|b{c}\"d\" HTTP/1.1\r\nHost: h\r\n\r\n",
		want: message.Request{Method: "GET", Target: "/a|b{c}\"d\"", Host: "h", Proto: "HTTP/1.1"}},
	{name: "absolute-form becomes origin-form", in: "GET http://other.example:8080/p?q HTTP/1.1\r\nHost: h\r\n\r\n",
		want: message.Request{Method: "GET", Target: "/p?q", Host: "other.example:8080", Proto: "HTTP/1.1"}},
	{name: "absolute-form https without path", in: "GET HTTPS://a.example HTTP/1.1\r\nHost: a.example\r\n\r\n",
		want: message.Request{Method: "GET", Target: "/", Host: "a.example", Proto: "HTTP/1.1"}},
	{name: "absolute-form query without path", in: "GET http://a.example?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
		want: message.Request{Method: "GET", Target: "/?x=1", Host: "a.example", Proto: "HTTP/1.1"}},
	{name: "absolute-form HTTP/1.0 without host", in: "GET http://a.example/ HTTP/1.0\r\n\r\n",
		want: message.Request{Method: "GET", Target: "/", Host: "a.example", Proto: "HTTP/1.0"}},
	{name: "absolute-form still needs host in 1.1", in: "GET http://a.example/ HTTP/1.1\r\n\r\n", status: 400},
	{name: "absolute-form with userinfo", in: "GET http://u:p@a.example/ HTTP/1.1\r\nHost: h\r\n\r\n", status: 400},
	{name: "absolute-form empty authority", in: "GET http:///p HTTP/1.1\r\nHost: h\r\n\r\n", status: 400},
	{name: "absolute-form other scheme", in: "GET ftp://a.example/ HTTP/1.1\r\nHost: h\r\n\r\n", status: 400},
	{name: "absolute-form IPv6", in: "GET http://[::1]:80/x HTTP/1.1\r\nHost: h\r\n\r\n",
		want: message.Request{Method: "GET", Target: "/x", Host: "[::1]:80", Proto: "HTTP/1.1"}},
	{name: "asterisk-form for OPTIONS", in: "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
		want: message.Request{Method: "OPTIONS", Target: "*", Host: "h", Proto: "HTTP/1.1"}},
	{name: "asterisk-form for GET", in: "GET * HTTP/1.1\r\nHost: h\r\n\r\n", status: 400},
	{name: "authority-form CONNECT is 501", in: "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", status: 501},
	{name: "authority-form without CONNECT", in: "GET a.example:443 HTTP/1.1\r\nHost: h\r\n\r\n", status: 400},
	{name: "relative target", in: "GET a/b HTTP/1.1\r\nHost: h\r\n\r\n", status: 400},
	{name: "fragment in target", in: "GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n", status: 400},
	{name: "non-ASCII in target", in: "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", status: 400},
	{name: "DEL in target", in: "GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", status: 400},
	// RFC 9112 §5.1: field-line = field-name ":" OWS field-value OWS.
	{name: "value trimmed of OWS", in: "GET / HTTP/1.1\r\nHost: h\r\nA: \t b c \t \r\nB:\r\nC:   \r\n\r\n",
		want: message.Request{Method: "GET", Target: "/", Host: "h", Proto: "HTTP/1.1", Header: hdr("A", "b c", "B", "", "C", "")}},
	{name: "SP before colon", in: "GET / HTTP/1.1\r\nHost: h\r\nA : b\r\n\r\n", status: 400},
	{name: "HTAB before colon", in: "GET / HTTP/1.1\r\nHost: h\r\nA\t: b\r\n\r\n", status: 400},
	{name: "SP before colon on host", in: "GET / HTTP/1.1\r\nHost : h\r\n\r\n", status: 400},
	{name: "no colon", in: "GET / HTTP/1.1\r\nHost: h\r\nAbc\r\n\r\n", status: 400},
	{name: "empty name", in: "GET / HTTP/1.1\r\nHost: h\r\n: b\r\n\r\n", status: 400},
	{name: "name not a token", in: "GET / HTTP/1.1\r\nHost: h\r\nA(b): c\r\n\r\n", status: 400},
	{name: "obs-text in name", in: "GET / HTTP/1.1\r\nHost: h\r\nA\xe9: c\r\n\r\n", status: 400},
	// RFC 9112 §5.2: obs-fold rejected; §2.2 whitespace before the first field.
	{name: "obs-fold rejected", in: "GET / HTTP/1.1\r\nHost: h\r\nA: b\r\n c\r\n\r\n", status: 400},
	{name: "obs-fold with HTAB rejected", in: "GET / HTTP/1.1\r\nHost: h\r\nA: b\r\n\tc\r\n\r\n", status: 400},
	{name: "whitespace before first field", in: "GET / HTTP/1.1\r\n Host: h\r\n\r\n", status: 400},
	// Head limits: 431 (RFC 6585 §5).
	{name: "long field line is 431", in: "GET / HTTP/1.1\r\nHost: h\r\nA: " + long100 + "\r\n\r\n", lim: HeadLimits{MaxLine: 50}, status: 431},
	{name: "head over MaxHead is 431", in: "GET / HTTP/1.1\r\nHost: h\r\n" + strings.Repeat("A: b\r\n", 20) + "\r\n", lim: HeadLimits{MaxHead: 100}, status: 431},
	{name: "head of exactly MaxHead fits", in: "GET / HTTP/1.1\r\nHost: h\r\nA: b\r\n\r\n", lim: HeadLimits{MaxHead: 33},
		want: message.Request{Method: "GET", Target: "/", Host: "h", Proto: "HTTP/1.1", Header: hdr("A", "b")}},
	{name: "head of MaxHead+1 is 431", in: "GET / HTTP/1.1\r\nHost: h\r\nA: bc\r\n\r\n", lim: HeadLimits{MaxHead: 33}, status: 431},
	{name: "MaxLine above MaxHead lowered", in: "GET /" + long100 + " HTTP/1.1\r\nHost: h\r\n\r\n", lim: HeadLimits{MaxLine: 1000, MaxHead: 60}, status: 414},
	// RFC 9112 §3.2: exactly one valid Host in HTTP/1.1.
	{name: "missing host", in: "GET / HTTP/1.1\r\nA: b\r\n\r\n", status: 400},
	{name: "repeated host", in: "GET / HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n", status: 400},
	{name: "repeated host in 1.0", in: "GET / HTTP/1.0\r\nHost: h\r\nhost: i\r\n\r\n", status: 400},
	{name: "host case-insensitive", in: "GET / HTTP/1.1\r\nhOST: Example.COM:8080\r\n\r\n",
		want: message.Request{Method: "GET", Target: "/", Host: "Example.COM:8080", Proto: "HTTP/1.1"}},
	{name: "empty host allowed", in: "GET / HTTP/1.1\r\nHost:\r\n\r\n",
		want: message.Request{Method: "GET", Target: "/", Proto: "HTTP/1.1"}},
	{name: "host IPv6", in: "GET / HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n",
		want: message.Request{Method: "GET", Target: "/", Host: "[2001:db8::1]:443", Proto: "HTTP/1.1"}},
	{name: "host with space", in: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", status: 400},
	{name: "host with slash", in: "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", status: 400},
	{name: "host with userinfo", in: "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", status: 400},
	{name: "host with bad port", in: "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", status: 400},
	{name: "host bare IPv6", in: "GET / HTTP/1.1\r\nHost: ::1\r\n\r\n", status: 400},
	{name: "host bad percent-encoding", in: "GET / HTTP/1.1\r\nHost: a%2\r\n\r\n", status: 400},
	{name: "host non-ASCII", in: "GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n", status: 400},
	// RFC 9112 §6.3 item 5, RFC 9110 §8.6: Content-Length.
	{name: "content-length", in: "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 42\r\n\r\n", framing: Length,
		want: message.Request{Method: "POST", Target: "/u", Host: "h", Proto: "HTTP/1.1", Header: hdr("Content-Length", "42"), ContentLength: 42}},
	{name: "content-length zero", in: "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", framing: Length,
		want: message.Request{Method: "POST", Target: "/u", Host: "h", Proto: "HTTP/1.1", Header: hdr("Content-Length", "0")}},
	{name: "content-length leading zeros", in: "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 007\r\n\r\n", framing: Length,
		want: message.Request{Method: "POST", Target: "/u", Host: "h", Proto: "HTTP/1.1", Header: hdr("Content-Length", "007"), ContentLength: 7}},
	{name: "content-length max int64", in: "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775807\r\n\r\n", framing: Length,
		want: message.Request{Method: "POST", Target: "/u", Host: "h", Proto: "HTTP/1.1", Header: hdr("Content-Length", "9223372036854775807"), ContentLength: 1<<63 - 1}},
	{name: "content-length overflow", in: "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775808\r\n\r\n", status: 400},
	{name: "content-length huge overflow", in: "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", status: 400},
	{name: "content-length signed", in: "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", status: 400},
	{name: "content-length negative", in: "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", status: 400},
	{name: "content-length empty", in: "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", status: 400},
	{name: "content-length hex", in: "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", status: 400},
	{name: "content-length list", in: "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n", status: 400},
	{name: "content-length inner space", in: "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 1 0\r\n\r\n", status: 400},
	{name: "content-length repeated equal", in: "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n", status: 400},
	{name: "content-length repeated differing", in: "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", status: 400},
	// RFC 9112 §6.1, §6.3: Transfer-Encoding.
	{name: "chunked", in: "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", framing: Chunked,
		want: message.Request{Method: "POST", Target: "/u", Host: "h", Proto: "HTTP/1.1", Header: hdr("Transfer-Encoding", "chunked"), ContentLength: -1}},
	{name: "chunked case-insensitive with empty elements", in: "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , CHUNKED ,\r\n\r\n", framing: Chunked,
		want: message.Request{Method: "POST", Target: "/u", Host: "h", Proto: "HTTP/1.1", Header: hdr("Transfer-Encoding", ", CHUNKED ,"), ContentLength: -1}},
	{name: "transfer-encoding with content-length", in: "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400},
	{name: "content-length after transfer-encoding", in: "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", status: 400},
	{name: "final coding not chunked", in: "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", status: 400},
	{name: "only gzip is 400", in: "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", status: 400},
	{name: "gzip then chunked is 501", in: "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", status: 501},
	{name: "codings over two lines", in: "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", status: 501},
	{name: "chunked then a line with gzip", in: "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", status: 400},
	{name: "repeated chunked", in: "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", status: 400},
	{name: "repeated chunked over two lines", in: "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400},
	{name: "chunked with parameter", in: "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", status: 400},
	{name: "empty transfer-encoding", in: "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \r\n\r\n", status: 400},
	{name: "invalid coding", in: "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chun ked\r\n\r\n", status: 400},
	{name: "near-chunked coding", in: "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunkedx\r\n\r\n", status: 400},
	{name: "transfer-encoding in HTTP/1.0", in: "POST /u HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400},
	{name: "no framing fields is no body", in: "POST /u HTTP/1.1\r\nHost: h\r\n\r\n",
		want: message.Request{Method: "POST", Target: "/u", Host: "h", Proto: "HTTP/1.1"}},
}

func TestReadRequest(t *testing.T) {
	for _, tt := range requestTests {
		t.Run(tt.name, func(t *testing.T) {
			// Read through a tiny bufio buffer too, to cover lines that
			// arrive in fragments.
			for _, size := range []int{16, 4096} {
				br := bufio.NewReaderSize(strings.NewReader(tt.in), size)
				req := message.Request{Header: hdr("Stale", "x", "Stale", "y", "Stale", "z", "Stale", "w", "Stale", "v", "Stale", "u", "Stale", "t")}
				f, err := ReadRequest(br, tt.lim, &req)
				if tt.status != 0 {
					if got := errStatus(err); got != tt.status {
						t.Fatalf("bufio %d: err = %v, want status %d", size, err, tt.status)
					}
					continue
				}
				if err != nil {
					t.Fatalf("bufio %d: err = %v", size, err)
				}
				if f != tt.framing {
					t.Errorf("bufio %d: framing = %v, want %v", size, f, tt.framing)
				}
				if len(req.Header) == 0 {
					req.Header = nil
				}
				if !reflect.DeepEqual(req, tt.want) {
					t.Errorf("bufio %d:\n got %+v\nwant %+v", size, req, tt.want)
				}
			}
		})
	}
}

func TestReadRequest_sentinels(t *testing.T) {
	tests := []struct {
		in   string
		lim  HeadLimits
		want error
	}{
		{"GET /" + strings.Repeat("a", 100) + " HTTP/1.1\r\n", HeadLimits{MaxLine: 50}, ErrURITooLong},
		{"GET / HTTP/1.1\r\nA: " + strings.Repeat("a", 100) + "\r\n\r\n", HeadLimits{MaxLine: 50}, ErrHeadTooLarge},
		{"GET / HTTP/3.0\r\n\r\n", HeadLimits{}, ErrVersionNotSupported},
		{"CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\n", HeadLimits{}, ErrConnectNotSupported},
		{"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: br, chunked\r\n\r\n", HeadLimits{}, ErrUnsupportedTransferCoding},
		{"GET / HTTP/1.1\r\n\r\n", HeadLimits{}, ErrMissingHost},
	}
	for _, tt := range tests {
		var req message.Request
		_, err := ReadRequest(bufio.NewReader(strings.NewReader(tt.in)), tt.lim, &req)
		if !errors.Is(err, tt.want) {
			t.Errorf("%q: err = %v, want %v", tt.in, err, tt.want)
		}
	}
}

func TestReadRequest_eof(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"nothing", "", io.EOF},
		{"only empty lines", "\r\n\r\n", io.EOF},
		{"mid request line", "GET / HT", io.ErrUnexpectedEOF},
		{"mid fields", "GET / HTTP/1.1\r\nHost: h\r\n", io.ErrUnexpectedEOF},
		{"before final LF", "GET / HTTP/1.1\r\nHost: h\r\n\r", io.ErrUnexpectedEOF},
		{"half an empty line", "\r", io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req message.Request
			_, err := ReadRequest(bufio.NewReader(strings.NewReader(tt.in)), HeadLimits{}, &req)
			if err != tt.want {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestReadRequest_timeout checks that a deadline surfaces as a net.Error:
// bare when nothing arrived, wrapped with ErrIncompleteHead mid-head.
func TestReadRequest_timeout(t *testing.T) {
	for _, partial := range []string{"", "GET / HTTP/1.1\r\nHo"} {
		c1, c2 := net.Pipe()
		go func() {
			c2.Write([]byte(partial))
		}()
		c1.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		var req message.Request
		_, err := ReadRequest(bufio.NewReader(c1), HeadLimits{}, &req)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("partial %q: err = %v, want a timeout net.Error", partial, err)
		}
		if got := errors.Is(err, ErrIncompleteHead); got != (partial != "") {
			t.Errorf("partial %q: errors.Is(err, ErrIncompleteHead) = %v", partial, got)
		}
		c1.Close()
		c2.Close()
	}
}

// TestReadRequest_pipelined reads several requests from one stream, reusing
// one Request, and checks that each leaves br at the next.
func TestReadRequest_pipelined(t *testing.T) {
	in := "GET /1 HTTP/1.1\r\nHost: a\r\nX: 1\r\nY: 2\r\nZ: 3\r\n\r\n" +
		"POST /2 HTTP/1.1\r\nHost: b\r\nContent-Length: 3\r\n\r\nabc" +
		"\r\nGET /3 HTTP/1.0\r\n\r\n"
	br := bufio.NewReader(strings.NewReader(in))
	var req message.Request
	if _, err := ReadRequest(br, HeadLimits{}, &req); err != nil || req.Target != "/1" || len(req.Header) != 3 {
		t.Fatalf("1: %v %+v", err, req)
	}
	f, err := ReadRequest(br, HeadLimits{}, &req)
	if err != nil || req.Target != "/2" || f != Length || req.ContentLength != 3 || len(req.Header) != 1 {
		t.Fatalf("2: %v %+v", err, req)
	}
	if _, err := io.CopyN(io.Discard, br, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRequest(br, HeadLimits{}, &req); err != nil || req.Target != "/3" || req.Host != "" || len(req.Header) != 0 {
		t.Fatalf("3: %v %+v", err, req)
	}
	if _, err := ReadRequest(br, HeadLimits{}, &req); err != io.EOF {
		t.Fatalf("4: err = %v, want io.EOF", err)
	}
}

func TestBodyAllowed(t *testing.T) {
	tests := []struct {
		status int
		method string
		want   bool
	}{
		{200, "GET", true}, {200, "HEAD", false}, {100, "GET", false}, {101, "GET", false},
		{199, "POST", false}, {204, "GET", false}, {304, "GET", false}, {205, "GET", true},
		{404, "GET", true}, {500, "HEAD", false},
	}
	for _, tt := range tests {
		if got := BodyAllowed(tt.status, tt.method); got != tt.want {
			t.Errorf("BodyAllowed(%d, %q) = %v, want %v", tt.status, tt.method, got, tt.want)
		}
	}
}

func TestKeepAlive(t *testing.T) {
	tests := []struct {
		proto string
		h     message.Header
		want  bool
	}{
		{"HTTP/1.1", nil, true},
		{"HTTP/1.1", hdr("Connection", "close"), false},
		{"HTTP/1.1", hdr("connection", "Upgrade, Close"), false},
		{"HTTP/1.0", nil, false},
		{"HTTP/1.0", hdr("Connection", "keep-alive"), true},
		{"HTTP/1.0", hdr("Connection", "keep-alive", "Connection", "close"), false},
	}
	for _, tt := range tests {
		if got := KeepAlive(tt.proto, tt.h); got != tt.want {
			t.Errorf("KeepAlive(%q, %v) = %v, want %v", tt.proto, tt.h, got, tt.want)
		}
	}
}
