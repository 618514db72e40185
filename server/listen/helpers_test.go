package listen

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/server/config"
	"github.com/wedgeproxy/wedge/server/proxy"
)

// testWedge is an in-process Wedge: a proxy.Handler behind a Server that
// serves one loopback listener.
type testWedge struct {
	srv  *Server
	h    *proxy.Handler
	cfg  *config.Config
	addr string // host:port of the client listener
}

// unusedUpstream is an address nothing listens on: port 1 on loopback
// refuses connections at once.
const unusedUpstream = "127.0.0.1:1"

// testConfig returns a quick-mode configuration proxying to upstream, with
// the access log off and timeouts short enough for tests, then changed by
// mutate and validated.
func testConfig(t testing.TB, upstream string, mutate func(*config.Config)) *config.Config {
	t.Helper()
	if upstream == "" {
		upstream = unusedUpstream
	}
	// The listen address is not bound here (startWedge binds its own
	// listener on port 0); it only has to be valid.
	cfg, err := config.QuickMode([]string{"127.0.0.1:1"}, []string{upstream}, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Log.Access = "off"
	l := &cfg.Limits
	l.ClientHeaderTimeout = config.Duration(5 * time.Second)
	l.ClientBodyTimeout = config.Duration(5 * time.Second)
	l.KeepaliveTimeout = config.Duration(5 * time.Second)
	l.SendTimeout = config.Duration(10 * time.Second)
	l.ProxyReadTimeout = config.Duration(10 * time.Second)
	l.ProxySendTimeout = config.Duration(10 * time.Second)
	l.ProxyConnectTimeout = config.Duration(5 * time.Second)
	l.ShutdownTimeout = config.Duration(5 * time.Second)
	l.TempPath = t.TempDir()
	routeAll(cfg, `{"routes":[{"upstream":"app"}]}`)
	if mutate != nil {
		mutate(cfg)
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startWedge starts a Wedge for cfg on a free loopback port and stops it
// when the test ends.
func startWedge(t testing.TB, cfg *config.Config) *testWedge {
	t.Helper()
	h, err := proxy.New(cfg, proxyOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	s := New(h, cfg.Limits, Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		h.Close(ctx)
		s.current.Load().h.Close(ctx) // the last one SetHandler installed
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &testWedge{srv: s, h: h, cfg: cfg, addr: ln.Addr().String()}
}

func newHandler(t testing.TB, cfg *config.Config) (*proxy.Handler, error) {
	return proxy.New(cfg, proxyOptions(t))
}

// startProxy starts a Go upstream running handler and a Wedge in front of
// it, configured by mutate.
func startProxy(t *testing.T, handler http.Handler, mutate func(*config.Config)) (*testWedge, *httptest.Server) {
	t.Helper()
	up := httptest.NewServer(handler)
	t.Cleanup(up.Close)
	w := startWedge(t, testConfig(t, up.Listener.Addr().String(), mutate))
	return w, up
}

// client is a raw HTTP/1.1 client connection.
type client struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func (w *testWedge) dial(t testing.TB) *client {
	t.Helper()
	c, err := net.Dial("tcp", w.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return &client{t: t, c: c, br: bufio.NewReader(c)}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatalf("writing request: %v", err)
	}
}

// response is a response read off the wire with its whole body.
type response struct {
	*http.Response
	body []byte
}

// read reads one response to a request with method and its whole body.
func (c *client) read(method string) response {
	c.t.Helper()
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.t.Fatalf("reading response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("reading response body: %v", err)
	}
	return response{resp, body}
}

// roundTrip sends req and reads the response to it.
func (c *client) roundTrip(method, req string) response {
	c.t.Helper()
	c.send(req)
	return c.read(method)
}

// closed reports whether the server closed the connection: a read returns
// EOF or a reset (and not a timeout) within d.
func (c *client) closed(d time.Duration) bool {
	c.c.SetReadDeadline(time.Now().Add(d))
	defer c.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err := c.br.ReadByte()
	if err == nil {
		return false
	}
	var ne net.Error
	return !(errorsAs(err, &ne) && ne.Timeout())
}

func errorsAs(err error, target *net.Error) bool {
	ne, ok := err.(net.Error)
	if ok {
		*target = ne
	}
	return ok
}

func get(path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: example.com\r\n\r\n"
}

// pattern returns n deterministic bytes that do not repeat with a short
// period, so a misplaced or repeated block shows in a checksum.
func pattern(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func sum(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

// requireStatus fails t unless resp has status want.
func requireStatus(t testing.TB, resp response, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("status %d, want %d; body %q", resp.StatusCode, want, truncate(resp.body))
	}
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// hasHeader reports whether the raw head of req (as an upstream saw it)
// holds a field called name.
func hasHeader(h http.Header, name string) bool {
	_, ok := h[http.CanonicalHeaderKey(name)]
	return ok
}

var _ = strings.Contains

// serveOn serves s on a free loopback port and returns its address. The
// caller shuts s down.
func serveOn(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	return ln.Addr().String()
}
