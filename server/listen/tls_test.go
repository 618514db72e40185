package listen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"

	"github.com/wedgeproxy/wedge/certs/localca"
	"github.com/wedgeproxy/wedge/server/config"
	"github.com/wedgeproxy/wedge/server/internal/message"
	"github.com/wedgeproxy/wedge/server/proxy"
)

// tlsWedge is an in-process Wedge serving TLS (h1, h2) on a loopback TCP
// port and HTTP/3 on the UDP port of the same number, with a certificate
// from a local CA for "localhost".
type tlsWedge struct {
	srv       *Server
	h         *proxy.Handler
	tcp, udp  string // host:port
	tlsConf   *tls.Config
	ca        *localca.CA
	h3Closers []io.Closer
}

// startTLSWedge starts a tlsWedge in front of upstream, configured by
// mutate and opt, and shuts it down when the test ends. The server's
// tls.Config has certmagic's shape (NextProtos only "acme-tls/1"), so the
// tests also show that ServeTLS adds h2 and http/1.1.
func startTLSWedge(t *testing.T, upstream string, mutate func(*config.Config), opt Options) *tlsWedge {
	t.Helper()
	cfg := testConfig(t, upstream, mutate)
	h, err := proxy.New(cfg, proxyOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	s := New(h, cfg.Limits, opt)
	ca, err := localca.Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	conf := &tls.Config{GetCertificate: ca.GetCertificate, NextProtos: []string{alpnACME}}
	ln, pc := listenPair(t)
	w := &tlsWedge{srv: s, h: h, tcp: ln.Addr().String(), udp: pc.LocalAddr().String(), tlsConf: conf, ca: ca}
	errs := make(chan error, 2)
	go func() { errs <- s.ServeTLS(ln, conf) }()
	go func() { errs <- s.ServeQUIC(pc, conf) }()
	waitFor(t, func() bool { return s.tlsFields.Load().altSvc != "" })
	t.Cleanup(func() {
		for _, c := range w.h3Closers {
			c.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Errorf("serving: %v", err)
			}
		}
		h.Close(ctx)
		s.current.Load().h.Close(ctx)
	})
	return w
}

// listenPair binds a loopback TCP listener and a UDP socket on the same
// port number, as a server announcing h3 on its HTTPS port does.
func listenPair(t *testing.T) (net.Listener, net.PacketConn) {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		if err == nil {
			return ln, pc
		}
		ln.Close()
	}
	t.Fatal("no port free for both TCP and UDP")
	return nil, nil
}

func (w *tlsWedge) clientTLS() *tls.Config {
	return &tls.Config{RootCAs: w.ca.Pool(), ServerName: "localhost"}
}

// clients returns an HTTP/1.1, an HTTP/2 and an HTTP/3 client of w, by
// protocol name.
func (w *tlsWedge) clients(t *testing.T) map[string]*http.Client {
	h1 := &http.Transport{TLSClientConfig: w.clientTLS(), TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	h2 := &http2.Transport{TLSClientConfig: w.clientTLS()}
	h3 := &http3.Transport{
		TLSClientConfig: w.clientTLS(),
		Dial: func(ctx context.Context, _ string, tlsConf *tls.Config, qc *quic.Config) (*quic.Conn, error) {
			return quic.DialAddr(ctx, w.udp, tlsConf, qc)
		},
	}
	w.h3Closers = append(w.h3Closers, h3)
	t.Cleanup(func() { h1.CloseIdleConnections(); h2.CloseIdleConnections(); h3.Close() })
	return map[string]*http.Client{
		"HTTP/1.1": {Transport: h1, Timeout: 30 * time.Second},
		"HTTP/2.0": {Transport: h2, Timeout: 30 * time.Second},
		"HTTP/3.0": {Transport: h3, Timeout: 30 * time.Second},
	}
}

var protos = []string{"HTTP/1.1", "HTTP/2.0", "HTTP/3.0"}

// url is the URL of path on w for the clients of clients (which dial w's
// addresses whatever the host).
func (w *tlsWedge) url(path string) string { return "https://" + w.tcp + path }

// protoApp is an upstream that answers /size/N with N pattern bytes, a
// POST with the length and digest of its body, and reports the
// X-Forwarded-Proto it saw.
func protoApp(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Seen-Proto", r.Header.Get("X-Forwarded-Proto"))
	w.Header().Set("X-Test", "same")
	w.Header().Set("Content-Type", "application/octet-stream")
	if r.Method == "POST" {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%d %s", len(b), sum(b))
		return
	}
	if n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/size/")); err == nil {
		w.Write(pattern(n))
		return
	}
	io.WriteString(w, "ok")
}

