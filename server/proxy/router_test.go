package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wedgeproxy/wedge/server/config"
	"github.com/wedgeproxy/wedge/server/pluginhost"
)

// routerWasm is the built-in router, as committed (the server never
// imports package plugins; tests read the file).
const routerWasm = "../../plugins/router/router.wasm"

var testHost struct {
	once sync.Once
	h    *pluginhost.Host
	err  error
}

// withHost returns opt with a plugin host shared by the package's tests
// (compiling the router once), offering the pipeline's wedge_* functions.
func withHost(t testing.TB, opt Options) Options {
	t.Helper()
	testHost.once.Do(func() {
		testHost.h, testHost.err = pluginhost.New(context.Background(), pluginhost.Config{
			CompilationCacheDir: filepath.Join(os.TempDir(), "wedge-proxy-test-wasm"),
			ForeignFunctions:    ForeignFunctions(),
			Logger:              slog.New(slog.DiscardHandler),
		})
	})
	if testHost.err != nil {
		t.Fatal(testHost.err)
	}
	opt.Plugins = testHost.h
	return opt
}

// routerChain is a chain of the router alone with routes (JSON).
func routerChain(routes string) []config.Plugin {
	return []config.Plugin{{Name: "router", Path: routerWasm, Config: config.JSONValue(routes), PoolSize: 1}}
}

// staticTree writes a static root: public/a.txt, public/sub/index.html,
// private/report.txt.
func staticTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"public/a.txt":          "file a\n",
		"public/sub/index.html": "<p>sub</p>\n",
		"private/report.txt":    "secret report\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestHandler_StaticRoutes: the router chooses, the host serves files,
// X-Accel-Redirect goes through the router's internal routes, and a
// request no plugin routed gets 502.
func TestHandler_StaticRoutes(t *testing.T) {
	dir := staticTree(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/download":
			w.Header().Set("X-Accel-Redirect", "/protected/report.txt")
			w.Header().Set("Content-Disposition", "attachment")
			io.WriteString(w, "ignored body")
		case "/nowhere":
			w.Header().Set("X-Accel-Redirect", "/elsewhere/x")
			io.WriteString(w, "upstream body")
		default:
			io.WriteString(w, "app "+r.URL.Path)
		}
	}))
	defer up.Close()
	routes, _ := json.Marshal(map[string]any{"routes": []map[string]any{
		{"path": "/static/", "strip_prefix": "/static", "static": map[string]any{"root": filepath.Join(dir, "public")},
			"response_headers": map[string]any{"set": map[string]string{"Cache-Control": "max-age=60"}}},
		{"path": "/protected/", "internal": true, "strip_prefix": "/protected", "static": map[string]any{"root": filepath.Join(dir, "private")}},
		{"path": "/unrouted/", "static": map[string]any{"root": "relative-dir-that-does-not-exist-" + t.Name()}, "default": false},
		{"upstream": "app"},
	}})
	// The third route's root does not exist: configure fails with the
	// route's index and the reason.
	cfg := pipelineConfig(t, up.Listener.Addr().String(), func(c *config.Config) { c.Plugins = routerChain(string(routes)) })
	_, err := New(cfg, withHost(t, Options{}))
	if err == nil || !errors.Is(err, pluginhost.ErrInvalidPlugin) || !strings.Contains(err.Error(), "routes[2]: static: ") ||
		!strings.Contains(err.Error(), "no such file or directory") {
		t.Fatalf("New with a missing static root: %v", err)
	}

	routes, _ = json.Marshal(map[string]any{"routes": []map[string]any{
		{"path": "/static/", "strip_prefix": "/static", "static": map[string]any{"root": filepath.Join(dir, "public")},
			"response_headers": map[string]any{"set": map[string]string{"Cache-Control": "max-age=60"}}},
		{"path": "/protected/", "internal": true, "strip_prefix": "/protected", "static": map[string]any{"root": filepath.Join(dir, "private")}},
		{"upstream": "app"},
	}})
	cfg = pipelineConfig(t, up.Listener.Addr().String(), func(c *config.Config) { c.Plugins = routerChain(string(routes)) })
	h := newTestHandler(t, cfg, withHost(t, Options{}))
	for _, tt := range []struct {
		method, target string
		header         [][2]string
		status         int
		body           string
		field, value   string
	}{
		{"GET", "/static/a.txt", nil, 200, "file a\n", "Cache-Control", "max-age=60"},
		{"HEAD", "/static/a.txt", nil, 200, "", "Content-Length", "7"},
		{"GET", "/static/a.txt", [][2]string{{"Range", "bytes=0-3"}}, 206, "file", "Content-Range", "bytes 0-3/7"},
		{"GET", "/static/sub", nil, 301, "", "Location", "/static/sub/"},
		{"GET", "/static/sub/", nil, 200, "<p>sub</p>\n", "Content-Type", "text/html; charset=utf-8"},
		{"GET", "/static/../static/a.txt", nil, 200, "file a\n", "", ""},
		{"GET", "/static/missing", nil, 404, "", "", ""},
		{"POST", "/static/a.txt", nil, 405, "", "Allow", "GET, HEAD"},
		{"GET", "/protected/report.txt", nil, 200, "app /protected/report.txt", "", ""}, // internal: not for clients
		{"GET", "/download", nil, 200, "secret report\n", "Content-Disposition", "attachment"},
		{"GET", "/nowhere", nil, 200, "upstream body", "X-Accel-Redirect", ""},
		{"GET", "/other", nil, 200, "app /other", "", ""},
	} {
		ex, w := exchangeFor(tt.method, tt.target, nil, 0)
		for _, f := range tt.header {
			ex.Req.Header.Add(f[0], f[1])
		}
		h.Serve(ex)
		if w.status != tt.status || tt.method != "HEAD" && tt.body != "" && w.body.String() != tt.body {
			t.Errorf("%s %s: %d %q, want %d %q", tt.method, tt.target, w.status, w.body.String(), tt.status, tt.body)
		}
		if tt.field != "" && w.header.Get(tt.field) != tt.value {
			t.Errorf("%s %s: %s = %q, want %q", tt.method, tt.target, tt.field, w.header.Get(tt.field), tt.value)
		}
	}

	// No router: nothing is routed.
	cfg = pipelineConfig(t, up.Listener.Addr().String(), func(c *config.Config) { c.Plugins = []config.Plugin{} })
	var logBuf bytes.Buffer
	h = newTestHandler(t, cfg, Options{Logger: slogTo(&logBuf)})
	ex, w := exchangeFor("GET", "/", nil, 0)
	h.Serve(ex)
	if w.status != 502 || !strings.Contains(logBuf.String(), "no route") {
		t.Errorf("no router: %d, log %q", w.status, logBuf.String())
	}
}
