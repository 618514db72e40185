package http1

import (
	"bufio"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/wedgeproxy/wedge/server/internal/message"
)

type responseTest struct {
	name    string
	in      string
	method  string // request method; "" means GET
	lim     HeadLimits
	bad     bool // expect *Error with status 502
	framing Framing
	want    message.Response
}

var responseTests = []responseTest{
	// RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ].
	{name: "simple", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", framing: Length,
		want: message.Response{Status: 200, Reason: "OK", Proto: "HTTP/1.1", Header: hdr("Content-Length", "5"), ContentLength: 5}},
	{name: "HTTP/1.0", in: "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n", framing: Length,
		want: message.Response{Status: 404, Reason: "Not Found", Proto: "HTTP/1.0", Header: hdr("Content-Length", "0")}},
	{name: "later minor version kept", in: "HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", framing: Length,
		want: message.Response{Status: 200, Reason: "OK", Proto: "HTTP/1.2", Header: hdr("Content-Length", "0")}},
	{name: "empty reason", in: "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", framing: Length,
		want: message.Response{Status: 200, Proto: "HTTP/1.1", Header: hdr("Content-Length", "0")}},
	{name: "missing SP before reason (lenient)", in: "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", framing: Length,
		want: message.Response{Status: 200, Proto: "HTTP/1.1", Header: hdr("Content-Length", "0")}},
	{name: "reason with spaces and obs-text", in: "HTTP/1.1 418 I'm a teapot \xe9\r\nContent-Length: 0\r\n\r\n", framing: Length,
		want: message.Response{Status: 418, Reason: "I'm a teapot \xe9", Proto: "HTTP/1.1", Header: hdr("Content-Length", "0")}},
	{name: "status 999", in: "HTTP/1.1 999 X\r\nContent-Length: 0\r\n\r\n", framing: Length,
		want: message.Response{Status: 999, Reason: "X", Proto: "HTTP/1.1", Header: hdr("Content-Length", "0")}},
	{name: "status 099", in: "HTTP/1.1 099 X\r\n\r\n", bad: true},
	{name: "status two digits", in: "HTTP/1.1 20 OK\r\n\r\n", bad: true},
	{name: "status four digits", in: "HTTP/1.1 2000 OK\r\n\r\n", bad: true},
	{name: "status not digits", in: "HTTP/1.1 2x0 OK\r\n\r\n", bad: true},
	{name: "version 2", in: "HTTP/2.0 200 OK\r\n\r\n", bad: true},
	{name: "version lowercase", in: "http/1.1 200 OK\r\n\r\n", bad: true},
	{name: "double SP", in: "HTTP/1.1  200 OK\r\n\r\n", bad: true},
	{name: "CTL in reason", in: "HTTP/1.1 200 O\x01K\r\n\r\n", bad: true},
	{name: "not http", in: "SSH-2.0-OpenSSH\r\n\r\n", bad: true},
	{name: "leading empty line skipped", in: "\r\nHTTP/1.1 204 No Content\r\n\r\n",
		want: message.Response{Status: 204, Reason: "No Content", Proto: "HTTP/1.1"}},
	{name: "bare LF line ends", in: "HTTP/1.1 200 OK\nA: b\nContent-Length: 1\n\n", framing: Length,
		want: message.Response{Status: 200, Reason: "OK", Proto: "HTTP/1.1", Header: hdr("A", "b", "Content-Length", "1"), ContentLength: 1}},
	{name: "status line too long", in: "HTTP/1.1 200 " + strings.Repeat("x", 100) + "\r\n\r\n", lim: HeadLimits{MaxLine: 50}, bad: true},
	{name: "field line too long", in: "HTTP/1.1 200 OK\r\nA: " + strings.Repeat("x", 100) + "\r\n\r\n", lim: HeadLimits{MaxLine: 50}, bad: true},
	{name: "head too large", in: "HTTP/1.1 200 OK\r\n" + strings.Repeat("A: b\r\n", 50) + "\r\n", lim: HeadLimits{MaxHead: 100}, bad: true},
	// RFC 9112 §5: field lines, lenient where a client may be.
	{name: "obs-fold unfolded", in: "HTTP/1.1 200 OK\r\nA: b\r\n  c\r\n\td\r\nContent-Length: 0\r\n\r\n", framing: Length,
		want: message.Response{Status: 200, Reason: "OK", Proto: "HTTP/1.1", Header: hdr("A", "b c d", "Content-Length", "0")}},
	{name: "obs-fold onto empty value", in: "HTTP/1.1 200 OK\r\nA:\r\n c\r\n\r\n", framing: UntilClose,
		want: message.Response{Status: 200, Reason: "OK", Proto: "HTTP/1.1", Header: hdr("A", "c"), ContentLength: -1}},
	{name: "whitespace before first field", in: "HTTP/1.1 200 OK\r\n A: b\r\n\r\n", bad: true},
	{name: "whitespace before colon removed", in: "HTTP/1.1 200 OK\r\nA \t: b\r\nContent-Length : 3\r\n\r\n", framing: Length,
		want: message.Response{Status: 200, Reason: "OK", Proto: "HTTP/1.1", Header: hdr("A", "b", "Content-Length", "3"), ContentLength: 3}},
	{name: "no colon", in: "HTTP/1.1 200 OK\r\nAbc\r\n\r\n", bad: true},
	{name: "bad name", in: "HTTP/1.1 200 OK\r\nA b: c\r\n\r\n", bad: true},
	{name: "NUL in value", in: "HTTP/1.1 200 OK\r\nA: b\x00\r\n\r\n", bad: true},
	{name: "bare CR in value", in: "HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", bad: true},
	{name: "host kept in header", in: "HTTP/1.1 200 OK\r\nHost: h\r\nContent-Length: 0\r\n\r\n", framing: Length,
		want: message.Response{Status: 200, Reason: "OK", Proto: "HTTP/1.1", Header: hdr("Host", "h", "Content-Length", "0")}},
	// RFC 9112 §6.3: framing.
	{name: "until close", in: "HTTP/1.1 200 OK\r\nA: b\r\n\r\n", framing: UntilClose,
		want: message.Response{Status: 200, Reason: "OK", Proto: "HTTP/1.1", Header: hdr("A", "b"), ContentLength: -1}},
	{name: "HTTP/1.0 until close", in: "HTTP/1.0 200 OK\r\n\r\n", framing: UntilClose,
		want: message.Response{Status: 200, Reason: "OK", Proto: "HTTP/1.0", ContentLength: -1}},
	{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", framing: Chunked,
		want: message.Response{Status: 200, Reason: "OK", Proto: "HTTP/1.1", Header: hdr("Transfer-Encoding", "chunked"), ContentLength: -1}},
	{name: "final coding not chunked is until close", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n\r\n", framing: UntilClose,
		want: message.Response{Status: 200, Reason: "OK", Proto: "HTTP/1.1", Header: hdr("Transfer-Encoding", ""), ContentLength: -1}},
	{name: "gzip coding refused", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", bad: true},
	{name: "gzip only refused", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", bad: true},
	{name: "repeated chunked refused", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", bad: true},
	{name: "transfer-encoding with content-length", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", bad: true},
	{name: "transfer-encoding in HTTP/1.0", in: "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", bad: true},
	{name: "invalid content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n", bad: true},
	{name: "negative content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n", bad: true},
	{name: "overflowing content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\n", bad: true},
	{name: "differing content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", bad: true},
	{name: "differing content-length list", in: "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n", bad: true},
	{name: "empty element in content-length list", in: "HTTP/1.1 200 OK\r\nContent-Length: 5,\r\n\r\n", bad: true},
	{name: "equal content-length collapsed", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nA: b\r\ncontent-length: 5, 5\r\nC: d\r\n\r\n", framing: Length,
		want: message.Response{Status: 200, Reason: "OK", Proto: "HTTP/1.1", Header: hdr("Content-Length", "5", "A", "b", "C", "d"), ContentLength: 5}},
	{name: "equal content-length list collapsed", in: "HTTP/1.1 200 OK\r\nContent-Length: 7 ,7\r\n\r\n", framing: Length,
		want: message.Response{Status: 200, Reason: "OK", Proto: "HTTP/1.1", Header: hdr("Content-Length", "7"), ContentLength: 7}},
	// RFC 9112 §6.3 items 1-2: no body for HEAD, 1xx, 204, 304.
	{name: "HEAD keeps content-length", method: "HEAD", in: "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
		want: message.Response{Status: 200, Reason: "OK", Proto: "HTTP/1.1", Header: hdr("Content-Length", "1234"), ContentLength: 1234}},
	{name: "HEAD with chunked", method: "HEAD", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		want: message.Response{Status: 200, Reason: "OK", Proto: "HTTP/1.1", Header: hdr("Transfer-Encoding", "chunked")}},
	{name: "HEAD without length", method: "HEAD", in: "HTTP/1.1 200 OK\r\n\r\n",
		want: message.Response{Status: 200, Reason: "OK", Proto: "HTTP/1.1"}},
	{name: "204 no body", in: "HTTP/1.1 204 No Content\r\n\r\n",
		want: message.Response{Status: 204, Reason: "No Content", Proto: "HTTP/1.1"}},
	{name: "304 with content-length", in: "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
		want: message.Response{Status: 304, Reason: "Not Modified", Proto: "HTTP/1.1", Header: hdr("Content-Length", "10"), ContentLength: 10}},
	{name: "100 continue", in: "HTTP/1.1 100 Continue\r\n\r\n",
		want: message.Response{Status: 100, Reason: "Continue", Proto: "HTTP/1.1"}},
	{name: "103 early hints", in: "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n",
		want: message.Response{Status: 103, Reason: "Early Hints", Proto: "HTTP/1.1", Header: hdr("Link", "</s.css>; rel=preload")}},
}

func TestReadResponse(t *testing.T) {
	for _, tt := range responseTests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			for _, size := range []int{16, 4096} {
				br := bufio.NewReaderSize(strings.NewReader(tt.in), size)
				resp := message.Response{Header: hdr("Stale", "x", "Stale", "y", "Stale", "z", "Stale", "w")}
				f, err := ReadResponse(br, tt.lim, method, &resp)
				if tt.bad {
					if got := errStatus(err); got != 502 {
						t.Fatalf("bufio %d: err = %v, want status 502", size, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("bufio %d: err = %v", size, err)
				}
				if f != tt.framing {
					t.Errorf("bufio %d: framing = %v, want %v", size, f, tt.framing)
				}
				if len(resp.Header) == 0 {
					resp.Header = nil
				}
				if !reflect.DeepEqual(resp, tt.want) {
					t.Errorf("bufio %d:\n got %+v\nwant %+v", size, resp, tt.want)
				}
			}
		})
	}
}

// TestReadResponse_interim reads a 100 Continue and then the final response
// from one stream, as the upstream client loops.
func TestReadResponse_interim(t *testing.T) {
	br := bufio.NewReader(strings.NewReader("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"))
	var resp message.Response
	if f, err := ReadResponse(br, HeadLimits{}, "POST", &resp); err != nil || resp.Status != 100 || f != NoBody {
		t.Fatalf("1: %v %v %+v", f, err, resp)
	}
	if f, err := ReadResponse(br, HeadLimits{}, "POST", &resp); err != nil || resp.Status != 201 || f != Length || resp.ContentLength != 2 {
		t.Fatalf("2: %v %v %+v", f, err, resp)
	}
	if b, _ := io.ReadAll(br); string(b) != "ok" {
		t.Fatalf("body %q", b)
	}
}

func TestReadResponse_eof(t *testing.T) {
	var resp message.Response
	if _, err := ReadResponse(bufio.NewReader(strings.NewReader("")), HeadLimits{}, "GET", &resp); err != io.EOF {
		t.Errorf("empty: err = %v, want io.EOF", err)
	}
	if _, err := ReadResponse(bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\n")), HeadLimits{}, "GET", &resp); err != io.ErrUnexpectedEOF {
		t.Errorf("partial: err = %v, want io.ErrUnexpectedEOF", err)
	}
}
