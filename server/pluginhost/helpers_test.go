package pluginhost

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wedgeproxy/wedge/server/internal/message"
	"github.com/wedgeproxy/wedge/server/pluginhost/internal/fixture"
)

// cacheDir is a compilation cache shared by every test of the run, so the
// Go guest is compiled once.
var cacheDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wedge-pluginhost-cache-")
	if err != nil {
		panic(err)
	}
	cacheDir = dir
	code := m.Run()
	fixture.Cleanup()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// quietLogger discards records below Error unless -v is given.
func quietLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newTestHost starts a Host closed at the end of the test.
func newTestHost(t testing.TB, cfg Config) *Host {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger(t)
	}
	if cfg.CompilationCacheDir == "" {
		cfg.CompilationCacheDir = cacheDir
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	h, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Close(ctx); err != nil {
			t.Errorf("Host.Close: %v", err)
		}
	})
	return h
}

// newTestChain makes a chain closed at the end of the test.
func newTestChain(t testing.TB, h *Host, specs ...PluginSpec) *Chain {
	t.Helper()
	c, err := h.NewChain(context.Background(), specs)
	if err != nil {
		t.Fatalf("NewChain: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("Chain.Close: %v", err)
		}
	})
	return c
}

// testCallbackTimeout is the callback deadline of the tests' plugins:
// deadlines are wall-clock, and a loaded machine running -race can stall a
// trivial callback for most of a second.
const testCallbackTimeout = 10 * time.Second

func watSpec(name, fixtureName string) PluginSpec {
	return PluginSpec{Name: name, Wasm: fixture.Wasm(fixtureName), PoolSize: 2, CallbackTimeout: testCallbackTimeout}
}

// goGuestSpec returns a spec for the Go guest, skipping the test if it
// cannot be built here.
func goGuestSpec(t testing.TB, name string) PluginSpec {
	t.Helper()
	wasm, err := fixture.GoGuest()
	if err != nil {
		t.Skipf("skipping: the Go guest could not be built: %v", err)
	}
	return PluginSpec{Name: name, Wasm: wasm, PoolSize: 2, CallbackTimeout: testCallbackTimeout}
}

func newRequest(path string) *message.Request {
	return &message.Request{
		Method:        "GET",
		Target:        path,
		Host:          "example.com",
		Scheme:        "https",
		Proto:         "HTTP/1.1",
		Header:        message.Header{{Name: "User-Agent", Value: "test"}, {Name: "Accept", Value: "*/*"}},
		ContentLength: 0,
	}
}

func newResponse() *message.Response {
	return &message.Response{
		Status:        200,
		Proto:         "HTTP/1.1",
		Header:        message.Header{{Name: "Content-Type", Value: "text/plain"}},
		ContentLength: -1,
	}
}

// memBody is an in-memory Body.
type memBody struct{ b []byte }

func (m *memBody) Len() int64 { return int64(len(m.b)) }

func (m *memBody) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memBody) Replace(start, length int64, data []byte) error {
	nb := make([]byte, 0, int64(len(m.b))-length+int64(len(data)))
	nb = append(nb, m.b[:start]...)
	nb = append(nb, data...)
	nb = append(nb, m.b[start+length:]...)
	m.b = nb
	return nil
}

// fakeDispatcher answers proxy_http_call requests with status and body,
// recording what it was sent.
type fakeDispatcher struct {
	status int
	body   string
	delay  time.Duration
	err    error
	known  map[string]bool // nil: every upstream exists

	mu    sync.Mutex
	calls []dispatched
	n     atomic.Int64
}

type dispatched struct {
	upstream string
	req      *message.Request
	body     []byte
	timeout  time.Duration
}

func (d *fakeDispatcher) HasUpstream(name string) bool { return d.known == nil || d.known[name] }

func (d *fakeDispatcher) Dispatch(ctx context.Context, upstream string, req *message.Request, body []byte, timeout time.Duration) (*message.Response, []byte, error) {
	d.n.Add(1)
	d.mu.Lock()
	d.calls = append(d.calls, dispatched{upstream, req, body, timeout})
	d.mu.Unlock()
	if d.delay > 0 {
		select {
		case <-time.After(d.delay):
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
	if d.err != nil {
		return nil, nil, d.err
	}
	return &message.Response{Status: d.status, Header: message.Header{{Name: "X-From", Value: upstream}}}, []byte(d.body), nil
}

var errBoom = errors.New("boom")
