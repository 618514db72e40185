package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wedgeproxy/wedge/server/config"
	"github.com/wedgeproxy/wedge/server/internal/http1"
	"github.com/wedgeproxy/wedge/server/internal/message"
)

// recordingWriter is a ResponseWriter that keeps what the pipeline sends.
type recordingWriter struct {
	mu       sync.Mutex
	status   int
	header   message.Header
	body     bytes.Buffer
	streamed bool
	ended    bool
	failWith error // every write fails with it when set
}

func (w *recordingWriter) WriteResponse(resp *message.Response, body []message.Section) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failWith != nil {
		return w.failWith
	}
	w.status, w.header = resp.Status, resp.Header.Clone()
	for _, s := range body {
		if s.File != nil {
			io.Copy(&w.body, io.NewSectionReader(s.File, s.Offset, s.Length))
		} else {
			w.body.Write(s.Data)
		}
	}
	return nil
}

func (w *recordingWriter) WriteHead(resp *message.Response) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failWith != nil {
		return w.failWith
	}
	w.status, w.header, w.streamed = resp.Status, resp.Header.Clone(), true
	return nil
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failWith != nil {
		return 0, w.failWith
	}
	return w.body.Write(p)
}

func (w *recordingWriter) EndStream() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ended = true
	return nil
}

func (w *recordingWriter) Hijack() (net.Conn, *bufio.Reader, error) {
	return nil, nil, ErrHijackNotSupported
}

func (w *recordingWriter) BytesWritten() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return int64(w.body.Len())
}

// pipelineConfig returns a validated configuration for upstream.
func pipelineConfig(t *testing.T, upstream string, mutate func(*config.Config)) *config.Config {
	t.Helper()
	cfg, err := config.QuickMode([]string{"127.0.0.1:1"}, []string{upstream}, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Log.Access = "off"
	cfg.Plugins = routerChain(`{"routes":[{"upstream":"app"}]}`) // the default route, without cache and compress
	cfg.Limits.TempPath = t.TempDir()
	cfg.Limits.ProxyReadTimeout = config.Duration(5 * time.Second)
	if mutate != nil {
		mutate(cfg)
	}
	cfg.ApplyDefaults() // for the plugins
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newTestHandler(t *testing.T, cfg *config.Config, opt Options) *Handler {
	t.Helper()
	if len(cfg.Plugins) > 0 {
		opt = withHost(t, opt)
	}
	h, err := New(cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return h
}

func exchangeFor(method, target string, body io.Reader, contentLength int64) (*Exchange, *recordingWriter) {
	w := &recordingWriter{}
	return &Exchange{
		Req: message.Request{Method: method, Target: target, Host: "example.com", Scheme: "http",
			Proto: "HTTP/1.1", ContentLength: contentLength},
		Body:   body,
		Remote: netip.MustParseAddrPort("192.0.2.10:4000"),
		Local:  netip.MustParseAddrPort("127.0.0.1:8080"),
		Start:  time.Now(),
		W:      w,
	}, w
}

// rawUpstream serves each connection with handle.
func rawUpstream(t *testing.T, handle func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c, bufio.NewReader(c))
			}()
		}
	}()
	return ln.Addr().String()
}

// readHead reads a request head off br.
func readHead(br *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if line == "\r\n" {
			return b.String(), nil
		}
	}
}

