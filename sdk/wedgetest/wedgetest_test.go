package wedgetest_test

// The fixtures in testdata are committed; the .wat ones are built with
// wabt's wat2wasm, the others by the command at the top of their source.
//go:generate wat2wasm testdata/router.wat -o testdata/router.wasm

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/sdk/wedgetest"
	"github.com/wedgeproxy/wedge/server/config"
)

// readWasm reads a committed module, relative to this package.
func readWasm(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func routerWasm(t testing.TB) []byte { return readWasm(t, "testdata/router.wasm") }

// echo answers 200 with the pool name and the request body it got.
func echo(pool string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Pool", pool)
		io.WriteString(w, pool+":"+string(b))
	})
}

func newRouter(t *testing.T, opt wedgetest.Options) *wedgetest.Harness {
	t.Helper()
	if opt.Upstreams == nil {
		opt.Upstreams = map[string]http.Handler{"app": echo("app"), "api": echo("api")}
	}
	h, err := wedgetest.New(t, routerWasm(t), opt)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h
}

func TestHarness_Do(t *testing.T) {
	h := newRouter(t, wedgetest.Options{Name: "router"})
	tests := []struct {
		name       string
		req        wedgetest.Request
		status     int
		body       string
		pool       string // "" for no upstream
		upBody     string
		local      bool
		reset      bool
		failure    string // a substring of Result.Failure
		respHeader string // x-plugin on the response
	}{
		{name: "default pool", req: wedgetest.Request{Path: "/x"}, status: 200, body: "app:", pool: "app", respHeader: "wat"},
		{name: "routed", req: wedgetest.Request{Path: "/api/users?id=1"}, status: 200, body: "api:", pool: "api", respHeader: "wat"},
		{name: "body edited", req: wedgetest.Request{Method: "POST", Path: "/api/x", Body: []byte("hi")},
			status: 200, body: "api:hi!", pool: "api", upBody: "hi!", respHeader: "wat"},
		{name: "chunked body", req: wedgetest.Request{Method: "POST", Path: "/c", Body: []byte("abc"),
			Header: http.Header{"Transfer-Encoding": {"chunked"}}}, status: 200, body: "app:abc!", pool: "app", upBody: "abc!", respHeader: "wat"},
		{name: "local in request phase", req: wedgetest.Request{Path: "/deny"}, status: 403, body: "denied\n", local: true},
		{name: "local with the body unread", req: wedgetest.Request{Method: "POST", Path: "/deny", Body: []byte("x"),
			Header: http.Header{"Expect": {"100-continue"}}}, status: 403, body: "denied\n", local: true},
		{name: "expect continue", req: wedgetest.Request{Method: "PUT", Path: "/e", Body: []byte("x"),
			Header: http.Header{"Expect": {"100-continue"}}}, status: 200, body: "app:x!", pool: "app", upBody: "x!", respHeader: "wat"},
		{name: "local in response phase", req: wedgetest.Request{Path: "/replace"}, status: 502, body: "replaced\n", pool: "app", local: true},
		{name: "trap", req: wedgetest.Request{Path: "/trap"}, status: 500, failure: `running plugin "router": plugin failed`},
		{name: "after the trap", req: wedgetest.Request{Path: "/y"}, status: 200, body: "app:", pool: "app", respHeader: "wat"},
		{name: "closed", req: wedgetest.Request{Path: "/close"}, reset: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.Do(tt.req)
			if res.Status != tt.status || string(res.Body) != tt.body && tt.failure == "" {
				t.Errorf("response %d %q, want %d %q", res.Status, res.Body, tt.status, tt.body)
			}
			if res.Local != tt.local || res.Reset != tt.reset || res.Static {
				t.Errorf("Local %v Reset %v Static %v, want %v %v false", res.Local, res.Reset, res.Static, tt.local, tt.reset)
			}
			if got := res.Header.Get("X-Plugin"); got != tt.respHeader {
				t.Errorf("x-plugin: %q, want %q", got, tt.respHeader)
			}
			switch {
			case tt.failure == "" && res.Failure != "":
				t.Errorf("Failure %q, want none", res.Failure)
			case !strings.Contains(res.Failure, tt.failure):
				t.Errorf("Failure %q, want it to contain %q", res.Failure, tt.failure)
			}
			if tt.pool == "" {
				if res.Upstream != nil {
					t.Errorf("upstream %s got %s %s, want none", res.Upstream.Pool, res.Upstream.Method, res.Upstream.Target)
				}
				return
			}
			up := res.Upstream
			if up == nil {
				t.Fatalf("no upstream request, want one to %s", tt.pool)
			}
			if up.Pool != tt.pool || up.Target != tt.req.Path || string(up.Body) != tt.upBody {
				t.Errorf("upstream %s %s %q, want %s %s %q", up.Pool, up.Target, up.Body, tt.pool, tt.req.Path, tt.upBody)
			}
			if up.Header.Get("X-Forwarded-For") != "127.0.0.1" || up.Host != "example.com" {
				t.Errorf("upstream X-Forwarded-For %q Host %q", up.Header.Get("X-Forwarded-For"), up.Host)
			}
			if len(res.Calls) != 0 {
				t.Errorf("Calls = %v, want none", res.Calls)
			}
		})
	}
}

