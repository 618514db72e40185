package listen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/wedgeproxy/wedge/server/config"
)

// seen is what an upstream handler recorded of one request.
type seen struct {
	Method, URI, Proto string
	Header             http.Header
	ContentLength      int64
	TransferEncoding   []string
	Body               []byte
}

// recorder is an upstream handler that records every request and answers
// "ok <path>".
type recorder struct {
	mu   sync.Mutex
	reqs []seen
	next http.Handler // optional: answers instead of "ok"
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, seen{r.Method, r.RequestURI, r.Proto, r.Header.Clone(), r.ContentLength, r.TransferEncoding, body})
	rec.mu.Unlock()
	if rec.next != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec.next.ServeHTTP(w, r)
		return
	}
	io.WriteString(w, "ok "+r.URL.Path)
}

func (rec *recorder) all() []seen {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]seen(nil), rec.reqs...)
}

func (rec *recorder) last(t *testing.T) seen {
	t.Helper()
	all := rec.all()
	if len(all) == 0 {
		t.Fatal("the upstream saw no request")
	}
	return all[len(all)-1]
}

func TestConn_KeepAlive(t *testing.T) {
	var conns atomic.Int32
	rec := &recorder{}
	up := httptest.NewUnstartedServer(rec)
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	up.Start()
	defer up.Close()
	w := startWedge(t, testConfig(t, up.Listener.Addr().String(), nil))
	c := w.dial(t)
	for i := range 5 {
		resp := c.roundTrip("GET", get("/k"+strconv.Itoa(i)))
		requireStatus(t, resp, 200)
		if string(resp.body) != "ok /k"+strconv.Itoa(i) {
			t.Fatalf("body %q", resp.body)
		}
		if resp.Close {
			t.Fatal("Wedge closed a keep-alive connection")
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("the upstream saw %d connections for 5 sequential requests, want 1 (reuse)", n)
	}
	if got := rec.last(t); got.Header.Get("Via") != "1.1 wedge" || got.Header.Get("X-Forwarded-For") != "127.0.0.1" {
		t.Errorf("forwarded fields: Via %q, X-Forwarded-For %q", got.Header.Get("Via"), got.Header.Get("X-Forwarded-For"))
	}

	// Connection: close is honoured.
	resp := c.roundTrip("GET", "GET /bye HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	requireStatus(t, resp, 200)
	if !resp.Close {
		t.Error("no Connection: close on the answer to a closing request")
	}
	if !c.closed(5 * time.Second) {
		t.Error("the connection stayed open after Connection: close")
	}
}

func TestConn_KeepaliveRequests(t *testing.T) {
	w, _ := startProxy(t, &recorder{}, func(c *config.Config) { c.Limits.KeepaliveRequests = 2 })
	c := w.dial(t)
	if resp := c.roundTrip("GET", get("/1")); resp.Close {
		t.Fatal("closed after the first of two requests")
	}
	if resp := c.roundTrip("GET", get("/2")); !resp.Close {
		t.Error("no Connection: close on the last request keepalive_requests allows")
	}
	if !c.closed(5 * time.Second) {
		t.Error("still open past keepalive_requests")
	}
}

func TestConn_Pipelined(t *testing.T) {
	rec := &recorder{}
	w, _ := startProxy(t, rec, nil)
	c := w.dial(t)
	var reqs strings.Builder
	for i := range 10 {
		if i == 4 {
			reqs.WriteString("POST /p4 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
			continue
		}
		if i == 7 {
			reqs.WriteString("POST /p7 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
			continue
		}
		reqs.WriteString(get("/p" + strconv.Itoa(i)))
	}
	c.send(reqs.String())
	for i := range 10 {
		resp := c.read("GET")
		requireStatus(t, resp, 200)
		if want := "ok /p" + strconv.Itoa(i); string(resp.body) != want {
			t.Fatalf("response %d: %q, want %q", i, resp.body, want)
		}
	}
	all := rec.all()
	if len(all) != 10 || string(all[4].Body) != "hello" || string(all[7].Body) != "abc" {
		t.Errorf("upstream saw %d requests; bodies %q %q", len(all), all[4].Body, all[7].Body)
	}
}

func TestConn_HTTP10(t *testing.T) {
	rec := &recorder{}
	w, _ := startProxy(t, rec, nil)
	t.Run("keep-alive", func(t *testing.T) {
		c := w.dial(t)
		for i := range 3 {
			c.send("GET /old" + strconv.Itoa(i) + " HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
			resp := c.read("GET")
			requireStatus(t, resp, 200)
			if resp.Header.Get("Connection") != "keep-alive" || resp.Close {
				t.Fatalf("HTTP/1.0 keep-alive answered with Connection %q", resp.Header.Get("Connection"))
			}
			if resp.ContentLength != int64(len(resp.body)) {
				t.Fatalf("Content-Length %d for %d bytes", resp.ContentLength, len(resp.body))
			}
		}
		if got := rec.last(t); got.Proto != "HTTP/1.1" {
			t.Errorf("upstream request proto %s, want HTTP/1.1", got.Proto)
		}
	})
	t.Run("close", func(t *testing.T) {
		c := w.dial(t)
		resp := c.roundTrip("GET", "GET /old HTTP/1.0\r\n\r\n")
		requireStatus(t, resp, 200)
		if !c.closed(5 * time.Second) {
			t.Error("an HTTP/1.0 connection without keep-alive stayed open")
		}
	})
}

func TestConn_ExpectContinue(t *testing.T) {
	rec := &recorder{}
	w, _ := startProxy(t, rec, func(c *config.Config) { c.Limits.ClientMaxBodySize = 1000 })
	t.Run("continue", func(t *testing.T) {
		c := w.dial(t)
		c.send("PUT /up HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
		line, err := c.br.ReadString('\n')
		if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
			t.Fatalf("first line %q, %v; want 100 Continue", line, err)
		}
		if blank, _ := c.br.ReadString('\n'); blank != "\r\n" {
			t.Fatalf("100 Continue followed by %q", blank)
		}
		c.send("hello world")
		resp := c.read("PUT")
		requireStatus(t, resp, 200)
		got := rec.last(t)
		if hasHeader(got.Header, "Expect") {
			t.Error("the upstream saw Expect")
		}
		if string(got.Body) != "hello world" || got.ContentLength != 11 {
			t.Errorf("upstream body %q, Content-Length %d", got.Body, got.ContentLength)
		}
	})
	t.Run("too large", func(t *testing.T) {
		before := len(rec.all())
		c := w.dial(t)
		c.send("PUT /up HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\nExpect: 100-continue\r\n\r\n")
		line, err := c.br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 413 ") {
			t.Fatalf("first line %q, %v; want 413 without 100", line, err)
		}
		if len(rec.all()) != before {
			t.Error("the upstream saw a request refused with 413")
		}
	})
	t.Run("HTTP/1.0 gets no 100", func(t *testing.T) {
		c := w.dial(t)
		c.send("PUT /up HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi")
		resp := c.read("PUT")
		requireStatus(t, resp, 200)
	})
}

func TestConn_BodyLimit(t *testing.T) {
	rec := &recorder{}
	w, _ := startProxy(t, rec, func(c *config.Config) { c.Limits.ClientMaxBodySize = 100 })
	t.Run("declared", func(t *testing.T) {
		c := w.dial(t)
		resp := c.roundTrip("POST", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n")
		requireStatus(t, resp, 413)
		if !resp.Close || !c.closed(5*time.Second) {
			t.Error("the connection stayed open after 413 with the body unread")
		}
	})
	t.Run("chunked", func(t *testing.T) {
		c := w.dial(t)
		body := strings.Repeat("x", 150)
		resp := c.roundTrip("POST", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n96\r\n"+body+"\r\n0\r\n\r\n")
		requireStatus(t, resp, 413)
	})
	if n := len(rec.all()); n != 0 {
		t.Errorf("the upstream saw %d requests over client_max_body_size", n)
	}
}

func TestConn_ChunkedUpload(t *testing.T) {
	rec := &recorder{}
	w, _ := startProxy(t, rec, func(c *config.Config) {
		c.Limits.ClientMaxBodySize = 8 << 20
		c.Limits.ClientBodyBufferSize = 16 << 10 // spills to a temp file
	})
	body := pattern(3<<20 + 17)
	var req bytes.Buffer
	req.WriteString("POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n")
	for rest := body; len(rest) > 0; {
		n := min(len(rest), 1+len(rest)%70000)
		fmt.Fprintf(&req, "%x;ext=1\r\n", n)
		req.Write(rest[:n])
		req.WriteString("\r\n")
		rest = rest[n:]
	}
	req.WriteString("0\r\nX-T: trailer\r\n\r\n")
	c := w.dial(t)
	go c.c.Write(req.Bytes())
	resp := c.read("POST")
	requireStatus(t, resp, 200)
	got := rec.last(t)
	if got.ContentLength != int64(len(body)) || got.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
		t.Errorf("upstream Content-Length %d (%q), want %d", got.ContentLength, got.Header.Get("Content-Length"), len(body))
	}
	if len(got.TransferEncoding) != 0 || hasHeader(got.Header, "Transfer-Encoding") || hasHeader(got.Header, "Trailer") {
		t.Errorf("upstream saw Transfer-Encoding %v / Trailer", got.TransferEncoding)
	}
	if sum(got.Body) != sum(body) {
		t.Error("upstream body differs from the chunks sent")
	}
	if ents, _ := os.ReadDir(w.cfg.Limits.TempPath); len(ents) != 0 {
		t.Errorf("%d files left in temp_path", len(ents))
	}
}

// TestConn_BufferedUpload: the upstream sees nothing until the whole body
// has arrived.
func TestConn_BufferedUpload(t *testing.T) {
	rec := &recorder{}
	w, _ := startProxy(t, rec, nil)
	c := w.dial(t)
	c.send("POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello")
	time.Sleep(200 * time.Millisecond)
	if n := len(rec.all()); n != 0 {
		t.Fatalf("the upstream saw the request before its body was complete")
	}
	c.send("world")
	requireStatus(t, c.read("POST"), 200)
	if got := rec.last(t); string(got.Body) != "helloworld" {
		t.Errorf("body %q", got.Body)
	}
}

func TestConn_HEAD(t *testing.T) {
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1234")
		w.Header().Set("X-Method", r.Method)
		if r.Method != "HEAD" {
			w.Write(make([]byte, 1234))
		}
	})
	w, _ := startProxy(t, up, nil)
	c := w.dial(t)
	for range 2 {
		resp := c.roundTrip("HEAD", "HEAD /h HTTP/1.1\r\nHost: a\r\n\r\n")
		requireStatus(t, resp, 200)
		if resp.Header.Get("X-Method") != "HEAD" {
			t.Errorf("upstream saw %s", resp.Header.Get("X-Method"))
		}
		if got := resp.Header.Get("Content-Length"); got != "1234" {
			t.Errorf("HEAD Content-Length %q, want the upstream's 1234", got)
		}
	}
	// The connection is still in step: no stray body bytes.
	resp := c.roundTrip("GET", get("/h"))
	if len(resp.body) != 1234 {
		t.Errorf("GET after HEAD: %d bytes", len(resp.body))
	}
}

func TestConn_NoBodyStatuses(t *testing.T) {
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(204)
		case "/304":
			w.Header().Set("ETag", `"x"`)
			w.WriteHeader(304)
		default:
			io.WriteString(w, "after")
		}
	})
	w, _ := startProxy(t, up, nil)
	c := w.dial(t)
	for _, p := range []string{"/204", "/304", "/204"} {
		c.send(get(p))
		resp, err := http.ReadResponse(c.br, &http.Request{Method: "GET"})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if strconv.Itoa(resp.StatusCode) != p[1:] {
			t.Fatalf("status %d for %s", resp.StatusCode, p)
		}
		if resp.Header.Get("Transfer-Encoding") != "" || resp.TransferEncoding != nil {
			t.Errorf("%s with Transfer-Encoding", p)
		}
	}
	// Had Wedge sent a body or chunked framing, this would be out of step.
	resp := c.roundTrip("GET", get("/after"))
	if string(resp.body) != "after" {
		t.Errorf("after 204/304: %q", resp.body)
	}
}

