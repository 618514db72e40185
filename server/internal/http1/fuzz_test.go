package http1

import (
	"bufio"
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/wedgeproxy/wedge/server/internal/message"
)

// fuzzLimits are small so that the fuzzer reaches the limits.
var fuzzLimits = HeadLimits{MaxLine: 200, MaxHead: 600}

// FuzzReadRequest checks that ReadRequest never panics, that every error is
// one of the documented kinds, and that a request that parses
// re-serializes with AppendRequestHead and re-parses to the same result.
func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET http://a.example:80/x?y HTTP/1.1\r\nHost: h\r\nA: b\r\n\r\n",
		"POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
		"POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"OPTIONS * HTTP/1.0\n\n",
		"\r\nGET /a|b HTTP/1.1\r\nHost: [::1]:8\r\nX: \t\xe9 \r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nA: b\r\n c\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	for _, tt := range requestTests {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		// The slow path (a head in pieces) and the fast path (a head whole
		// in the buffer) must agree.
		var req, req2 message.Request
		br := bufio.NewReaderSize(bytes.NewReader(in), 16)
		framing, err := ReadRequest(br, fuzzLimits, &req)
		br2 := bufio.NewReaderSize(bytes.NewReader(in), 4096)
		framing2, err2 := ReadRequest(br2, fuzzLimits, &req2)
		if !sameResult(err, err2) {
			t.Fatalf("buffer sizes disagree on %q: %v, %v", in, err, err2)
		}
		if err == nil {
			if framing != framing2 || !reflect.DeepEqual(req, req2) {
				t.Fatalf("buffer sizes disagree on %q:\n%v %+v\n%v %+v", in, framing, req, framing2, req2)
			}
			rest, _ := io.ReadAll(br)
			rest2, _ := io.ReadAll(br2)
			if !bytes.Equal(rest, rest2) {
				t.Fatalf("buffer sizes disagree on the rest of %q: %q, %q", in, rest, rest2)
			}
		}
		if err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return
			}
			switch errStatus(err) {
			case 400, 414, 431, 501, 505:
				return
			}
			t.Fatalf("unexpected error %v", err)
		}
		if req.Method == "" || req.Target == "" || (req.Target[0] != '/' && req.Target != "*") {
			t.Fatalf("bad request %+v", req)
		}
		if req.Header.Has("Host") {
			t.Fatalf("Host left in Header: %+v", req)
		}
		wire := AppendRequestHead(nil, &req)
		var again message.Request
		framing3, err := ReadRequest(bufio.NewReader(bytes.NewReader(wire)), HeadLimits{MaxLine: 1 << 20, MaxHead: 1 << 20}, &again)
		if err != nil {
			t.Fatalf("re-parsing %q: %v", wire, err)
		}
		again.Proto = req.Proto // always written as HTTP/1.1
		if len(again.Header) == 0 && len(req.Header) == 0 {
			again.Header = req.Header
		}
		if framing != framing3 || !reflect.DeepEqual(req, again) {
			t.Fatalf("round trip of %q via %q:\n got %v %+v\nwant %v %+v", in, wire, framing3, again, framing, req)
		}
	})
}