func TestHarness_Logs(t *testing.T) {
	h := newRouter(t, wedgetest.Options{Name: "router"})
	res := h.Do(wedgetest.Request{Path: "/hello"})
	want := []wedgetest.LogRecord{
		{Plugin: "router", Level: slog.LevelInfo, Message: "/hello"},
		{Plugin: "router", Level: slog.LevelInfo, Message: "log phase"},
	}
	if len(res.Logs) != len(want) {
		t.Fatalf("Logs = %v, want %v", res.Logs, want)
	}
	for i := range want {
		if res.Logs[i] != want[i] {
			t.Errorf("Logs[%d] = %v, want %v", i, res.Logs[i], want[i])
		}
	}
	if all := h.Logs(); len(all) != 2 {
		t.Errorf("Harness.Logs = %v, want the 2 records", all)
	}
}

func TestHarness_Metric(t *testing.T) {
	h := newRouter(t, wedgetest.Options{Name: "router"})
	if n := h.Metric("wedge_plugin_vm_failures_total", "plugin", "router"); n != 0 {
		t.Fatalf("failures before a trap: %v", n)
	}
	res := h.Do(wedgetest.Request{Path: "/trap"})
	if res.Status != 500 {
		t.Fatalf("status %d, want 500", res.Status)
	}
	if n := h.Metric("wedge_plugin_vm_failures_total", "plugin", "router", "reason", "trap"); n != 1 {
		t.Errorf("wedge_plugin_vm_failures_total{plugin=router,reason=trap} = %v, want 1", n)
	}
	if n := h.Metric("wedge_http_requests_total", "code", "500"); n != 1 {
		t.Errorf("wedge_http_requests_total{code=500} = %v, want 1", n)
	}
}

func TestHarness_FailOpen(t *testing.T) {
	h := newRouter(t, wedgetest.Options{FailOpen: true})
	res := h.Do(wedgetest.Request{Path: "/trap"})
	if res.Status != 200 || res.Upstream == nil || res.Failure != "" {
		t.Fatalf("fail_open: %d, upstream %v, failure %q; want 200 from app", res.Status, res.Upstream, res.Failure)
	}
}