// TestConn_Streaming: X-Accel-Buffering: no and text/event-stream are
// relayed as they come: the client reads the first event before the
// upstream writes the second.
func TestConn_Streaming(t *testing.T) {
	for _, tc := range []struct{ name, field, value string }{
		{"X-Accel-Buffering", "X-Accel-Buffering", "no"},
		{"event-stream", "Content-Type", "text/event-stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proceed := make(chan struct{})
			up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set(tc.field, tc.value)
				io.WriteString(w, "data: one\n\n")
				w.(http.Flusher).Flush()
				select {
				case <-proceed:
				case <-time.After(15 * time.Second):
				}
				io.WriteString(w, "data: two\n\n")
			})
			w, _ := startProxy(t, up, nil)
			c := w.dial(t)
			c.send(get("/events"))
			resp, err := http.ReadResponse(c.br, &http.Request{Method: "GET"})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Header.Get("X-Accel-Buffering") != "" {
				t.Error("X-Accel-Buffering passed on to the client")
			}
			c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			first := make([]byte, len("data: one\n\n"))
			if _, err := io.ReadFull(resp.Body, first); err != nil {
				t.Fatalf("the first event did not arrive before the second was written: %v", err)
			}
			close(proceed)
			c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
			rest, err := io.ReadAll(resp.Body)
			if err != nil || string(first)+string(rest) != "data: one\n\ndata: two\n\n" {
				t.Fatalf("stream %q%q, %v", first, rest, err)
			}
			// The connection is reusable after a chunked stream.
			if r := c.roundTrip("GET", get("/events2")); r.StatusCode != 200 {
				t.Errorf("request after the stream: %d", r.StatusCode)
			}
		})
	}
}

