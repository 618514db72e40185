package proxy

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/wedgeproxy/wedge/server/internal/message"
	"github.com/wedgeproxy/wedge/server/internal/spool"
)

func hdr(kv ...string) message.Header {
	var h message.Header
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestRemoveHopByHop(t *testing.T) {
	tests := []struct {
		name        string
		in          message.Header
		keepUpgrade bool
		want        message.Header
	}{
		{
			name: "every standard hop-by-hop field",
			in: hdr("Connection", "keep-alive", "Proxy-Connection", "keep-alive", "Keep-Alive", "timeout=5",
				"TE", "trailers", "Transfer-Encoding", "chunked", "Upgrade", "h2c", "Trailer", "Expires",
				"Proxy-Authorization", "Basic eA==", "Proxy-Authenticate", "Basic", "Accept", "*/*"),
			want: hdr("Accept", "*/*"),
		},
		{
			name: "any case",
			in:   hdr("connection", "close", "KEEP-ALIVE", "1", "transfer-ENCODING", "chunked", "X-A", "1"),
			want: hdr("X-A", "1"),
		},
		{
			name: "fields named in Connection",
			in:   hdr("X-Secret", "s", "Connection", "X-Secret, x-other ,close", "X-Other", "o", "X-Kept", "k"),
			want: hdr("X-Kept", "k"),
		},
		{
			name: "fields named in several Connection lines",
			in:   hdr("Connection", "a", "Connection", "b", "A", "1", "B", "2", "C", "3"),
			want: hdr("C", "3"),
		},
		{
			name: "more than eight named fields",
			in: hdr("Connection", "f1,f2,f3,f4,f5,f6,f7,f8,f9,f10",
				"F1", "", "F2", "", "F3", "", "F4", "", "F5", "", "F6", "", "F7", "", "F8", "", "F9", "", "F10", "", "Z", "z"),
			want: hdr("Z", "z"),
		},
		{
			name: "empty list elements",
			in:   hdr("Connection", " , ,X-A,", "X-A", "1", "X-B", "2"),
			want: hdr("X-B", "2"),
		},
		{
			name:        "upgrade kept for a tunnel",
			in:          hdr("Connection", "Upgrade, X-Hop", "Upgrade", "websocket", "X-Hop", "1", "Sec-WebSocket-Key", "k", "Keep-Alive", "1"),
			keepUpgrade: true,
			want:        hdr("Connection", "Upgrade, X-Hop", "Upgrade", "websocket", "Sec-WebSocket-Key", "k"),
		},
		{
			name: "upgrade dropped otherwise",
			in:   hdr("Connection", "Upgrade", "Upgrade", "websocket", "Host2", "h"),
			want: hdr("Host2", "h"),
		},
		{
			name: "nothing to remove",
			in:   hdr("Content-Type", "text/plain", "Content-Length", "3"),
			want: hdr("Content-Type", "text/plain", "Content-Length", "3"),
		},
		{
			name: "empty",
			in:   nil,
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.in.Clone()
			removeHopByHop(&h, tt.keepUpgrade)
			if len(h) == 0 && len(tt.want) == 0 {
				return
			}
			if !reflect.DeepEqual(h, tt.want) {
				t.Errorf("got  %v\nwant %v", h, tt.want)
			}
		})
	}
}