type result struct {
	status int
	proto  string
	header http.Header
	body   []byte
}

func do(t *testing.T, hc *http.Client, method, url string, body []byte) result {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return result{resp.StatusCode, resp.Proto, resp.Header, b}
}

// TestServer_ServeTLSAndQUIC: the same requests over HTTP/1.1 and HTTP/2
// over TLS and over HTTP/3 get the same status, body and fields; h1 and h2
// responses announce h3 with Alt-Svc; every one carries HSTS; the upstream
// sees https.
func TestServer_ServeTLSAndQUIC(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(protoApp))
	t.Cleanup(up.Close)
	const hsts = "max-age=31536000"
	w := startTLSWedge(t, up.Listener.Addr().String(), func(c *config.Config) {
		c.Limits.ClientMaxBodySize = 8 << 20
	}, Options{HSTS: hsts})
	hcs := w.clients(t)
	_, udpPort, _ := net.SplitHostPort(w.udp)
	wantAltSvc := `h3=":` + udpPort + `"; ma=2592000`

	upload := pattern(3 << 20) // over client_body_buffer_size: spilled to a temp file
	tests := []struct {
		name, method, path string
		body               []byte
		want               []byte
	}{
		{"empty", "GET", "/size/0", nil, nil},
		{"small", "GET", "/size/1", nil, pattern(1)},
		{"in memory", "GET", "/size/100000", nil, pattern(100000)},
		{"spilled", "GET", "/size/" + strconv.Itoa(3<<20+17), nil, pattern(3<<20 + 17)}, // over proxy_buffer_size
		{"upload", "POST", "/up", upload, []byte(fmt.Sprintf("%d %s", len(upload), sum(upload)))},
		{"small upload", "POST", "/up", []byte("x=1"), []byte("3 " + sum([]byte("x=1")))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var first http.Header
			for _, p := range protos {
				r := do(t, hcs[p], tt.method, w.url(tt.path), tt.body)
				if r.status != 200 || r.proto != p {
					t.Fatalf("%s: status %d over %s; body %q", p, r.status, r.proto, truncate(r.body))
				}
				if !bytes.Equal(r.body, tt.want) {
					t.Errorf("%s: body of %d bytes (sha %s), want %d (sha %s)", p, len(r.body), sum(r.body), len(tt.want), sum(tt.want))
				}
				if got := r.header.Get("X-Seen-Proto"); got != "https" {
					t.Errorf("%s: the upstream saw X-Forwarded-Proto %q, want https", p, got)
				}
				if got := r.header.Values("Strict-Transport-Security"); !slices.Equal(got, []string{hsts}) {
					t.Errorf("%s: Strict-Transport-Security %q", p, got)
				}
				altSvc := r.header.Values("Alt-Svc")
				if p == "HTTP/3.0" {
					if len(altSvc) != 0 {
						t.Errorf("%s: Alt-Svc %q on HTTP/3", p, altSvc)
					}
				} else if !slices.Equal(altSvc, []string{wantAltSvc}) {
					t.Errorf("%s: Alt-Svc %q, want %q", p, altSvc, wantAltSvc)
				}
				h := r.header.Clone()
				h.Del("Date")
				h.Del("Alt-Svc")
				if first == nil {
					first = h
				} else if fmt.Sprint(h) != fmt.Sprint(first) {
					t.Errorf("%s: fields\n%v\ndiffer from HTTP/1.1's\n%v", p, h, first)
				}
			}
		})
	}
}