func TestHandler_Serve(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Got", string(b))
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "1")
		io.WriteString(w, "hello "+r.Header.Get("X-Forwarded-For"))
	}))
	defer up.Close()
	var logBuf bytes.Buffer
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	cfg := pipelineConfig(t, up.Listener.Addr().String(), nil)
	h := newTestHandler(t, cfg, Options{AccessLog: slog.New(slog.NewJSONHandler(&logBuf, nil)), Metrics: m})

	ex, w := exchangeFor("POST", "/p?q=1", strings.NewReader("body!"), 5)
	h.Serve(ex)
	if w.status != 200 || w.body.String() != "hello 192.0.2.10" {
		t.Fatalf("%d %q", w.status, w.body.String())
	}
	if w.header.Get("X-Got") != "body!" || w.header.Has("X-Hop") || w.header.Has("Connection") || w.header.Get("Via") != "1.1 wedge" {
		t.Errorf("response header %q", w.header)
	}
	var line map[string]any
	if err := json.Unmarshal(logBuf.Bytes(), &line); err != nil {
		t.Fatalf("access log %q: %v", logBuf.String(), err)
	}
	for k, want := range map[string]any{"status": 200.0, "method": "POST", "uri": "/p?q=1", "remote": "192.0.2.10",
		"request_length": 5.0, "bytes_sent": float64(len("hello 192.0.2.10")), "upstream_status": 200.0} {
		if line[k] != want {
			t.Errorf("access log %s = %v, want %v", k, line[k], want)
		}
	}
	if _, ok := line["error"]; ok {
		t.Errorf("access log has an error: %v", line["error"])
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			switch mf.GetName() {
			case "wedge_http_requests_total":
				if len(mt.GetLabel()) != 1 || mt.GetLabel()[0].GetValue() != "200" || mt.GetCounter().GetValue() != 1 {
					t.Errorf("wedge_http_requests_total: %v", mt)
				}
			case "wedge_http_request_duration_seconds", "wedge_upstream_response_seconds":
				if mt.GetHistogram().GetSampleCount() != 1 {
					t.Errorf("%s: %d samples", mf.GetName(), mt.GetHistogram().GetSampleCount())
				}
			}
			found[mf.GetName()] = true
		}
	}
	if len(found) != 3 {
		t.Errorf("metrics gathered: %v", found)
	}
	if len(h.Pools()) != 1 {
		t.Errorf("Pools() = %d pools", len(h.Pools()))
	}
}

func TestHandler_UpstreamFailures(t *testing.T) {
	tests := []struct {
		name    string
		handle  func(c net.Conn, br *bufio.Reader)
		method  string
		status  int
		timeout time.Duration
	}{
		{
			name: "malformed status line", status: 502,
			handle: func(c net.Conn, br *bufio.Reader) { readHead(br); io.WriteString(c, "HTTP/1.1 abc\r\n\r\n") },
		},
		{
			name: "CL and TE", status: 502,
			handle: func(c net.Conn, br *bufio.Reader) {
				readHead(br)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
			},
		},
		{
			name: "truncated body", status: 502,
			handle: func(c net.Conn, br *bufio.Reader) {
				readHead(br)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..")
			},
		},
		{
			name: "truncated chunked body", status: 502,
			handle: func(c net.Conn, br *bufio.Reader) {
				readHead(br)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
			},
		},
		{
			name: "closed without answer", status: 502,
			handle: func(c net.Conn, br *bufio.Reader) { readHead(br) },
		},
		{
			name: "silent: proxy_read_timeout", status: 504, timeout: 200 * time.Millisecond,
			handle: func(c net.Conn, br *bufio.Reader) { readHead(br); time.Sleep(2 * time.Second) },
		},
		{
			name: "stalls in the body: proxy_read_timeout", status: 504, timeout: 200 * time.Millisecond,
			handle: func(c net.Conn, br *bufio.Reader) {
				readHead(br)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
				time.Sleep(2 * time.Second)
			},
		},
		{
			name: "until close is fine", status: 200,
			handle: func(c net.Conn, br *bufio.Reader) {
				readHead(br)
				io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\nall of it")
			},
		},
		{
			name: "interim 103 is not relayed", status: 200,
			handle: func(c net.Conn, br *bufio.Reader) {
				readHead(br)
				io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := rawUpstream(t, tt.handle)
			cfg := pipelineConfig(t, addr, func(c *config.Config) {
				if tt.timeout > 0 {
					c.Limits.ProxyReadTimeout = config.Duration(tt.timeout)
				}
				c.Upstreams["app"].Servers[0].MaxFails = 0 // keep the server in for every subtest
			})
			h := newTestHandler(t, cfg, Options{})
			ex, w := exchangeFor("GET", "/", nil, 0)
			h.Serve(ex)
			if w.status != tt.status {
				t.Fatalf("status %d, want %d (body %q)", w.status, tt.status, w.body.String())
			}
			if tt.status != 200 && w.body.String() != string(ErrorBody(tt.status)) {
				t.Errorf("a failed response leaked upstream bytes: %q", w.body.String())
			}
		})
	}
}

