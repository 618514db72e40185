package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/server/config"
)

// badMarker is in the target of every request that must never reach
// Gunicorn; its access log is searched for it at the end.
const badMarker = "e2e-bad-"

// TestLimits checks that each limit and timeout answers its documented
// status (nginx's), writes an error-log line with it, never lets an
// ambiguous request reach Gunicorn, and that the server goes on serving
// after each case.
func TestLimits(t *testing.T) {
	g := startGunicorn(t, 2)
	w := startWedge(t, g.Addr, func(c *config.Config) {
		l := &c.Limits
		l.ClientHeaderTimeout = config.Duration(time.Second)
		l.ClientBodyTimeout = config.Duration(time.Second)
		l.ClientMaxBodySize = 1024
		l.LargeClientHeaderBuffers = config.HeaderBuffers{Number: 2, Size: 1024}
		l.ProxyReadTimeout = config.Duration(time.Second)
	})
	const host = "Host: 127.0.0.1\r\n"
	a := func(n int) string { return strings.Repeat("a", n) }
	chunks := func(n, size int) string {
		var b strings.Builder
		for range n {
			fmt.Fprintf(&b, "%x\r\n%s\r\n", size, a(size))
		}
		return b.String() + "0\r\n\r\n"
	}
	tests := []struct {
		name    string
		payload string
		// trickle, when set, is how many more body bytes (1000-byte chunks,
		// no last chunk) are sent after payload while the response is read:
		// a body the server should stop reading.
		trickle int
		status  int
	}{
		// 400: framing that two parsers could read two ways (request smuggling).
		{"content-length and transfer-encoding", "POST /e2e-bad-clte HTTP/1.1\r\n" + host +
			"Content-Length: 49\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /e2e-bad-smuggled1 HTTP/1.1\r\n" + host + "\r\n", 0, 400},
		{"transfer-encoding and content-length", "POST /e2e-bad-tecl HTTP/1.1\r\n" + host +
			"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGET /e2e-bad-smuggled2 HTTP/1.1\r\n" + host + "\r\n0\r\n\r\n", 0, 400},
		{"two content-length", "POST /e2e-bad-twocl HTTP/1.1\r\n" + host +
			"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 0, 400},
		{"two equal content-length", "POST /e2e-bad-twocl2 HTTP/1.1\r\n" + host +
			"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 0, 400},
		{"content-length list", "POST /e2e-bad-cllist HTTP/1.1\r\n" + host +
			"Content-Length: 5, 5\r\n\r\nhello", 0, 400},
		{"content-length with sign", "POST /e2e-bad-clsign HTTP/1.1\r\n" + host +
			"Content-Length: +5\r\n\r\nhello", 0, 400},
		{"space before colon", "POST /e2e-bad-spcolon HTTP/1.1\r\n" + host +
			"Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\nhello", 0, 400},
		{"chunked not last", "POST /e2e-bad-tenotlast HTTP/1.1\r\n" + host +
			"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 0, 400},
		{"chunked twice", "POST /e2e-bad-techunked2 HTTP/1.1\r\n" + host +
			"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0, 400},
		{"transfer-encoding in HTTP/1.0", "POST /e2e-bad-te10 HTTP/1.0\r\n" + host +
			"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0, 400},
		{"obs-fold", "GET /e2e-bad-fold HTTP/1.1\r\n" + host + "X-A: a\r\n b\r\n\r\n", 0, 400},
		{"bare CR in a field", "GET /e2e-bad-barecr HTTP/1.1\r\n" + host + "X-A: a\rX-B: b\r\n\r\n", 0, 400},
		{"bare CR before the end", "GET /e2e-bad-crcrlf HTTP/1.1\r\n" + host + "\r\r\n", 0, 400},
		{"two hosts", "GET /e2e-bad-twohost HTTP/1.1\r\n" + host + "Host: other\r\n\r\n", 0, 400},
		{"no host", "GET /e2e-bad-nohost HTTP/1.1\r\n\r\n", 0, 400},
		{"bad chunk size", "POST /upload?e2e-bad-chunksize HTTP/1.1\r\n" + host +
			"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 0, 400},

		// 408: client_header_timeout and client_body_timeout (1 s here).
		{"stalled head", "GET /e2e-bad-408head HTTP/1.1\r\n" + host, 0, 408},
		{"stalled body", "POST /upload?e2e-bad-408body HTTP/1.1\r\n" + host +
			"Content-Length: 100\r\n\r\n0123456789", 0, 408},
		{"stalled chunked body", "POST /upload?e2e-bad-408chunked HTTP/1.1\r\n" + host +
			"Transfer-Encoding: chunked\r\n\r\n5\r\nhel", 0, 408},

		// 413: client_max_body_size (1k here), declared or counted.
		{"declared length over the limit", "POST /upload?e2e-bad-413cl HTTP/1.1\r\n" + host +
			"Content-Length: 2048\r\n\r\n", 0, 413},
		{"declared length over the limit, body sent", "POST /upload?e2e-bad-413clbody HTTP/1.1\r\n" + host +
			"Content-Length: 1048576\r\n\r\n", 1 << 20, 413},
		{"chunked over the limit", "POST /upload?e2e-bad-413chunked HTTP/1.1\r\n" + host +
			"Transfer-Encoding: chunked\r\n\r\n" + chunks(2, 1000), 0, 413},
		{"chunked far over the limit, body sent", "POST /upload?e2e-bad-413chunkedbig HTTP/1.1\r\n" + host +
			"Transfer-Encoding: chunked\r\n\r\n", 1 << 20, 413},
		{"expect 100-continue over the limit", "POST /upload?e2e-bad-413expect HTTP/1.1\r\n" + host +
			"Content-Length: 4096\r\nExpect: 100-continue\r\n\r\n", 0, 413},

		// 414 and 431: large_client_header_buffers (2 x 1k here).
		{"long target", "GET /e2e-bad-414?" + a(1100) + " HTTP/1.1\r\n" + host + "\r\n", 0, 414},
		{"long field", "GET /e2e-bad-431field HTTP/1.1\r\n" + host + "X-Big: " + a(1100) + "\r\n\r\n", 0, 431},
		{"large head", "GET /e2e-bad-431head HTTP/1.1\r\n" + host +
			"X-A: " + a(900) + "\r\nX-B: " + a(900) + "\r\nX-C: " + a(900) + "\r\n\r\n", 0, 431},

		// 504: proxy_read_timeout (1 s here) against a 3 s answer.
		{"slow upstream", "GET /sleep?s=3 HTTP/1.1\r\n" + host + "\r\n", 0, 504},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mark := w.Log.Mark()
			c, err := net.Dial("tcp", w.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(15 * time.Second))
			if _, err := io.WriteString(c, tt.payload); err != nil {
				t.Fatalf("writing request: %v", err)
			}
			var trickled sync.WaitGroup
			if tt.trickle > 0 {
				trickled.Add(1)
				go func() { // the server stops reading: this write fails or blocks until c closes
					defer trickled.Done()
					buf := []byte(fmt.Sprintf("%x\r\n%s\r\n", 1000, a(1000)))
					for sent := 0; sent < tt.trickle; sent += len(buf) {
						if _, err := c.Write(buf); err != nil {
							return
						}
					}
				}()
			}
			r := readRaw(t, c)
			c.Close()
			trickled.Wait()
			if r.StatusCode != tt.status {
				t.Fatalf("status %d (%q), want %d", r.StatusCode, r.Body, tt.status)
			}
			if tt.status < 500 && !r.Closed {
				t.Errorf("connection left open after %d", tt.status)
			}
			w.Log.waitStatus(t, mark, tt.status)
			assertServing(t, w)
		})
	}

	t.Run("502 dead upstream", func(t *testing.T) {
		dead := freeAddr(t)
		w := startWedge(t, dead, nil)
		mark := w.Log.Mark()
		r := rawExchange(t, w.Addr, "GET / HTTP/1.1\r\n"+host+"\r\n")
		if r.StatusCode != 502 {
			t.Fatalf("status %d, want 502", r.StatusCode)
		}
		w.Log.waitStatus(t, mark, 502)
		// the upstream comes back: the next request goes through
		ln, err := net.Listen("tcp", dead)
		if err != nil {
			t.Skipf("cannot listen on %s again: %v", dead, err)
		}
		hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })}
		go hs.Serve(ln)
		defer hs.Close()
		assertServing(t, w)
	})

	t.Run("503 queue_timeout", func(t *testing.T) {
		w := startWedge(t, g.Addr, func(c *config.Config) {
			c.Admin.Address = freeAddr(t)
			u := c.Upstreams["app"]
			u.Servers[0].MaxConns = 1
			u.QueueTimeout = config.Duration(500 * time.Millisecond)
		})
		hold := holdSlot(t, w, "/sleep?s=3")
		mark := w.Log.Mark()
		r := rawExchange(t, w.Addr, "GET / HTTP/1.1\r\n"+host+"\r\n")
		if r.StatusCode != 503 || r.Header.Get("Retry-After") == "" {
			t.Fatalf("status %d, Retry-After %q; want 503 with Retry-After", r.StatusCode, r.Header.Get("Retry-After"))
		}
		w.Log.waitStatus(t, mark, 503)
		if err := hold(); err != nil {
			t.Errorf("request holding the slot: %v", err)
		}
		assertServing(t, w)
	})

	t.Run("503 max_queue", func(t *testing.T) {
		w := startWedge(t, g.Addr, func(c *config.Config) {
			c.Admin.Address = freeAddr(t)
			u := c.Upstreams["app"]
			u.Servers[0].MaxConns = 1
			u.MaxQueue = 1
			u.QueueTimeout = config.Duration(20 * time.Second)
		})
		hold := holdSlot(t, w, "/sleep?s=3")
		queued := make(chan error, 1)
		go func() {
			_, err := get(normalClient(20*time.Second), w.URL("/"))
			queued <- err
		}()
		waitMetric(t, w, "wedge_upstream_queued_requests", 1)
		mark := w.Log.Mark()
		r := rawExchange(t, w.Addr, "GET / HTTP/1.1\r\n"+host+"\r\n")
		if r.StatusCode != 503 || r.Header.Get("Retry-After") == "" {
			t.Fatalf("status %d, Retry-After %q; want 503 with Retry-After", r.StatusCode, r.Header.Get("Retry-After"))
		}
		w.Log.waitStatus(t, mark, 503)
		if err := hold(); err != nil {
			t.Errorf("request holding the slot: %v", err)
		}
		if err := <-queued; err != nil {
			t.Errorf("queued request: %v", err)
		}
		assertServing(t, w)
	})

	// Nothing ambiguous or refused reached the app; what was allowed did.
	time.Sleep(200 * time.Millisecond)
	log := g.accessLog(t)
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, badMarker) {
			t.Errorf("a refused request reached Gunicorn: %s", line)
		}
	}
	if !strings.Contains(log, `"GET / HTTP/1.1"`) {
		t.Errorf("Gunicorn's access log lacks the requests that were let through:\n%s", log)
	}
}

// holdSlot starts GET path through w and waits until Wedge counts it as
// active at the upstream; the returned function waits for its end.
func holdSlot(t *testing.T, w *wedge, path string) func() error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := get(normalClient(20*time.Second), w.URL(path))
		done <- err
	}()
	waitMetric(t, w, "wedge_upstream_active_requests", 1)
	return func() error { return <-done }
}

// waitMetric waits (at most 10 s) until the Prometheus metric name on w's
// admin listener reads want.
func waitMetric(t *testing.T, w *wedge, name string, want int) {
	t.Helper()
	c := normalClient(5 * time.Second)
	deadline := time.Now().Add(10 * time.Second)
	suffix := fmt.Sprintf(" %d", want)
	for {
		resp, err := c.Get("http://" + w.Admin + "/metrics")
		if err == nil {
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				line := sc.Text()
				if strings.HasPrefix(line, name) && strings.HasSuffix(line, suffix) {
					resp.Body.Close()
					return
				}
			}
			resp.Body.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("metric %s never reached %d", name, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
