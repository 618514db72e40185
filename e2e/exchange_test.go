package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestExchange checks what a client and the app see of one keep-alive
// connection through Wedge: pipelined requests answered in order, the
// forwarded fields (X-Forwarded-For replaced for an untrusted client,
// hop-by-hop fields and those named by Connection removed, Via added),
// Expect: 100-continue answered by Wedge, and HEAD.
func TestExchange(t *testing.T) {
	g := startGunicorn(t, 2)
	w := startWedge(t, g.Addr, nil)

	c, err := net.Dial("tcp", w.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	read := func(method string) (*http.Response, []byte) {
		t.Helper()
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("reading response to %s: %v", method, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("reading body of %s: %v", method, err)
		}
		return resp, b
	}

	// Three requests in one write: pipelining (RFC 9112 §9.3.2).
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n"+
		"POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\n\r\nhello"+
		"GET /headers HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: keep-alive, X-Secret\r\n"+
		"X-Secret: s\r\nProxy-Authorization: Basic eDp5\r\nKeep-Alive: timeout=5\r\nX-Kept: yes\r\n\r\n")
	if resp, body := read("GET"); resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("first pipelined response: %d %q", resp.StatusCode, body)
	}
	resp, body := read("POST")
	var up uploadResult
	if err := json.Unmarshal(body, &up); resp.StatusCode != 200 || err != nil || up.Len != 5 {
		t.Fatalf("second pipelined response: %d %q", resp.StatusCode, body)
	}
	resp, body = read("GET")
	if resp.StatusCode != 200 {
		t.Fatalf("third pipelined response: %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("Date") == "" {
		t.Error("response without Date")
	}
	var pairs [][2]string
	if err := json.Unmarshal(body, &pairs); err != nil {
		t.Fatalf("decoding %q: %v", body, err)
	}
	seen := map[string][]string{}
	for _, p := range pairs {
		k := http.CanonicalHeaderKey(p[0])
		seen[k] = append(seen[k], p[1])
	}
	want := map[string]string{
		"Host":              "app.test",
		"X-Forwarded-For":   "127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  "app.test",
		"X-Kept":            "yes",
	}
	for k, v := range want {
		if got := seen[k]; len(got) != 1 || got[0] != v {
			t.Errorf("app saw %s %q, want %q", k, got, v)
		}
	}
	if v := strings.Join(seen["Via"], ", "); !strings.Contains(v, "1.1 wedge") {
		t.Errorf("app saw Via %q, want it to name 1.1 wedge", v)
	}
	if f := strings.Join(seen["Forwarded"], ", "); !strings.Contains(f, "for=127.0.0.1") || strings.Contains(f, "6.6.6.6") {
		t.Errorf("app saw Forwarded %q", f)
	}
	for _, k := range []string{"X-Secret", "Proxy-Authorization", "Keep-Alive", "Transfer-Encoding"} {
		if v, ok := seen[k]; ok {
			t.Errorf("app saw hop-by-hop field %s %q", k, v)
		}
	}

	// Expect: 100-continue: Wedge says 100 before reading the body.
	io.WriteString(c, "PUT /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("want an interim 100 Continue, got %q, %v", line, err)
	}
	if rest, err := br.ReadString('\n'); err != nil || rest != "\r\n" {
		t.Fatalf("100 Continue with fields or no end: %q, %v", rest, err)
	}
	io.WriteString(c, "hello world")
	resp, body = read("PUT")
	if err := json.Unmarshal(body, &up); resp.StatusCode != 200 || err != nil || up.Len != 11 || up.SHA256 == "" {
		t.Fatalf("response after 100 Continue: %d %q", resp.StatusCode, body)
	}
	if up.ContentLength == nil || *up.ContentLength != "11" {
		t.Errorf("app saw Content-Length %s, want 11", deref(up.ContentLength))
	}

	// HEAD: the length of the GET, no body; the connection goes on.
	io.WriteString(c, "HEAD /big?n=1000 HTTP/1.1\r\nHost: app.test\r\n\r\n")
	resp, body = read("HEAD")
	if resp.StatusCode != 200 || resp.ContentLength != 1000 || len(body) != 0 {
		t.Fatalf("HEAD: %d, Content-Length %d, %d body bytes", resp.StatusCode, resp.ContentLength, len(body))
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
	resp, body = read("GET")
	if resp.StatusCode != 200 || string(body) != "ok" || !resp.Close {
		t.Fatalf("last request: %d %q, close %v", resp.StatusCode, body, resp.Close)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("connection still open after Connection: close (%v)", err)
	}
}