// TestConn_Upgrade tunnels a WebSocket-style upgrade to a raw upstream that
// answers 101 and echoes bytes.
func TestConn_Upgrade(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	heads := make(chan string, 4)
	go func() {
		for {
			uc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer uc.Close()
				br := bufio.NewReader(uc)
				var head strings.Builder
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					head.WriteString(line)
					if line == "\r\n" {
						break
					}
				}
				heads <- head.String()
				io.WriteString(uc, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
				io.Copy(uc, br)
			}()
		}
	}()
	w := startWedge(t, testConfig(t, ln.Addr().String(), nil))
	c := w.dial(t)
	// Bytes sent right behind the head must reach the upstream too.
	c.send("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: echo\r\nSec-WebSocket-Key: k\r\n\r\nearly")
	resp, err := http.ReadResponse(c.br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "echo" {
		t.Fatalf("status %d, Upgrade %q", resp.StatusCode, resp.Header.Get("Upgrade"))
	}
	head := <-heads
	for _, want := range []string{"Connection: Upgrade\r\n", "Upgrade: echo\r\n", "Sec-WebSocket-Key: k\r\n", "X-Forwarded-For: 127.0.0.1\r\n"} {
		if !strings.Contains(head, want) {
			t.Errorf("upstream head lacks %q:\n%s", want, head)
		}
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(c.br, got); err != nil || string(got) != "early" {
		t.Fatalf("echo of early bytes: %q, %v", got, err)
	}
	for _, msg := range []string{"ping", strings.Repeat("z", 100<<10)} {
		go c.send(msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c.br, got); err != nil || string(got) != msg {
			t.Fatalf("echo: %d bytes, %v", len(got), err)
		}
	}
	c.c.(*net.TCPConn).CloseWrite()
	if !c.closed(5 * time.Second) {
		t.Error("the tunnel stayed open after the client closed its side")
	}
}

// TestConn_UpgradeRefused: an upstream that answers an upgrade with 200
// sends an ordinary response, and the connection closes.
func TestConn_UpgradeRefused(t *testing.T) {
	w, _ := startProxy(t, &recorder{}, nil)
	c := w.dial(t)
	resp := c.roundTrip("GET", "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	requireStatus(t, resp, 200)
	if string(resp.body) != "ok /ws" {
		t.Errorf("body %q", resp.body)
	}
}

func h2Client() *http.Client {
	return &http.Client{Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}, Timeout: 20 * time.Second}
}

func TestH2C(t *testing.T) {
	rec := &recorder{next: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Connection", "keep-alive") // hop-by-hop: must not reach an HTTP/2 client
		fmt.Fprintf(w, "%s %s %d %s", r.Method, r.URL.Path, len(b), sum(b))
	})}
	w, _ := startProxy(t, rec, func(c *config.Config) {
		c.Limits.ClientMaxBodySize = 4 << 20
	})
	hc := h2Client()
	resp, err := hc.Get("http://" + w.addr + "/h2get?q=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || string(b) != "GET /h2get 0 "+sum(nil) {
		t.Fatalf("GET over h2c: %s %d %q", resp.Proto, resp.StatusCode, b)
	}
	if got := rec.last(t); got.URI != "/h2get?q=1" || got.Header.Get("Via") != "2 wedge" || got.Proto != "HTTP/1.1" {
		t.Errorf("upstream saw %s %s via %q", got.Proto, got.URI, got.Header.Get("Via"))
	}

	body := pattern(1<<20 + 3)
	for _, known := range []bool{true, false} {
		var r io.Reader = bytes.NewReader(body)
		if !known {
			r = io.MultiReader(r) // hides the length: no content-length on the stream
		}
		req, _ := http.NewRequest("POST", "http://"+w.addr+"/h2post", r)
		resp, err = hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("POST /h2post %d %s", len(body), sum(body)); string(b) != want {
			t.Fatalf("POST over h2c (length known %v): %q, want %q", known, b, want)
		}
		got := rec.last(t)
		if got.ContentLength != int64(len(body)) || len(got.TransferEncoding) != 0 {
			t.Errorf("upstream Content-Length %d, Transfer-Encoding %v", got.ContentLength, got.TransferEncoding)
		}
	}

	// HEAD keeps the upstream's length over HTTP/2 too.
	req, _ := http.NewRequest("HEAD", "http://"+w.addr+"/h2get", nil)
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("HEAD over h2c: %d", resp.StatusCode)
	}
}