// FuzzReadResponse checks that ReadResponse never panics, fails only with
// 502 or EOF errors, and that a response that parses re-serializes with
// AppendResponseHead and re-parses to the same result.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.0 304 Not Modified\r\nA: b\r\n c\r\n\r\n",
		"HTTP/1.1 204 \r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.1 100 Continue\n\n",
		"HTTP/1.1 500 Oops \xe9\r\nX : y\r\n\r\n",
	} {
		f.Add([]byte(s), false)
	}
	for _, tt := range responseTests {
		f.Add([]byte(tt.in), tt.method == "HEAD")
	}
	f.Fuzz(func(t *testing.T, in []byte, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		var resp, resp2 message.Response
		br := bufio.NewReaderSize(bytes.NewReader(in), 16)
		framing, err := ReadResponse(br, fuzzLimits, method, &resp)
		br2 := bufio.NewReaderSize(bytes.NewReader(in), 4096)
		framing2, err2 := ReadResponse(br2, fuzzLimits, method, &resp2)
		if !sameResult(err, err2) {
			t.Fatalf("buffer sizes disagree on %q: %v, %v", in, err, err2)
		}
		if err == nil {
			if framing != framing2 || !reflect.DeepEqual(resp, resp2) {
				t.Fatalf("buffer sizes disagree on %q:\n%v %+v\n%v %+v", in, framing, resp, framing2, resp2)
			}
			rest, _ := io.ReadAll(br)
			rest2, _ := io.ReadAll(br2)
			if !bytes.Equal(rest, rest2) {
				t.Fatalf("buffer sizes disagree on the rest of %q: %q, %q", in, rest, rest2)
			}
		}
		if err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF || errStatus(err) == 502 {
				return
			}
			t.Fatalf("unexpected error %v", err)
		}
		if resp.Status < 100 || resp.Status > 999 {
			t.Fatalf("status %d", resp.Status)
		}
		if !strings.HasPrefix(resp.Proto, "HTTP/1.") {
			t.Fatalf("proto %q", resp.Proto)
		}
		if resp.Proto == "HTTP/1.0" && framing == Chunked {
			t.Fatal("chunked HTTP/1.0 response")
		}
		wire := AppendResponseHead(nil, resp.Status, resp.Reason, resp.Header)
		var again message.Response
		framing3, err := ReadResponse(bufio.NewReader(bytes.NewReader(wire)), HeadLimits{MaxLine: 1 << 20, MaxHead: 1 << 20}, method, &again)
		if err != nil {
			t.Fatalf("re-parsing %q: %v", wire, err)
		}
		again.Proto = resp.Proto
		if resp.Reason == "" {
			again.Reason = ""
		}
		if len(again.Header) == 0 && len(resp.Header) == 0 {
			again.Header = resp.Header
		}
		if framing != framing3 || !reflect.DeepEqual(resp, again) {
			t.Fatalf("round trip of %q via %q:\n got %v %+v\nwant %v %+v", in, wire, framing3, again, framing, resp)
		}
	})
}

// FuzzChunkedReader checks that ChunkedReader never panics or loops, that
// it decodes the same data and error whatever the buffer and read sizes,
// and that what it decodes re-encodes with ChunkedWriter and decodes back.
func FuzzChunkedReader(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"5;a=b;c=\"d\\\"\"\r\nhello\r\n0\r\nX: y\r\n\r\n",
		"ffffffffffffffff\r\n",
		"1\r\na\r\n1\r\nb\r\n0\r\n\r\nrest",
		"5\nhello\n0\n\n",
	} {
		f.Add([]byte(s))
	}
	for _, tt := range chunkedTests {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		small := 1 // byte-at-a-time reads, unless that makes the run slow
		if len(in) > 512 {
			small = 7
		}
		data1, rest1, err1 := readChunked(string(in), 16, small, 128)
		data2, rest2, err2 := readChunked(string(in), 4096, 4096, 128)
		if data1 != data2 || rest1 != rest2 || errKind(err1) != errKind(err2) {
			t.Fatalf("buffer sizes disagree on %q:\n%q %q %v\n%q %q %v", in, data1, rest1, err1, data2, rest2, err2)
		}
		if err1 != nil {
			if err1 != io.ErrUnexpectedEOF && errStatus(err1) == 0 {
				t.Fatalf("unexpected error %v", err1)
			}
			return
		}
		var wire bytes.Buffer
		cw := NewChunkedWriter(&wire)
		cw.Write([]byte(data1))
		cw.Close()
		data3, rest3, err3 := readChunked(wire.String(), 4096, 4096, 0)
		if err3 != nil || data3 != data1 || rest3 != "" {
			t.Fatalf("re-encoding %q: %q %q %v", data1, data3, rest3, err3)
		}
	})
}

// errKind collapses an error to what must not depend on buffer sizes.
func errKind(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := err.(*Error); ok {
		return e.Reason
	}
	return err.Error()
}

// sameResult reports whether two reads of the same input failed alike. The
// status of a limit error may depend on how the input was buffered (which
// limit is seen first), so 400, 414 and 431 for an overlong head are one.
func sameResult(a, b error) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	sa, sb := errStatus(a), errStatus(b)
	if sa == 0 || sb == 0 {
		return a == b
	}
	limit := func(s int) bool { return s == 400 || s == 414 || s == 431 }
	return sa == sb || (limit(sa) && limit(sb))
}