func TestHarness_Static(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("file a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := newRouter(t, wedgetest.Options{Static: []wedgetest.StaticMount{{Prefix: "/files/", Root: dir}}})
	res := h.Do(wedgetest.Request{Path: "/files/a.txt"})
	if res.Status != 200 || string(res.Body) != "file a\n" || !res.Static || res.Local || res.Upstream != nil {
		t.Errorf("static: %d %q Static %v Local %v Upstream %v", res.Status, res.Body, res.Static, res.Local, res.Upstream)
	}
}

// TestHarness_AddHeader runs the committed example plugin, with and
// without a configuration.
func TestHarness_AddHeader(t *testing.T) {
	wasm := readWasm(t, "../../examples/plugins/add_header.wasm")
	for _, tt := range []struct {
		config, want string
	}{
		{"", "hello"},
		{`{"greeting":"hi"}`, `{"greeting":"hi"}`},
	} {
		h, err := wedgetest.New(t, wasm, wedgetest.Options{Name: "example", Config: []byte(tt.config)})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		res := h.Do(wedgetest.Request{Path: "/"})
		if res.Status != 200 || string(res.Body) != "ok\n" || res.Local {
			t.Errorf("config %q: %d %q Local %v", tt.config, res.Status, res.Body, res.Local)
		}
		if res.Upstream == nil || res.Upstream.Header.Get("X-Wedge-Example") != tt.want {
			t.Errorf("config %q: upstream got %v, want x-wedge-example: %s", tt.config, res.Upstream, tt.want)
		}
	}
}

func TestNew_invalidPlugin(t *testing.T) {
	_, err := wedgetest.New(t, []byte("\x00asm\x01\x00\x00\x00"), wedgetest.Options{})
	if err == nil || !strings.Contains(err.Error(), "invalid plugin") {
		t.Fatalf("New with an empty module: %v, want an invalid plugin error", err)
	}
}

func TestNew_badConfiguration(t *testing.T) {
	_, err := wedgetest.New(t, routerWasm(t), wedgetest.Options{
		Upstreams: map[string]http.Handler{"a": echo("a"), "b": echo("b")},
		Configure: func(cfg *config.Config) { cfg.Upstreams["b"].Servers[0].Weight = -1 },
	})
	var cerr *config.Error
	if !errors.As(err, &cerr) || !strings.Contains(err.Error(), "weight") {
		t.Fatalf("a server of weight -1: %v, want a *config.Error about its weight", err)
	}
}

// TestHarness_DoConcurrent hammers one harness from several goroutines:
// requests run one at a time and each result is its own request's.
func TestHarness_DoConcurrent(t *testing.T) {
	h := newRouter(t, wedgetest.Options{Name: "router"})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				path := fmt.Sprintf("/api/g%d/%d", g, i)
				want := "api"
				if i%3 == 0 {
					path = fmt.Sprintf("/g%d/%d", g, i)
					want = "app"
				}
				res := h.Do(wedgetest.Request{Path: path})
				if res.Upstream == nil || res.Upstream.Pool != want || res.Upstream.Target != path {
					t.Errorf("%s: upstream %+v, want %s", path, res.Upstream, want)
					continue
				}
				if len(res.Logs) != 2 || res.Logs[0].Message != path {
					t.Errorf("%s: logs %v, want its own two records", path, res.Logs)
				}
			}
		}()
	}
	wg.Wait()
}

func TestHarness_callbackTimeout(t *testing.T) {
	h := newRouter(t, wedgetest.Options{Name: "router", CallbackTimeout: 50 * time.Millisecond})
	res := h.Do(wedgetest.Request{Path: "/loop"})
	if res.Status != 500 || !strings.Contains(res.Failure, "timed out") {
		t.Fatalf("endless loop: %d, failure %q; want 500 for a callback timeout", res.Status, res.Failure)
	}
	if n := h.Metric("wedge_plugin_vm_failures_total", "plugin", "router", "reason", "timeout"); n != 1 {
		t.Errorf("timeouts counted: %v, want 1", n)
	}
	if res := h.Do(wedgetest.Request{Path: "/next"}); res.Status != 200 {
		t.Errorf("the request after: %d, want 200 from a new VM", res.Status)
	}
}