func TestSetForwarded(t *testing.T) {
	v4 := netip.MustParseAddr("192.0.2.7")
	v6 := netip.MustParseAddr("2001:db8::1")
	mapped := netip.MustParseAddr("::ffff:192.0.2.9")
	tests := []struct {
		name    string
		remote  netip.Addr
		trusted bool
		host    string
		scheme  string
		in      message.Header
		want    message.Header
	}{
		{
			name: "untrusted v4, nothing prior", remote: v4, host: "example.com", scheme: "http",
			want: hdr("X-Forwarded-For", "192.0.2.7", "X-Forwarded-Proto", "http", "X-Forwarded-Host", "example.com",
				"Forwarded", "for=192.0.2.7;host=example.com;proto=http"),
		},
		{
			name: "untrusted peer cannot forge", remote: v4, host: "example.com", scheme: "https",
			in: hdr("X-Forwarded-For", "10.0.0.1", "x-forwarded-for", "10.0.0.2", "X-Forwarded-Proto", "https",
				"X-Forwarded-Host", "evil.example", "Forwarded", "for=10.0.0.1"),
			want: hdr("X-Forwarded-For", "192.0.2.7", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "example.com",
				"Forwarded", "for=192.0.2.7;host=example.com;proto=https"),
		},
		{
			name: "trusted peer's values are extended", remote: v4, trusted: true, host: "example.com", scheme: "http",
			in: hdr("X-Forwarded-For", "203.0.113.1", "X-Forwarded-For", "198.51.100.2", "X-Forwarded-Proto", "https",
				"X-Forwarded-Host", "orig.example", "Forwarded", `for=203.0.113.1;proto=https`),
			want: hdr("X-Forwarded-For", "203.0.113.1, 198.51.100.2, 192.0.2.7", "X-Forwarded-Proto", "https",
				"X-Forwarded-Host", "orig.example",
				"Forwarded", `for=203.0.113.1;proto=https, for=192.0.2.7;host=example.com;proto=http`),
		},
		{
			name: "trusted peer without prior values", remote: v4, trusted: true, host: "example.com", scheme: "http",
			want: hdr("X-Forwarded-For", "192.0.2.7", "X-Forwarded-Proto", "http", "X-Forwarded-Host", "example.com",
				"Forwarded", "for=192.0.2.7;host=example.com;proto=http"),
		},
		{
			name: "IPv6 is bracketed and quoted (RFC 7239 §6)", remote: v6, host: "example.com", scheme: "http",
			want: hdr("X-Forwarded-For", "2001:db8::1", "X-Forwarded-Proto", "http", "X-Forwarded-Host", "example.com",
				"Forwarded", `for="[2001:db8::1]";host=example.com;proto=http`),
		},
		{
			name: "IPv4-mapped IPv6 is shown as IPv4", remote: mapped, host: "example.com", scheme: "http",
			want: hdr("X-Forwarded-For", "192.0.2.9", "X-Forwarded-Proto", "http", "X-Forwarded-Host", "example.com",
				"Forwarded", "for=192.0.2.9;host=example.com;proto=http"),
		},
		{
			name: "host with a port is quoted", remote: v4, host: "example.com:8080", scheme: "http",
			want: hdr("X-Forwarded-For", "192.0.2.7", "X-Forwarded-Proto", "http", "X-Forwarded-Host", "example.com:8080",
				"Forwarded", `for=192.0.2.7;host="example.com:8080";proto=http`),
		},
		{
			name: "IPv6 host literal is quoted", remote: v6, host: "[2001:db8::2]:443", scheme: "https",
			want: hdr("X-Forwarded-For", "2001:db8::1", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "[2001:db8::2]:443",
				"Forwarded", `for="[2001:db8::1]";host="[2001:db8::2]:443";proto=https`),
		},
		{
			name: "no host (HTTP/1.0)", remote: v4, host: "", scheme: "http",
			in:   hdr("X-Forwarded-Host", "forged.example"),
			want: hdr("X-Forwarded-For", "192.0.2.7", "X-Forwarded-Proto", "http", "Forwarded", "for=192.0.2.7;proto=http"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &message.Request{Host: tt.host, Scheme: tt.scheme, Header: tt.in.Clone()}
			setForwarded(req, tt.remote, tt.trusted)
			if !reflect.DeepEqual(req.Header, tt.want) {
				t.Errorf("got  %q\nwant %q", req.Header, tt.want)
			}
		})
	}
}

