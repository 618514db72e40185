package http1

import (
	"bufio"
	"bytes"
	"reflect"
	"testing"

	"github.com/wedgeproxy/wedge/server/internal/message"
)

func TestAppendRequestHead(t *testing.T) {
	tests := []struct {
		name string
		req  message.Request
		want string
	}{
		{"host first, host fields skipped",
			message.Request{Method: "GET", Target: "/a?b", Host: "example.com", Header: hdr("Accept", "*/*", "host", "other", "X-A", "1")},
			"GET /a?b HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nX-A: 1\r\n\r\n"},
		{"HTTP/1.0 request written as 1.1 with empty host",
			message.Request{Method: "GET", Target: "/", Proto: "HTTP/1.0"},
			"GET / HTTP/1.1\r\nHost: \r\n\r\n"},
		{"empty target is /",
			message.Request{Method: "GET", Host: "h"},
			"GET / HTTP/1.1\r\nHost: h\r\n\r\n"},
		{"CRLF in value becomes SP (RFC 9110 §5.5)",
			message.Request{Method: "GET", Target: "/", Host: "h", Header: hdr("X", "a\r\nEvil: 1")},
			"GET / HTTP/1.1\r\nHost: h\r\nX: a  Evil: 1\r\n\r\n"},
		{"CRLF in host becomes SP",
			message.Request{Method: "GET", Target: "/", Host: "h\r\nX: y"},
			"GET / HTTP/1.1\r\nHost: h  X: y\r\n\r\n"},
		{"invalid name skipped",
			message.Request{Method: "GET", Target: "/", Host: "h", Header: hdr("Bad Name", "v", "", "v", "Ok", "v")},
			"GET / HTTP/1.1\r\nHost: h\r\nOk: v\r\n\r\n"},
		{"target escaped",
			message.Request{Method: "GET", Target: "/a b\r\n#\xff", Host: "h"},
			"GET /a%20b%0D%0A%23%FF HTTP/1.1\r\nHost: h\r\n\r\n"},
		{"method stripped of non-tchar",
			message.Request{Method: "GE T\r\n", Target: "/", Host: "h"},
			"GET / HTTP/1.1\r\nHost: h\r\n\r\n"},
		{"value OWS trimmed",
			message.Request{Method: "GET", Target: "/", Host: "h", Header: hdr("X", "  v \t")},
			"GET / HTTP/1.1\r\nHost: h\r\nX: v\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(AppendRequestHead([]byte("prefix"), &tt.req))
			if got != "prefix"+tt.want {
				t.Errorf("got %q\nwant %q", got, "prefix"+tt.want)
			}
		})
	}
}

func TestAppendResponseHead(t *testing.T) {
	tests := []struct {
		name   string
		status int
		reason string
		h      message.Header
		want   string
	}{
		{"standard reason", 200, "", hdr("Content-Length", "2"), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"},
		{"own reason", 404, "Nope", nil, "HTTP/1.1 404 Nope\r\n\r\n"},
		{"unknown code keeps SP", 599, "", nil, "HTTP/1.1 599 \r\n\r\n"},
		{"status out of range", 42, "", nil, "HTTP/1.1 500 Internal Server Error\r\n\r\n"},
		{"reason CRLF sanitised", 200, "OK\r\nX: y", nil, "HTTP/1.1 200 OK  X: y\r\n\r\n"},
		{"repeated fields kept", 200, "OK", hdr("Set-Cookie", "a=1", "Set-Cookie", "b=2"), "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(AppendResponseHead(nil, tt.status, tt.reason, tt.h)); got != tt.want {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestRoundTrip_request appends request heads and reads them back.
func TestRoundTrip_request(t *testing.T) {
	reqs := []message.Request{
		{Method: "GET", Target: "/", Host: "a.example", Proto: "HTTP/1.1"},
		{Method: "POST", Target: "/u?x=1", Host: "[::1]:8080", Proto: "HTTP/1.1",
			Header: hdr("Content-Type", "text/plain", "Content-Length", "12", "X-Empty", ""), ContentLength: 12},
		{Method: "PUT", Target: "/c", Host: "h", Proto: "HTTP/1.1",
			Header: hdr("Transfer-Encoding", "chunked", "Cookie", "a=1; b=2", "Cookie", "c=3"), ContentLength: -1},
		{Method: "OPTIONS", Target: "*", Host: "h", Proto: "HTTP/1.1", Header: hdr("Obs", "caf\xe9\tx")},
	}
	for _, want := range reqs {
		b := AppendRequestHead(nil, &want)
		var got message.Request
		if _, err := ReadRequest(bufio.NewReader(bytes.NewReader(b)), HeadLimits{}, &got); err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q:\n got %+v\nwant %+v", b, got, want)
		}
	}
}

// TestRoundTrip_response appends response heads and reads them back.
func TestRoundTrip_response(t *testing.T) {
	resps := []struct {
		method string
		resp   message.Response
		f      Framing
	}{
		{"GET", message.Response{Status: 200, Reason: "OK", Proto: "HTTP/1.1", Header: hdr("Content-Length", "3"), ContentLength: 3}, Length},
		{"GET", message.Response{Status: 200, Reason: "OK", Proto: "HTTP/1.1", Header: hdr("Transfer-Encoding", "chunked"), ContentLength: -1}, Chunked},
		{"GET", message.Response{Status: 502, Reason: "Bad Gateway", Proto: "HTTP/1.1", Header: hdr("X", "y"), ContentLength: -1}, UntilClose},
		{"HEAD", message.Response{Status: 200, Reason: "Fine", Proto: "HTTP/1.1", Header: hdr("Content-Length", "99"), ContentLength: 99}, NoBody},
		{"GET", message.Response{Status: 304, Reason: "Not Modified", Proto: "HTTP/1.1", Header: hdr("ETag", `"x"`)}, NoBody},
	}
	for _, tt := range resps {
		b := AppendResponseHead(nil, tt.resp.Status, tt.resp.Reason, tt.resp.Header)
		var got message.Response
		f, err := ReadResponse(bufio.NewReader(bytes.NewReader(b)), HeadLimits{}, tt.method, &got)
		if err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		if f != tt.f || !reflect.DeepEqual(got, tt.resp) {
			t.Errorf("%q:\n got %v %+v\nwant %v %+v", b, f, got, tt.f, tt.resp)
		}
	}
}