func TestH2C_Streaming(t *testing.T) {
	proceed := make(chan struct{})
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-proceed:
		case <-time.After(15 * time.Second):
		}
		io.WriteString(w, "data: two\n\n")
	})
	w, _ := startProxy(t, up, nil)
	resp, err := h2Client().Get("http://" + w.addr + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, len("data: one\n\n"))
	done := make(chan error, 1)
	go func() { _, err := io.ReadFull(resp.Body, first); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first event did not arrive over h2c before the second was written")
	}
	close(proceed)
	rest, _ := io.ReadAll(resp.Body)
	if string(first)+string(rest) != "data: one\n\ndata: two\n\n" {
		t.Errorf("stream %q%q", first, rest)
	}
}

func TestServer_MaxConnections(t *testing.T) {
	w, _ := startProxy(t, &recorder{}, func(c *config.Config) { c.Limits.MaxConnections = 2 })
	c1, c2 := w.dial(t), w.dial(t)
	requireStatus(t, c1.roundTrip("GET", get("/1")), 200)
	requireStatus(t, c2.roundTrip("GET", get("/2")), 200)
	c3 := w.dial(t)
	c3.c.Write([]byte(get("/3"))) // may fail: the connection is closed at once
	if !c3.closed(5 * time.Second) {
		t.Fatal("a connection past max_connections was not closed at once")
	}
	// Closing one makes room again.
	c1.c.Close()
	waitFor(t, func() bool {
		c := w.dial(t)
		c.c.Write([]byte(get("/4")))
		resp, err := http.ReadResponse(c.br, &http.Request{Method: "GET"})
		return err == nil && resp.StatusCode == 200
	})
}