func TestWriteTokenOrQuoted(t *testing.T) {
	tests := []struct{ in, want string }{
		{"example.com", "example.com"},
		{"a:b", `"a:b"`},
		{`we"ird\`, `"we\"ird\\"`},
		{"", `""`},
		{"a b", `"a b"`},
	}
	for _, tt := range tests {
		var b strings.Builder
		writeTokenOrQuoted(&b, tt.in)
		if got := b.String(); got != tt.want {
			t.Errorf("writeTokenOrQuoted(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestAddVia(t *testing.T) {
	tests := []struct {
		name  string
		in    message.Header
		proto string
		want  message.Header
	}{
		{"HTTP/1.1", nil, "HTTP/1.1", hdr("Via", "1.1 wedge")},
		{"HTTP/1.0", nil, "HTTP/1.0", hdr("Via", "1.0 wedge")},
		{"HTTP/2", nil, "HTTP/2.0", hdr("Via", "2 wedge")},
		{"HTTP/3", nil, "HTTP/3.0", hdr("Via", "3 wedge")},
		{"other 1.x", nil, "HTTP/1.2", hdr("Via", "1.2 wedge")},
		{"prior entries kept in order", hdr("Via", "1.0 fred", "X", "x", "via", "1.1 p.example (Apache/1.1)"), "HTTP/1.1",
			hdr("Via", "1.0 fred, 1.1 p.example (Apache/1.1), 1.1 wedge", "X", "x")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.in.Clone()
			addVia(&h, tt.proto, "wedge")
			if !reflect.DeepEqual(h, tt.want) {
				t.Errorf("got %q, want %q", h, tt.want)
			}
		})
	}
}

func TestTrustedSet_Contains(t *testing.T) {
	var ts trustedSet
	for _, s := range []string{"10.0.0.0/8", "192.0.2.1", "2001:db8::/32", "::1", "172.16.5.9/12"} {
		p, err := parsePrefix(s)
		if err != nil {
			t.Fatalf("parsePrefix(%q): %v", s, err)
		}
		ts = append(ts, p)
	}
	tests := []struct {
		addr string
		want bool
	}{
		{"10.1.2.3", true},
		{"11.0.0.1", false},
		{"192.0.2.1", true},
		{"192.0.2.2", false},
		{"::ffff:10.9.9.9", true}, // IPv4-mapped peers match IPv4 prefixes
		{"2001:db8:1::5", true},
		{"2001:db9::1", false},
		{"::1", true},
		{"127.0.0.1", false},
		{"172.31.255.255", true}, // the prefix was masked
	}
	for _, tt := range tests {
		if got := ts.contains(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("contains(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	if _, err := parsePrefix("not-an-ip"); err == nil {
		t.Error("parsePrefix accepted garbage")
	}
	if trustedSet(nil).contains(netip.MustParseAddr("10.0.0.1")) {
		t.Error("an empty set trusts someone")
	}
}

func TestIsToken(t *testing.T) {
	for s, want := range map[string]bool{
		"wedge": true, "a.b-c_d~!#$%&'*+^`|": true, "": false, "a b": false, "a:b": false,
		"a/b": false, `a"`: false, "é": false, "a\x00": false,
	} {
		if got := isToken(s); got != want {
			t.Errorf("isToken(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestForwardRequest(t *testing.T) {
	h := &Handler{serverName: "edge", trusted: nil}
	ex := &Exchange{
		Req: message.Request{
			Method: "POST", Target: "/x", Host: "example.com", Scheme: "http", Proto: "HTTP/1.1",
			Header: hdr("Connection", "X-Drop", "X-Drop", "1", "Expect", "100-continue",
				"Transfer-Encoding", "chunked", "Content-Length", "999", "Accept", "a"),
			ContentLength: -1,
		},
		Remote: netip.MustParseAddrPort("192.0.2.1:5555"),
	}
	st := &exchangeState{h: h, ex: ex}
	st.body.Reset(spool.Options{MemLimit: 1 << 10})
	st.body.Write([]byte("hello"))
	st.forwardRequest()
	want := hdr("Accept", "a", "Content-Length", "5",
		"X-Forwarded-For", "192.0.2.1", "X-Forwarded-Proto", "http", "X-Forwarded-Host", "example.com",
		"Forwarded", "for=192.0.2.1;host=example.com;proto=http", "Via", "1.1 edge")
	if !reflect.DeepEqual(ex.Req.Header, want) {
		t.Errorf("got  %q\nwant %q", ex.Req.Header, want)
	}
	if ex.Req.ContentLength != 5 {
		t.Errorf("ContentLength = %d", ex.Req.ContentLength)
	}

	// A GET without a body gets no Content-Length; a POST without one gets 0.
	for method, wantCL := range map[string]string{"GET": "", "POST": "0", "PUT": "0", "DELETE": ""} {
		ex.Req = message.Request{Method: method, Target: "/", Host: "h", Scheme: "http", Proto: "HTTP/1.1"}
		st.body.Reset(spool.Options{})
		st.forwardRequest()
		if got := ex.Req.Header.Get("Content-Length"); got != wantCL {
			t.Errorf("%s: Content-Length %q, want %q", method, got, wantCL)
		}
	}
}

func TestPrepareResponse(t *testing.T) {
	resp := &message.Response{Status: 200, Proto: "HTTP/1.1", Header: hdr(
		"Connection", "X-Internal", "X-Internal", "1", "Transfer-Encoding", "chunked", "Keep-Alive", "5",
		"X-Accel-Redirect", "/p/x", "X-Accel-Buffering", "no", "Date", "Mon, 01 Jan 2024 00:00:00 GMT",
		"Content-Type", "text/plain")}
	prepareResponse(resp, "wedge")
	// X-Accel-Redirect stays for the plugins' response phases.
	want := hdr("X-Accel-Redirect", "/p/x", "Date", "Mon, 01 Jan 2024 00:00:00 GMT", "Content-Type", "text/plain", "Via", "1.1 wedge")
	if !reflect.DeepEqual(resp.Header, want) {
		t.Errorf("got  %q\nwant %q", resp.Header, want)
	}
	resp = &message.Response{Status: 101, Proto: "HTTP/1.1", Header: hdr("Connection", "Upgrade", "Upgrade", "websocket")}
	prepareResponse(resp, "wedge")
	if resp.Header.Get("Upgrade") != "websocket" || resp.Header.Get("Connection") != "Upgrade" || resp.Header.Get("Date") == "" {
		t.Errorf("101 response: %q", resp.Header)
	}
}

func TestWantsStreaming(t *testing.T) {
	tests := []struct {
		h    message.Header
		want bool
	}{
		{hdr("X-Accel-Buffering", "no"), true},
		{hdr("X-Accel-Buffering", " NO "), true},
		{hdr("X-Accel-Buffering", "yes"), false},
		{hdr("Content-Type", "text/event-stream"), true},
		{hdr("Content-Type", "Text/Event-Stream; charset=utf-8"), true},
		{hdr("Content-Type", "text/event"), false},
		{hdr("Content-Type", "text/html"), false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := wantsStreaming(&message.Response{Header: tt.h}); got != tt.want {
			t.Errorf("wantsStreaming(%q) = %v, want %v", tt.h, got, tt.want)
		}
	}
}

func TestIsIdempotent(t *testing.T) {
	for m, want := range map[string]bool{"GET": true, "HEAD": true, "PUT": true, "DELETE": true, "OPTIONS": true,
		"TRACE": true, "POST": false, "PATCH": false, "get": false} {
		if got := isIdempotent(m); got != want {
			t.Errorf("isIdempotent(%s) = %v", m, got)
		}
	}
}

func TestErrorBody(t *testing.T) {
	if got := string(ErrorBody(502)); got != "502 Bad Gateway\n" {
		t.Errorf("ErrorBody(502) = %q", got)
	}
}

func BenchmarkForwardHeaders(b *testing.B) {
	in := hdr("Accept", "*/*", "User-Agent", "bench", "Connection", "keep-alive", "Cookie", "a=b",
		"X-Forwarded-For", "10.0.0.1", "Accept-Encoding", "gzip")
	remote := netip.MustParseAddr("192.0.2.1")
	h := make(message.Header, 0, 16)
	b.ReportAllocs()
	for b.Loop() {
		h = append(h[:0], in...)
		req := message.Request{Host: "example.com", Scheme: "http", Proto: "HTTP/1.1", Header: h}
		removeHopByHop(&req.Header, false)
		setForwarded(&req, remote, false)
		addVia(&req.Header, req.Proto, "wedge")
	}
}
