package listen

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/server/config"
)

// strictUpstream is a raw HTTP/1.1 upstream that parses every request Wedge
// sends it by the letter of RFC 9112 and records anything a back end could
// read two ways: Transfer-Encoding at all (Wedge always forwards a
// Content-Length), more than one Content-Length or Host, a malformed line,
// bare CR or LF, obs-fold, or bytes that do not start a request where the
// previous one ended. It answers each request with a short 200.
type strictUpstream struct {
	ln net.Listener

	mu         sync.Mutex
	requests   int
	violations []string
}

func newStrictUpstream(tb testing.TB) *strictUpstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	u := &strictUpstream{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go u.serve(c)
		}
	}()
	return u
}

func (u *strictUpstream) violate(format string, head string) {
	u.mu.Lock()
	u.violations = append(u.violations, format+": "+strconv.Quote(truncate([]byte(head))))
	u.mu.Unlock()
}

// take returns and clears the violations recorded so far.
func (u *strictUpstream) take() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	v := u.violations
	u.violations = nil
	return v
}

func (u *strictUpstream) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 64<<10)
	for {
		c.SetReadDeadline(time.Now().Add(time.Minute))
		line, err := br.ReadString('\n')
		if err != nil {
			if line != "" {
				u.violate("connection closed inside a request line", line)
			}
			return
		}
		head := line
		method, ok := u.requestLine(line)
		if !ok {
			u.violate("malformed request line", line)
			return
		}
		var (
			lengths, hosts int
			length         int64
			upgrade        bool
		)
		for {
			line, err = br.ReadString('\n')
			head += line
			if err != nil {
				u.violate("connection closed inside a head", head)
				return
			}
			if line == "\r\n" {
				break
			}
			name, value, ok := fieldLine(line)
			if !ok {
				u.violate("malformed field line", head)
				return
			}
			switch strings.ToLower(name) {
			case "transfer-encoding":
				u.violate("Transfer-Encoding forwarded", head)
			case "content-length":
				lengths++
				n, err := strconv.ParseInt(value, 10, 64)
				if err != nil || n < 0 || value[0] == '+' {
					u.violate("invalid Content-Length", head)
					return
				}
				length = n
			case "host":
				hosts++
			case "connection":
				upgrade = upgrade || strings.Contains(strings.ToLower(value), "upgrade")
			case "expect":
				u.violate("Expect forwarded", head)
			}
		}
		if lengths > 1 {
			u.violate("several Content-Length fields", head)
		}
		if hosts > 1 {
			u.violate("several Host fields", head)
		}
		if _, err := io.CopyN(io.Discard, br, length); err != nil {
			u.violate("body shorter than its Content-Length", head)
			return
		}
		u.mu.Lock()
		u.requests++
		u.mu.Unlock()
		resp := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
		if method == "HEAD" {
			resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
		}
		if upgrade {
			resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno"
		}
		if _, err := io.WriteString(c, resp); err != nil || upgrade {
			return
		}
	}
}

// requestLine checks "METHOD SP origin-form SP HTTP/1.1 CRLF".
func (u *strictUpstream) requestLine(line string) (method string, ok bool) {
	if !strings.HasSuffix(line, "\r\n") {
		return "", false
	}
	line = line[:len(line)-2]
	parts := strings.Split(line, " ")
	if len(parts) != 3 || parts[2] != "HTTP/1.1" || !tokenOK(parts[0]) || parts[1] == "" {
		return "", false
	}
	if parts[1][0] != '/' && parts[1] != "*" {
		return "", false
	}
	for i := 0; i < len(parts[1]); i++ {
		if c := parts[1][i]; c <= ' ' || c >= 0x7f {
			return "", false
		}
	}
	return parts[0], true
}

// fieldLine checks "name: value CRLF": a token name, a value without CR,
// LF, NUL or other controls but HTAB, no leading whitespace (obs-fold).
func fieldLine(line string) (name, value string, ok bool) {
	if !strings.HasSuffix(line, "\r\n") {
		return "", "", false
	}
	line = line[:len(line)-2]
	name, value, found := strings.Cut(line, ":")
	if !found || !tokenOK(name) {
		return "", "", false
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < ' ' && c != '\t' || c == 0x7f {
			return "", "", false
		}
	}
	return name, strings.Trim(value, " \t"), true
}