func TestServer_MaxConnectionsPerIP(t *testing.T) {
	w, _ := startProxy(t, &recorder{}, func(c *config.Config) { c.Limits.MaxConnectionsPerIP = 1 })
	c1 := w.dial(t)
	requireStatus(t, c1.roundTrip("GET", get("/1")), 200)
	c2 := w.dial(t)
	c2.c.Write([]byte(get("/2")))
	if !c2.closed(5 * time.Second) {
		t.Fatal("a second connection from one address was not closed at once")
	}
	requireStatus(t, c1.roundTrip("GET", get("/3")), 200) // the first one is unharmed
}

// waitFor polls cond every 20 ms for up to 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func staticDirs(t *testing.T) (public, protected string) {
	t.Helper()
	dir := t.TempDir()
	public, protected = filepath.Join(dir, "public"), filepath.Join(dir, "protected")
	for name, data := range map[string]string{
		"public/a.txt":         "static file\n",
		"public/big.bin":       string(pattern(300 << 10)),
		"protected/report.txt": "secret report\n",
	} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return public, protected
}

func TestProxy_Static(t *testing.T) {
	public, protected := staticDirs(t)
	rec := &recorder{next: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/download":
			w.Header().Set("X-Accel-Redirect", "/protected/report.txt")
			w.Header().Set("Content-Disposition", `attachment; filename="report.txt"`)
			io.WriteString(w, "this body is dropped")
		default:
			http.NotFound(w, r)
		}
	})}
	w, _ := startProxy(t, rec, func(c *config.Config) {
		routes, _ := json.Marshal(map[string]any{"routes": []map[string]any{
			{"path": "/static/", "strip_prefix": "/static", "static": map[string]string{"root": public}},
			{"path": "/protected/", "strip_prefix": "/protected", "internal": true, "static": map[string]string{"root": protected}},
			{"upstream": "app"},
		}})
		routeAll(c, string(routes))
	})
	c := w.dial(t)

	resp := c.roundTrip("GET", get("/static/a.txt"))
	requireStatus(t, resp, 200)
	if string(resp.body) != "static file\n" {
		t.Errorf("static body %q", resp.body)
	}
	resp = c.roundTrip("HEAD", "HEAD /static/big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
	requireStatus(t, resp, 200)
	if resp.Header.Get("Content-Length") != strconv.Itoa(300<<10) {
		t.Errorf("static HEAD Content-Length %q", resp.Header.Get("Content-Length"))
	}
	resp = c.roundTrip("GET", get("/static/big.bin"))
	if sum(resp.body) != sum(pattern(300<<10)) {
		t.Error("static big file differs (sendfile path)")
	}
	if n := len(rec.all()); n != 0 {
		t.Errorf("the upstream saw %d requests for static files", n)
	}

	resp = c.roundTrip("GET", get("/download"))
	requireStatus(t, resp, 200)
	if string(resp.body) != "secret report\n" {
		t.Errorf("X-Accel-Redirect body %q", resp.body)
	}
	if resp.Header.Get("Content-Disposition") != `attachment; filename="report.txt"` || resp.Header.Get("X-Accel-Redirect") != "" {
		t.Errorf("X-Accel-Redirect fields: %v", resp.Header)
	}

	// An internal mount is not reachable directly: the request goes to the app.
	resp = c.roundTrip("GET", get("/protected/report.txt"))
	if resp.StatusCode == 200 || strings.Contains(string(resp.body), "secret") {
		t.Errorf("internal mount served directly: %d %q", resp.StatusCode, resp.body)
	}
	requireStatus(t, c.roundTrip("GET", get("/after")), 404)
}