// TestServer_AltSvcFromApp: a response that already carries Alt-Svc or
// Strict-Transport-Security keeps the app's, without a second one.
func TestServer_AltSvcFromApp(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Alt-Svc", "clear")
		w.Header().Set("Strict-Transport-Security", "max-age=0")
	}))
	t.Cleanup(up.Close)
	w := startTLSWedge(t, up.Listener.Addr().String(), nil, Options{HSTS: "max-age=1"})
	hcs := w.clients(t)
	for _, p := range protos {
		r := do(t, hcs[p], "GET", w.url("/"), nil)
		if got := r.header.Values("Alt-Svc"); !slices.Equal(got, []string{"clear"}) {
			t.Errorf("%s: Alt-Svc %q, want the app's only", p, got)
		}
		if got := r.header.Values("Strict-Transport-Security"); !slices.Equal(got, []string{"max-age=0"}) {
			t.Errorf("%s: Strict-Transport-Security %q, want the app's only", p, got)
		}
	}
}

// TestServer_ServeTLSHandshakeTimeout: a client that connects and sends
// nothing, or stops in the middle of its ClientHello, is closed after the
// handshake timeout and counted.
func TestServer_ServeTLSHandshakeTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	w := startTLSWedge(t, "", nil, Options{HandshakeTimeout: timeout})
	for _, send := range []string{"", "\x16\x03\x01\x02\x00\x01"} {
		c, err := net.Dial("tcp", w.tcp)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, send)
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
		el := time.Since(start)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("sent %q: still open after 5s", send)
		}
		if el < timeout-50*time.Millisecond || el > 3*time.Second {
			t.Errorf("sent %q: closed after %v, want about %v", send, el, timeout)
		}
	}
	waitFor(t, func() bool { return counterValue(t, w.srv.tlsFailures) == 2 })
}

// TestServer_ServeTLSACME: a tls-alpn-01 validation (ALPN "acme-tls/1"
// only, RFC 8737 §3) completes its handshake, then the connection is
// closed without a request being read.
func TestServer_ServeTLSACME(t *testing.T) {
	w := startTLSWedge(t, "", nil, Options{})
	conf := w.clientTLS()
	conf.NextProtos = []string{alpnACME}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", w.tcp, conf)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != alpnACME {
		t.Fatalf("negotiated %q", p)
	}
	io.WriteString(c, get("/"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 100))
	if n != 0 || err == nil || isTimeout(err) {
		t.Errorf("after an acme-tls/1 handshake: read %d bytes, %v; want the connection closed", n, err)
	}
	// no ALPN at all is HTTP/1.1
	plain := w.clientTLS()
	c2, err := tls.Dial("tcp", w.tcp, plain)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	cl := &client{t: t, c: c2, br: bufio.NewReader(c2)}
	resp := cl.roundTrip("GET", get("/"))
	if resp.StatusCode != 502 { // nothing listens upstream
		t.Errorf("HTTP/1.1 without ALPN: status %d", resp.StatusCode)
	}
}