func tokenOK(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// listenerSeeds are malformed and ambiguous framings, request smuggling
// attempts among them, plus well-formed requests to mutate from.
var listenerSeeds = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
	"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
	"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
	// CL.TE and TE.CL
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n",
	// two Content-Lengths, equal and not
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 10\r\n\r\nabcdefghij",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\nabc",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
	// Transfer-Encoding variants
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \tchunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0000000000000000000000005\r\nhello\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nx\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
	// bare CR, bare LF, NUL, bad names
	"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
	"GET / HTTP/1.1\nHost: a\n\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX Y: z\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX\x7f: z\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nno colon\r\n\r\n",
	"GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
	"G\tET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET http://b/x HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET http://u@b/x HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
	"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 4\r\n\r\nbody",
	"GET / HTTP/1.1\r\nHost: a\r\nConnection: Transfer-Encoding, Content-Length\r\nContent-Length: 3\r\n\r\nabc",
	"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/9.9\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
	"",
	"\x00\xff\xfe",
}

// FuzzListener feeds raw bytes over a real TCP connection to an in-process
// Wedge whose upstream checks every request it receives. Wedge must never
// panic or hang (every read is bounded), must answer or close, and must
// never forward a request whose framing a back end could read two ways.
func FuzzListener(f *testing.F) {
	for _, s := range listenerSeeds {
		f.Add([]byte(s))
	}
	// A huge request line and a huge head.
	f.Add([]byte("GET /" + strings.Repeat("a", 20000) + " HTTP/1.1\r\nHost: a\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X: "+strings.Repeat("b", 1000)+"\r\n", 40) + "\r\n"))

	up := newStrictUpstream(f)
	defer up.ln.Close()
	cfg := testConfig(f, up.ln.Addr().String(), func(c *config.Config) {
		c.Limits.ClientHeaderTimeout = config.Duration(2 * time.Second)
		c.Limits.ClientBodyTimeout = config.Duration(2 * time.Second)
		c.Limits.KeepaliveTimeout = config.Duration(2 * time.Second)
		c.Limits.ProxyReadTimeout = config.Duration(5 * time.Second)
		c.Limits.LargeClientHeaderBuffers = config.HeaderBuffers{Number: 4, Size: 2 << 10}
		c.Limits.ClientMaxBodySize = 64 << 10
		c.Limits.ClientBodyBufferSize = 1 << 10
	})
	w := startWedge(f, cfg)

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := net.DialTimeout("tcp", w.addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dialing Wedge: %v", err)
		}
		tc := c.(*net.TCPConn)
		tc.SetLinger(0) // no TIME_WAIT pile-up over a long run
		defer c.Close()
		c.SetDeadline(time.Now().Add(15 * time.Second))
		go func() {
			c.Write(data)
			tc.CloseWrite()
		}()
		got, err := io.ReadAll(c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("Wedge neither answered nor closed within 15s; got %q", truncate(got))
		}
		if len(got) > 0 && !bytes.HasPrefix(data, []byte(h2Preface)) && !bytes.HasPrefix(got, []byte("HTTP/1.1 ")) {
			t.Fatalf("answer does not start with a status line: %q", truncate(got))
		}
		if v := up.take(); len(v) > 0 {
			t.Fatalf("the upstream received an ambiguous request:\n%s", strings.Join(v, "\n"))
		}
	})
}

// TestStrictUpstream checks the checker: requests sent to it straight,
// without Wedge, are flagged exactly when their framing is ambiguous.
func TestStrictUpstream(t *testing.T) {
	up := newStrictUpstream(t)
	defer up.ln.Close()
	tests := []struct {
		req string
		bad bool
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", false},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi", false},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi", true},
		{"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", true},
		{"GET / HTTP/1.0\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\nxyz\r\n", true}, // bytes that start no request
	}
	for _, tt := range tests {
		c, err := net.Dial("tcp", up.ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, tt.req)
		c.(*net.TCPConn).CloseWrite()
		io.ReadAll(c)
		c.Close()
		// the upstream records before it answers or closes
		if v := up.take(); (len(v) > 0) != tt.bad {
			t.Errorf("%q: violations %q, want bad=%v", tt.req, v, tt.bad)
		}
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if up.requests == 0 {
		t.Error("no request was counted")
	}
}