// TestProxy_LargeResponse: a response past proxy_buffer_size spills to a
// temp file and arrives byte-exact, with the upstream freed before the
// client reads; past proxy_max_temp_file_size it is relayed as it comes.
func TestProxy_LargeResponse(t *testing.T) {
	const size = 5<<20 + 123
	body := pattern(size)
	var finished atomic.Int32
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(size))
		}
		for rest := body; len(rest) > 0; {
			n := min(len(rest), 100_000)
			w.Write(rest[:n])
			rest = rest[n:]
		}
		finished.Add(1)
	})
	for _, tc := range []struct {
		name    string
		maxTemp config.Size
	}{
		{"spilled", 1 << 30},
		{"past max temp file", 1 << 20},
		{"no temp files", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, _ := startProxy(t, up, func(c *config.Config) {
				c.Limits.ProxyBufferSize = 64 << 10
				c.Limits.ProxyMaxTempFileSize = tc.maxTemp
			})
			c := w.dial(t)
			for _, q := range []string{"", "?chunked=1"} {
				before := finished.Load()
				c.send(get("/big" + q))
				if tc.maxTemp == 1<<30 {
					// Buffered: the upstream finishes while the client has read nothing.
					waitFor(t, func() bool { return finished.Load() > before })
				}
				resp := c.read("GET")
				requireStatus(t, resp, 200)
				if len(resp.body) != size || sum(resp.body) != sum(body) {
					t.Fatalf("%s: %d bytes, want %d byte-exact", q, len(resp.body), size)
				}
			}
			if ents, _ := os.ReadDir(w.cfg.Limits.TempPath); len(ents) != 0 {
				t.Errorf("%d files left in temp_path", len(ents))
			}
		})
	}
}

func TestProxy_UpstreamDown(t *testing.T) {
	w := startWedge(t, testConfig(t, unusedUpstream, nil))
	c := w.dial(t)
	resp := c.roundTrip("GET", get("/"))
	requireStatus(t, resp, 502)
	if string(resp.body) != "502 Bad Gateway\n" {
		t.Errorf("body %q", resp.body)
	}
	// HEAD to a failing upstream: an error without a body.
	resp = c.roundTrip("HEAD", "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
	requireStatus(t, resp, 502)
	requireStatus(t, c.roundTrip("GET", get("/")), 502)
}

func TestConn_BadRequests(t *testing.T) {
	rec := &recorder{}
	w, _ := startProxy(t, rec, func(c *config.Config) {
		c.Limits.LargeClientHeaderBuffers = config.HeaderBuffers{Number: 2, Size: 1 << 10}
	})
	tests := []struct {
		name, req string
		status    int
	}{
		{"CL and TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"two CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400},
		{"space before colon", "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", 400},
		{"TE not chunked last", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400},
		{"TE gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
		{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"bad version", "GET / HTTP/2.5\r\nHost: a\r\n\r\n", 505},
		{"CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 501},
		{"long target", "GET /" + strings.Repeat("a", 2000) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
		{"long head", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-Long: "+strings.Repeat("b", 900)+"\r\n", 4) + "\r\n", 431},
		{"bad chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := w.dial(t)
			resp := c.roundTrip("GET", tt.req)
			requireStatus(t, resp, tt.status)
			if !c.closed(5 * time.Second) {
				t.Error("the connection stayed open after a malformed request")
			}
		})
	}
	if n := len(rec.all()); n != 0 {
		t.Errorf("the upstream saw %d malformed requests", n)
	}
}

func TestConn_Timeouts(t *testing.T) {
	rec := &recorder{}
	w, _ := startProxy(t, rec, func(c *config.Config) {
		c.Limits.ClientHeaderTimeout = config.Duration(300 * time.Millisecond)
		c.Limits.ClientBodyTimeout = config.Duration(300 * time.Millisecond)
		c.Limits.KeepaliveTimeout = config.Duration(300 * time.Millisecond)
	})
	t.Run("header", func(t *testing.T) {
		c := w.dial(t)
		c.send("GET / HTTP/1.1\r\nHo")
		resp := c.read("GET")
		requireStatus(t, resp, 408)
	})
	t.Run("body", func(t *testing.T) {
		c := w.dial(t)
		c.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
		resp := c.read("POST")
		requireStatus(t, resp, 408)
	})
	t.Run("idle keep-alive closes silently", func(t *testing.T) {
		c := w.dial(t)
		requireStatus(t, c.roundTrip("GET", get("/")), 200)
		c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c.br)
		if err != nil || len(b) != 0 {
			t.Errorf("idle close sent %q, %v", b, err)
		}
	})
	if n := len(rec.all()); n != 1 {
		t.Errorf("the upstream saw %d requests, want 1", n)
	}
}

// TestServer_Shutdown: a request in flight finishes, idle connections are
// closed, new ones refused.
func TestServer_Shutdown(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		io.WriteString(w, "done")
	}))
	up.Start()
	defer up.Close()
	cfg := testConfig(t, up.Listener.Addr().String(), nil)
	h, err := newHandler(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := New(h, cfg.Limits, Options{})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go s.Serve(ln)
	w := &testWedge{srv: s, h: h, cfg: cfg, addr: ln.Addr().String()}

	idle := w.dial(t)
	requireStatus(t, idle.roundTrip("GET", get("/")), 200)
	busy := w.dial(t)
	busy.send(get("/slow"))
	<-started

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	if !idle.closed(5 * time.Second) {
		t.Error("an idle connection stayed open during shutdown")
	}
	waitFor(t, func() bool {
		c, err := net.Dial("tcp", w.addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(release)
	resp := busy.read("GET")
	requireStatus(t, resp, 200)
	if string(resp.body) != "done" || !resp.Close {
		t.Errorf("in-flight request: %q, Close %v", resp.body, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	h.Close(context.Background())
}

// TestServer_SetHandler swaps the pipeline under a running client loop:
// no request fails.
func TestServer_SetHandler(t *testing.T) {
	upA := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "A") }))
	upB := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "B") }))
	upA.Start()
	upB.Start()
	defer upA.Close()
	defer upB.Close()
	cfgA := testConfig(t, upA.Listener.Addr().String(), nil)
	cfgB := testConfig(t, upB.Listener.Addr().String(), nil)
	w := startWedge(t, cfgA)

	var failures, done atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Timeout: 10 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := hc.Get("http://" + w.addr + "/")
				if err != nil {
					failures.Add(1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || (string(b) != "A" && string(b) != "B") {
					failures.Add(1)
				}
				done.Add(1)
			}
		}()
	}
	cfgs := []*config.Config{cfgB, cfgA}
	for i := range 20 {
		cfg := cfgs[i%2]
		h, err := newHandler(t, cfg)
		if err != nil {
			t.Fatal(err)
		}
		old := w.srv.SetHandler(h, cfg.Limits)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		old.Close(ctx) // as server.Reload does, at once
		cancel()
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Errorf("%d of %d requests failed across reloads", n, done.Load())
	}
}