// TestHandler_RetryIdempotent: a kept-alive upstream connection that the
// server closed while idle is retried on a new one for a GET.
func TestHandler_RetryIdempotent(t *testing.T) {
	var mu sync.Mutex
	conns := 0
	addr := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		mu.Lock()
		conns++
		mu.Unlock()
		if _, err := readHead(br); err != nil {
			return
		}
		// answers as if it kept the connection, then closes it at once
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		time.Sleep(50 * time.Millisecond)
	})
	cfg := pipelineConfig(t, addr, nil)
	h := newTestHandler(t, cfg, Options{})
	for i := range 5 {
		ex, w := exchangeFor("GET", "/", nil, 0)
		h.Serve(ex)
		if w.status != 200 || w.body.String() != "ok" {
			t.Fatalf("request %d: %d %q", i, w.status, w.body.String())
		}
		time.Sleep(100 * time.Millisecond) // the upstream has closed the idle connection by now
	}
	mu.Lock()
	defer mu.Unlock()
	if conns < 5 {
		t.Errorf("%d upstream connections for 5 requests on connections that close", conns)
	}
}

func TestHandler_RequestBody(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("X-N", itoa(n))
	}))
	defer up.Close()
	cfg := pipelineConfig(t, up.Listener.Addr().String(), func(c *config.Config) {
		c.Limits.ClientMaxBodySize = 1000
		c.Limits.ClientBodyBufferSize = 100
	})
	h := newTestHandler(t, cfg, Options{})
	t.Run("spilled", func(t *testing.T) {
		ex, w := exchangeFor("POST", "/", bytes.NewReader(make([]byte, 1000)), -1)
		h.Serve(ex)
		if w.status != 200 || w.header.Get("X-N") != "1000" {
			t.Errorf("%d, upstream got %q bytes", w.status, w.header.Get("X-N"))
		}
	})
	t.Run("too large unknown length", func(t *testing.T) {
		ex, w := exchangeFor("POST", "/", bytes.NewReader(make([]byte, 1001)), -1)
		h.Serve(ex)
		if w.status != 413 || !ex.CloseAfter {
			t.Errorf("%d, CloseAfter %v", w.status, ex.CloseAfter)
		}
	})
	t.Run("too large declared", func(t *testing.T) {
		ex, w := exchangeFor("POST", "/", bytes.NewReader(make([]byte, 1001)), 1001)
		h.Serve(ex)
		if w.status != 413 || w.header.Get("Connection") != "close" {
			t.Errorf("%d %q", w.status, w.header)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		ex, w := exchangeFor("POST", "/", io.MultiReader(strings.NewReader("ab"), errReader{timeoutErr{}}), -1)
		h.Serve(ex)
		if w.status != 408 {
			t.Errorf("%d", w.status)
		}
	})
	t.Run("bad framing", func(t *testing.T) {
		ex, w := exchangeFor("POST", "/", errReader{&http1.Error{Status: 400, Reason: "bad chunk"}}, -1)
		h.Serve(ex)
		if w.status != 400 {
			t.Errorf("%d", w.status)
		}
	})
	t.Run("client gone", func(t *testing.T) {
		ex, w := exchangeFor("POST", "/", errReader{io.ErrUnexpectedEOF}, -1)
		h.Serve(ex)
		if w.status != 0 || !ex.CloseAfter {
			t.Errorf("answered %d to a client that left", w.status)
		}
	})
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestHandler_ClientGone(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "x") }))
	defer up.Close()
	var logBuf bytes.Buffer
	h := newTestHandler(t, pipelineConfig(t, up.Listener.Addr().String(), nil),
		Options{AccessLog: slog.New(slog.NewJSONHandler(&logBuf, nil))})
	ex, w := exchangeFor("GET", "/", nil, 0)
	w.failWith = errors.New("broken pipe")
	h.Serve(ex)
	if !ex.CloseAfter {
		t.Error("CloseAfter not set after a failed write")
	}
	if !strings.Contains(logBuf.String(), "writing response: broken pipe") {
		t.Errorf("access log: %s", logBuf.String())
	}
}