// TestServer_ShutdownTLSAndQUIC: a request in flight on each protocol
// finishes after Shutdown began; new connections are refused; idle ones
// (the HTTP/3 one included) do not hold Shutdown up.
func TestServer_ShutdownTLSAndQUIC(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 3)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		io.WriteString(w, "done "+r.Header.Get("X-Forwarded-Proto"))
	}))
	t.Cleanup(up.Close)
	cfg := testConfig(t, up.Listener.Addr().String(), nil)
	h, err := newHandler(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	s := New(h, cfg.Limits, Options{})
	ca, err := localca.Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	conf := &tls.Config{GetCertificate: ca.GetCertificate}
	ln, pc := listenPair(t)
	w := &tlsWedge{srv: s, h: h, tcp: ln.Addr().String(), udp: pc.LocalAddr().String(), ca: ca}
	errs := make(chan error, 2)
	go func() { errs <- s.ServeTLS(ln, conf) }()
	go func() { errs <- s.ServeQUIC(pc, conf) }()
	hcs := w.clients(t)
	idle := w.clients(t) // one idle connection of each protocol
	for _, p := range protos {
		if r := do(t, idle[p], "GET", w.url("/"), nil); r.status != 200 {
			t.Fatalf("%s: status %d", p, r.status)
		}
	}
	results := make(chan string, 3)
	for _, p := range protos {
		go func() {
			resp, err := hcs[p].Get(w.url("/slow"))
			if err != nil {
				results <- p + ": " + err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			results <- fmt.Sprintf("%s: %d %s", resp.Proto, resp.StatusCode, b)
		}()
	}
	for range 3 {
		<-started
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	waitFor(t, func() bool {
		c, err := net.Dial("tcp", w.tcp)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	time.Sleep(300 * time.Millisecond) // a few shutdown ticks: idle connections go, busy ones stay
	close(release)
	var got []string
	for range 3 {
		got = append(got, <-results)
	}
	slices.Sort(got)
	want := []string{"HTTP/1.1: 200 done https", "HTTP/2.0: 200 done https", "HTTP/3.0: 200 done https"}
	if !slices.Equal(got, want) {
		t.Errorf("in-flight requests:\n%q\nwant\n%q", got, want)
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("serving: %v", err)
		}
	}
	if s.total != 0 {
		t.Errorf("%d connections counted after Shutdown", s.total)
	}
}

// TestServer_ReloadTLSAndQUIC: after SetHandler, the next request on an
// open HTTP/1.1, HTTP/2 or HTTP/3 connection runs in the new pipeline.
func TestServer_ReloadTLSAndQUIC(t *testing.T) {
	upA := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "A") }))
	upB := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "B") }))
	t.Cleanup(upA.Close)
	t.Cleanup(upB.Close)
	w := startTLSWedge(t, upA.Listener.Addr().String(), nil, Options{})
	hcs := w.clients(t)
	for round, want := range []string{"A", "B", "A"} {
		if round > 0 {
			cfg := testConfig(t, map[string]string{"A": upA.Listener.Addr().String(), "B": upB.Listener.Addr().String()}[want], nil)
			h, err := newHandler(t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			old := w.srv.SetHandler(h, cfg.Limits)
			old.Close(context.Background())
		}
		for _, p := range protos {
			if r := do(t, hcs[p], "GET", w.url("/"), nil); r.status != 200 || string(r.body) != want {
				t.Errorf("round %d, %s: %d %q, want %q", round, p, r.status, r.body, want)
			}
		}
		w.srv.mu.Lock()
		n := w.srv.total
		w.srv.mu.Unlock()
		if n != 3 {
			t.Errorf("round %d: %d connections, want the same 3 throughout", round, n)
		}
	}
}

// TestServer_QUICMaxConnections: QUIC connections count against
// max_connections with TCP ones.
func TestServer_QUICMaxConnections(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(protoApp))
	t.Cleanup(up.Close)
	w := startTLSWedge(t, up.Listener.Addr().String(), func(c *config.Config) { c.Limits.MaxConnections = 1 }, Options{})
	hcs := w.clients(t)
	if r := do(t, hcs["HTTP/1.1"], "GET", w.url("/"), nil); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	// the HTTP/1.1 connection is kept alive: no room for a QUIC one
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", w.url("/"), nil)
	if resp, err := hcs["HTTP/3.0"].Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("an HTTP/3 request past max_connections got %d", resp.StatusCode)
	}
	if v := counterValue(t, w.srv.refused.WithLabelValues("max_connections")); v < 1 {
		t.Errorf("refusals counted: %v", v)
	}
}