// TestConn_ShortRequestStartingWithP: a request shorter than the HTTP/2
// preface whose method starts with P is answered at once, not after
// client_header_timeout.
func TestConn_ShortRequestStartingWithP(t *testing.T) {
	w, _ := startProxy(t, &recorder{}, func(c *config.Config) {
		c.Limits.ClientHeaderTimeout = config.Duration(20 * time.Second)
	})
	c := w.dial(t)
	c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp := c.roundTrip("POST", "POST / HTTP/1.0\r\n\r\n") // 19 bytes
	requireStatus(t, resp, 200)
}

// TestConn_StreamingHTTP10: a streamed response of unknown length to an
// HTTP/1.0 client is delimited by closing the connection.
func TestConn_StreamingHTTP10(t *testing.T) {
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		io.WriteString(w, "data: two\n\n")
	})
	w, _ := startProxy(t, up, nil)
	c := w.dial(t)
	c.send("GET /events HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	resp := c.read("GET")
	requireStatus(t, resp, 200)
	if string(resp.body) != "data: one\n\ndata: two\n\n" || resp.TransferEncoding != nil {
		t.Errorf("body %q, Transfer-Encoding %v", resp.body, resp.TransferEncoding)
	}
}

// TestConn_SendTimeout: a client that stops reading a large response is
// disconnected once send_timeout passes without progress.
func TestConn_SendTimeout(t *testing.T) {
	const size = 64 << 20
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(make([]byte, size))
	})
	w, _ := startProxy(t, up, func(c *config.Config) {
		c.Limits.SendTimeout = config.Duration(300 * time.Millisecond)
		c.Limits.ProxyBufferSize = 1 << 20
	})
	c := w.dial(t)
	c.c.(*net.TCPConn).SetReadBuffer(16 << 10)
	c.send(get("/big"))
	// Once the response has started (the whole 64 MiB is buffered first,
	// which takes a while under -race), read nothing: Wedge's writes stall.
	c.c.SetReadDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.br.Peek(1); err != nil {
		t.Fatalf("no response: %v", err)
	}
	time.Sleep(2 * time.Second)
	n, err := io.Copy(io.Discard, c.br)
	if n >= size {
		t.Fatalf("the whole response arrived (%d bytes, %v): the stalled client was never cut off", n, err)
	}
}
