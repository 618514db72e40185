package e2e

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/plugins"
	"github.com/wedgeproxy/wedge/server"
	"github.com/wedgeproxy/wedge/server/config"
)

// TestRouter puts the built-in router in front of Gunicorn (pool "app")
// and a Go upstream (pool "api") and checks each kind of route through a
// real client: two pools (requests counted at each upstream), a static
// mount, a redirect with captures, a fixed response, header edits both
// ways, strip_prefix and rewrite as the upstream saw them, 404 for what
// no route matches, and a bad route refused at start-up with its index.
func TestRouter(t *testing.T) {
	app := startGunicorn(t, 2)
	api := startEcho(t, "api")
	assets := t.TempDir()
	if err := os.WriteFile(filepath.Join(assets, "hello.txt"), []byte("hello, static\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	routes, err := json.Marshal(map[string]any{"routes": []map[string]any{
		{"path": "/api/", "strip_prefix": "/api", "upstream": "api",
			"request_headers":  map[string]any{"set": map[string]string{"X-Routed": "api"}, "remove": []string{"X-Secret"}},
			"response_headers": map[string]any{"set": map[string]string{"X-Route": "api"}, "remove": []string{"X-Upstream"}}},
		{"path": map[string]string{"regexp": "^/legacy/"}, "rewrite": map[string]string{"regexp": "^/legacy/(.*)$", "to": "/$1"}, "upstream": "app"},
		{"path": "/assets/", "strip_prefix": "/assets", "static": map[string]any{"root": assets},
			"response_headers": map[string]any{"set": map[string]string{"Cache-Control": "max-age=300"}}},
		{"path": map[string]string{"glob": "/go/*"}, "redirect": map[string]any{"status": 302, "to": "https://docs.example.com/$1?from=$host"}},
		{"path": map[string]string{"exact": "/healthz"}, "respond": map[string]any{"body": "healthy\n", "headers": map[string]string{"X-Check": "1"}}},
		{"host": "app.test", "upstream": "app"},
		{"path": "/app/", "strip_prefix": "/app", "upstream": "app",
			"request_headers":  map[string]any{"add": map[string]string{"X-Edge": "wedge"}},
			"response_headers": map[string]any{"add": map[string]string{"X-Served-By": "wedge"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	chain := []config.Plugin{{Name: "router", Builtin: "router", Config: routes}}
	w := startWedge(t, app.Addr, func(cfg *config.Config) {
		cfg.Upstreams["api"] = &config.Upstream{Servers: []config.UpstreamServer{{Address: api.Addr}}}
		cfg.Plugins = chain
		cfg.ApplyDefaults()
	})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path, host string, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		var h []string
		if host != "" {
			h = append(h, "Host", host)
		}
		for k, v := range hdr {
			h = append(h, k, v)
		}
		resp, b := doClient(t, client, method, w.URL(path), nil, h...)
		return resp, string(b)
	}
	gunicornLines := func() int { return strings.Count(app.accessLog(t), "\n") }
	appBefore := gunicornLines()

	// Pool "api": strip_prefix and request edits as the Go upstream saw
	// them, response edits as the client sees them.
	resp, body := do("GET", "/api/items?x=1", "", map[string]string{"X-Secret": "s"})
	var echo echoReply
	if err := json.Unmarshal([]byte(body), &echo); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/api/items: %d %q", resp.StatusCode, body)
	}
	if echo.Server != "api" || echo.URI != "/items?x=1" || echo.Header.Get("X-Routed") != "api" || echo.Header.Get("X-Secret") != "" {
		t.Errorf("api saw %s %s with X-Routed %q X-Secret %q", echo.Server, echo.URI, echo.Header.Get("X-Routed"), echo.Header.Get("X-Secret"))
	}
	if resp.Header.Get("X-Route") != "api" || resp.Header.Get("X-Upstream") != "" {
		t.Errorf("response fields: X-Route %q X-Upstream %q", resp.Header.Get("X-Route"), resp.Header.Get("X-Upstream"))
	}

	// Pool "app" (Gunicorn): the request edit arrives, the path stripped.
	resp, body = do("GET", "/app/headers", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `["X-Edge", "wedge"]`) || resp.Header.Get("X-Served-By") != "wedge" {
		t.Errorf("/app/headers: %d %q X-Served-By %q", resp.StatusCode, body, resp.Header.Get("X-Served-By"))
	}
	// rewrite: Gunicorn answers /headers for /legacy/headers.
	resp, body = do("GET", "/legacy/headers", "", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "[[") {
		t.Errorf("/legacy/headers: %d %q", resp.StatusCode, body)
	}
	// By host.
	resp, body = do("GET", "/", "app.test", nil)
	if resp.StatusCode != 200 || resp.Header.Get("X-Served-By") != "" {
		t.Errorf("Host app.test: %d %q", resp.StatusCode, body)
	}

	// Static, redirect, fixed response, unmatched: no upstream sees them.
	resp, body = do("GET", "/assets/hello.txt", "", nil)
	if resp.StatusCode != 200 || body != "hello, static\n" || resp.Header.Get("Cache-Control") != "max-age=300" {
		t.Errorf("/assets/hello.txt: %d %q Cache-Control %q", resp.StatusCode, body, resp.Header.Get("Cache-Control"))
	}
	resp, _ = do("GET", "/assets/hello.txt", "", map[string]string{"Range": "bytes=0-4"})
	if resp.StatusCode != 206 {
		t.Errorf("static range: %d", resp.StatusCode)
	}
	resp, _ = do("GET", "/go/install", "", nil)
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "https://docs.example.com/install?from=127.0.0.1" {
		t.Errorf("/go/install: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body = do("GET", "/healthz", "", nil)
	if resp.StatusCode != 200 || body != "healthy\n" || resp.Header.Get("X-Check") != "1" {
		t.Errorf("/healthz: %d %q", resp.StatusCode, body)
	}
	resp, _ = do("GET", "/nothing/here", "", nil)
	if resp.StatusCode != 404 {
		t.Errorf("unmatched: %d, want 404", resp.StatusCode)
	}

	if n := api.hits.Load(); n != 1 {
		t.Errorf("the api upstream got %d requests, want 1", n)
	}
	// Gunicorn writes its access log line after the response: wait for
	// it (at most 5 s), then check that no more came.
	for deadline := time.Now().Add(5 * time.Second); gunicornLines()-appBefore < 3 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	log := app.accessLog(t)
	if n := gunicornLines() - appBefore; n != 3 {
		t.Errorf("Gunicorn got %d requests, want 3:\n%s", n, log)
	}
	if !strings.Contains(log, `"GET /headers HTTP/1.1"`) || strings.Contains(log, "/legacy/") || strings.Contains(log, "/app/") {
		t.Errorf("Gunicorn's access log does not show the stripped and rewritten paths:\n%s", log)
	}

	// A bad route fails start-up, naming the route and the reason.
	cfg, err := config.QuickMode([]string{freeAddr(t)}, []string{app.Addr}, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Log.Access = "off"
	cfg.Plugins = []config.Plugin{{Name: "router", Builtin: "router",
		Config: config.JSONValue(`{"routes":[{"path":"/a/","upstream":"app"},{"path":{"regexp":"(["},"upstream":"app"}]}`)}}
	cfg.ApplyDefaults()
	srv, err := server.New(cfg, server.Options{Logger: slog.New(slog.DiscardHandler), Builtins: plugins.Builtin})
	if err == nil {
		srv.Shutdown(t.Context())
		t.Fatal("a bad route was accepted")
	}
	if !strings.Contains(err.Error(), "routes[1]: path.regexp: error parsing regexp") {
		t.Errorf("start-up error: %v", err)
	}
}