func TestWithHTTPProtos(t *testing.T) {
	tests := []struct{ in, want []string }{
		{nil, []string{"h2", "http/1.1"}},
		{[]string{"acme-tls/1"}, []string{"h2", "http/1.1", "acme-tls/1"}},
		{[]string{"http/1.1"}, []string{"h2", "http/1.1"}},
		{[]string{"http/1.1", "h2"}, []string{"http/1.1", "h2"}}, // the caller's order stands
	}
	for _, tt := range tests {
		in := &tls.Config{NextProtos: slices.Clone(tt.in)}
		out := withHTTPProtos(in)
		if !slices.Equal(out.NextProtos, tt.want) {
			t.Errorf("%q: %q, want %q", tt.in, out.NextProtos, tt.want)
		}
		if !slices.Equal(in.NextProtos, tt.in) {
			t.Errorf("%q: the caller's config was changed to %q", tt.in, in.NextProtos)
		}
		if (out == in) != slices.Equal(tt.in, tt.want) {
			t.Errorf("%q: cloned %v", tt.in, out != in)
		}
	}
}

func TestExtraFields_AppendH1(t *testing.T) {
	f := newExtraFields("max-age=1", altSvcValue(443))
	head := []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	tests := []struct {
		name string
		h    message.Header
		want string
	}{
		{"both", nil, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nStrict-Transport-Security: max-age=1\r\nAlt-Svc: h3=\":443\"; ma=2592000\r\n\r\n"},
		{"app's Alt-Svc", message.Header{{Name: "alt-svc", Value: "clear"}}, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nStrict-Transport-Security: max-age=1\r\n\r\n"},
	}
	for _, tt := range tests {
		got := f.appendH1(slices.Clone(head), tt.h)
		if string(got) != tt.want {
			t.Errorf("%s:\n%q\nwant\n%q", tt.name, got, tt.want)
		}
	}
	if got := newExtraFields("", "").appendH1(slices.Clone(head), nil); string(got) != string(head) {
		t.Errorf("no fields: %q", got)
	}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = f.appendH1(append(buf[:0], head...), nil) }); n != 0 {
		t.Errorf("%v allocations per response", n)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// smallSendBuffers makes the kernel send buffer of every accepted
// connection small, so a slow reader holds up the server's writes.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(16 << 10)
	}
	return c, err
}

// TestServer_ServeTLSSlowReader: over TLS, send_timeout bounds the wait
// between two pieces of a response, not the whole response: a client that
// reads steadily but takes several send_timeouts for the whole body gets
// all of it, from memory and from a temp file.
func TestServer_ServeTLSSlowReader(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(protoApp))
	t.Cleanup(up.Close)
	cfg := testConfig(t, up.Listener.Addr().String(), func(c *config.Config) {
		c.Limits.SendTimeout = config.Duration(time.Second)
		c.Limits.SendMinRate = 0
		c.Limits.ProxyBufferSize = 2 << 20
	})
	h, err := newHandler(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := New(h, cfg.Limits, Options{})
	ca, err := localca.Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.ServeTLS(smallSendBuffers{ln}, &tls.Config{GetCertificate: ca.GetCertificate})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		h.Close(ctx)
	})
	for _, n := range []int{3 << 19, 5 << 19} { // 1.5 MiB in memory; 2.5 MiB spilled (over proxy_buffer_size)
		raw, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		raw.(*net.TCPConn).SetReadBuffer(64 << 10) // no autotuning: the server's writes wait for the reader
		c := tls.Client(raw, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", NextProtos: []string{"http/1.1"}})
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		io.WriteString(c, get("/size/"+strconv.Itoa(n)))
		br := bufio.NewReaderSize(c, 1024)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		var got []byte
		buf := make([]byte, 16<<10)
		for {
			m, err := io.ReadFull(resp.Body, buf)
			got = append(got, buf[:m]...)
			if err != nil {
				break
			}
			time.Sleep(20 * time.Millisecond) // at most 800 KB/s
		}
		if !bytes.Equal(got, pattern(n)) {
			t.Errorf("%d bytes: got %d (sha %s) after %v", n, len(got), sum(got), time.Since(start))
		} else if el := time.Since(start); el < 2*cfg.Limits.SendTimeout.Std() {
			t.Logf("%d bytes read in %v: not slower than send_timeout, the test shows nothing", n, el)
		}
	}
}