func TestHandler_Closed(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "late")
	}))
	defer up.Close()
	h, err := New(pipelineConfig(t, up.Listener.Addr().String(), nil), withHost(t, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	inflight := make(chan *recordingWriter)
	go func() {
		ex, w := exchangeFor("GET", "/", nil, 0)
		h.Serve(ex)
		inflight <- w
	}()
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	if err := h.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close with a request in flight past ctx: %v", err)
	}
	cancel()
	close(release)
	<-inflight

	// A closed handler refuses: TryServe says so, Serve answers 503.
	ex, w := exchangeFor("GET", "/", nil, 0)
	if h.TryServe(ex) {
		t.Error("TryServe ran on a closed handler")
	}
	if w.status != 0 {
		t.Error("TryServe touched the exchange")
	}
	h.Serve(ex)
	if w.status != 503 || w.header.Get("Retry-After") == "" {
		t.Errorf("Serve on a closed handler: %d %q", w.status, w.header)
	}
	if err := h.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestHandler_CloseDrains: Close returns once the exchange in flight ends.
func TestHandler_CloseDrains(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "done")
	}))
	defer up.Close()
	h, err := New(pipelineConfig(t, up.Listener.Addr().String(), nil), withHost(t, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *recordingWriter, 1)
	go func() {
		ex, w := exchangeFor("GET", "/", nil, 0)
		h.Serve(ex)
		got <- w
	}()
	time.Sleep(100 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- h.Close(context.Background()) }()
	select {
	case <-closed:
		t.Fatal("Close returned with an exchange in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if w := <-got; w.status != 200 || w.body.String() != "done" {
		t.Errorf("in-flight exchange: %d %q", w.status, w.body.String())
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestHandler_QueueTimeout(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer up.Close()
	defer close(release)
	cfg := pipelineConfig(t, up.Listener.Addr().String(), func(c *config.Config) {
		c.Upstreams["app"].Servers[0].MaxConns = 1
		c.Upstreams["app"].QueueTimeout = config.Duration(100 * time.Millisecond)
	})
	h := newTestHandler(t, cfg, Options{})
	go func() {
		ex, _ := exchangeFor("GET", "/hold", nil, 0)
		h.Serve(ex)
	}()
	time.Sleep(100 * time.Millisecond)
	ex, w := exchangeFor("GET", "/", nil, 0)
	h.Serve(ex)
	if w.status != 503 || w.header.Get("Retry-After") == "" {
		t.Errorf("%d %q", w.status, w.header)
	}
}

func TestHandler_UpgradeWithBody(t *testing.T) {
	h := newTestHandler(t, pipelineConfig(t, "127.0.0.1:1", nil), Options{})
	ex, w := exchangeFor("GET", "/ws", strings.NewReader("x"), 1)
	ex.Req.Header = hdr("Connection", "Upgrade", "Upgrade", "websocket")
	h.Serve(ex)
	if w.status != 400 {
		t.Errorf("%d", w.status)
	}
}

func TestHandler_NoUpstream(t *testing.T) {
	h := newTestHandler(t, pipelineConfig(t, "127.0.0.1:1", nil), Options{})
	ex, w := exchangeFor("GET", "/", nil, 0)
	h.Serve(ex)
	if w.status != 502 {
		t.Errorf("%d", w.status)
	}
}

func BenchmarkHandler_Serve(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer up.Close()
	cfg, err := config.QuickMode([]string{"127.0.0.1:1"}, []string{up.Listener.Addr().String()}, "")
	if err != nil {
		b.Fatal(err)
	}
	cfg.Plugins = routerChain(`{"routes":[{"upstream":"app"}]}`)
	h, err := New(cfg, withHost(b, Options{}))
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close(context.Background())
	w := &recordingWriter{}
	ex := &Exchange{W: w, Remote: netip.MustParseAddrPort("192.0.2.1:1")}
	b.ReportAllocs()
	for b.Loop() {
		w.body.Reset()
		hdr := ex.Req.Header[:0]
		ex.Req = message.Request{Method: "GET", Target: "/", Host: "h", Scheme: "http", Proto: "HTTP/1.1", Header: hdr}
		h.Serve(ex)
	}
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }
