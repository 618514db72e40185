package e2e

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/internal/langbuild"
	"github.com/wedgeproxy/wedge/plugins"
	"github.com/wedgeproxy/wedge/server"
	"github.com/wedgeproxy/wedge/server/config"
)

// The TestExample{Rust,C}* tests build examples/rust-apikey (with sdk/rust)
// and examples/c-ratelimit (with sdk/c) the way their READMEs say, load
// each .wasm into a real Wedge in front of a real upstream (an echoServer
// on loopback) and check the behaviour the READMEs document. They skip
// without the Debian toolchains (internal/langbuild names the packages).

// startExampleWedge starts Wedge in front of app (the pool "app") with
// the other pools and one plugin, spec, compiled code kept in memory only.
func startExampleWedge(t *testing.T, app string, pools map[string]string, spec config.Plugin) *wedge {
	t.Helper()
	return startWedge(t, app, func(cfg *config.Config) {
		pluginConfig(t, cfg, pools, []config.Plugin{spec})
		cfg.PluginCache = "off"
	})
}

// exampleLoadError returns the error server.New gives for a configuration
// with the one plugin spec (and nil when it loads, shutting it down).
func exampleLoadError(t *testing.T, spec config.Plugin) error {
	t.Helper()
	cfg, err := config.QuickMode([]string{freeAddr(t)}, []string{"127.0.0.1:9"}, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Log.Access = "off"
	cfg.Limits.TempPath = t.TempDir()
	pluginConfig(t, cfg, nil, []config.Plugin{spec})
	cfg.PluginCache = "off"
	if err := cfg.Validate(); err != nil {
		return err
	}
	srv, err := server.New(cfg, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Builtins: plugins.Builtin})
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}
	return err
}

// clientFrom is an HTTP client whose connections come from local address
// ip (127.0.0.2 and the like: all of 127/8 is loopback on Linux), a new
// connection per request.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{
		Timeout:   20 * time.Second,
		Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true},
	}
}

// doWith GETs url with client c (doClient).
func doWith(t *testing.T, c *http.Client, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	return doClient(t, c, "GET", url, nil, header...)
}

// rustAPIKeySpec builds examples/rust-apikey and returns its plugin with
// the keys of the tests.
func rustAPIKeySpec(t *testing.T) config.Plugin {
	t.Helper()
	wasm := langbuild.Rust(t, filepath.Join(langbuild.RepoRoot(), "examples", "rust-apikey"), t.TempDir())
	return config.Plugin{
		Name:   "apikey",
		Path:   wasm,
		Config: config.JSONValue(`{"keys":{"alice":"k-alice-7f3a","ci":"k-ci-19be"},"realm":"api"}`),
	}
}

// TestExampleRust_APIKey: examples/rust-apikey answers 401 with a JSON
// body and a Bearer challenge without a key or with a wrong one (the
// upstream never sees those), lets a good key through in x-api-key or
// Authorization: Bearer, removes it and names its owner in X-Api-Client;
// counts the denials; and a configuration without keys stops start-up.
func TestExampleRust_APIKey(t *testing.T) {
	t.Parallel()
	spec := rustAPIKeySpec(t)
	app := startEcho(t, "app")
	w := startExampleWedge(t, app.Addr, nil, spec)

	for _, tt := range []struct {
		name      string
		header    []string
		error     string // the JSON body's error
		challenge string // WWW-Authenticate
	}{
		{"no key", nil, "missing_api_key", `Bearer realm="api"`},
		{"wrong x-api-key", []string{"X-Api-Key", "k-alice-7f3b"}, "invalid_api_key", `Bearer realm="api", error="invalid_token"`},
		{"wrong bearer", []string{"Authorization", "Bearer nope"}, "invalid_api_key", `Bearer realm="api", error="invalid_token"`},
		{"key of another scheme", []string{"Authorization", "Basic a2V5Og=="}, "missing_api_key", `Bearer realm="api"`},
		{"key prefix", []string{"X-Api-Key", "k-alice"}, "invalid_api_key", `Bearer realm="api", error="invalid_token"`},
	} {
		resp, body := do(t, "GET", w.URL("/v1/things"), nil, tt.header...)
		if resp.StatusCode != 401 {
			t.Errorf("%s: status %d, want 401; body %q", tt.name, resp.StatusCode, body)
			continue
		}
		var got struct{ Error, Message string }
		if err := json.Unmarshal(body, &got); err != nil || got.Error != tt.error || got.Message == "" {
			t.Errorf("%s: body %q (%v), want JSON with error %q and a message", tt.name, body, err, tt.error)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q, want application/json", tt.name, ct)
		}
		if ch := resp.Header.Get("WWW-Authenticate"); ch != tt.challenge {
			t.Errorf("%s: WWW-Authenticate %q, want %q", tt.name, ch, tt.challenge)
		}
	}
	if n := app.hits.Load(); n != 0 {
		t.Errorf("the upstream saw %d requests without a valid key, want 0", n)
	}

	for _, tt := range []struct {
		name, client string
		header       []string
	}{
		{"x-api-key", "alice", []string{"X-Api-Key", "k-alice-7f3a"}},
		{"bearer", "ci", []string{"Authorization", "Bearer k-ci-19be"}},
		{"bearer, scheme in capitals", "ci", []string{"Authorization", "BEARER k-ci-19be"}},
	} {
		resp, body := do(t, "GET", w.URL("/v1/things?page=2"), nil, tt.header...)
		up := echoed(t, resp, body)
		if up.URI != "/v1/things?page=2" || up.Server != "app" {
			t.Errorf("%s: upstream %s got %q, want app and /v1/things?page=2", tt.name, up.Server, up.URI)
		}
		if got := up.Header.Get("X-Api-Client"); got != tt.client {
			t.Errorf("%s: upstream got X-Api-Client %q, want %q", tt.name, got, tt.client)
		}
		if up.Header.Get("X-Api-Key") != "" || up.Header.Get("Authorization") != "" {
			t.Errorf("%s: the key reached the upstream: %q", tt.name, up.Header)
		}
	}
	if n := app.hits.Load(); n != 3 {
		t.Errorf("the upstream saw %d requests, want the 3 with a valid key", n)
	}

	// A client cannot pose as a key's owner: its own X-Api-Client is replaced.
	resp, body := do(t, "GET", w.URL("/"), nil, "X-Api-Key", "k-ci-19be", "X-Api-Client", "alice")
	if got := echoed(t, resp, body).Header.Values("X-Api-Client"); len(got) != 1 || got[0] != "ci" {
		t.Errorf("upstream got X-Api-Client %q, want only ci", got)
	}

	resp, body = do(t, "GET", "http://"+w.Admin+"/metrics", nil)
	if want := `wedge_apikey_denied_total{plugin="apikey"} 5`; !strings.Contains(string(body), want) {
		t.Errorf("/metrics (status %d) lacks %s", resp.StatusCode, want)
	}

	for _, bad := range []string{`{}`, `{"keys":{}}`, `{"keys":{"a":""}}`, `{"keys":["k"]}`} {
		spec := spec
		spec.Config = config.JSONValue(bad)
		err := exampleLoadError(t, spec)
		if err == nil || !strings.Contains(err.Error(), "apikey") {
			t.Errorf("config %s: server.New gave %v, want an error naming the plugin", bad, err)
		}
	}
}

// cRateLimitSpec builds examples/c-ratelimit and returns its plugin with
// rate 1/s and burst 3, on 4 VMs so that the buckets are seen across VMs.
func cRateLimitSpec(t *testing.T) config.Plugin {
	t.Helper()
	src := filepath.Join(langbuild.RepoRoot(), "examples", "c-ratelimit", "ratelimit.c")
	wasm := langbuild.C(t, filepath.Join(t.TempDir(), "ratelimit.wasm"), src)
	return config.Plugin{
		Name:     "ratelimit",
		Path:     wasm,
		PoolSize: 4,
		Config:   config.JSONValue(`{"rate": 1, "burst": 3}`),
	}
}

// TestExampleC_RateLimit: examples/c-ratelimit lets each client address
// through `burst` times, then answers 429 with Retry-After without asking
// the upstream; another address has its own bucket; a token comes back
// after 1/rate seconds; a configuration without a rate stops start-up.
func TestExampleC_RateLimit(t *testing.T) {
	t.Parallel()
	spec := cRateLimitSpec(t)
	app := startEcho(t, "app")
	w := startExampleWedge(t, app.Addr, nil, spec)
	one, two := clientFrom("127.0.0.1"), clientFrom("127.0.0.2")

	// burst requests pass, the next is refused; at 1 token per second the
	// bucket cannot refill in between unless the machine stalls for 1 s.
	exhaust := func(c *http.Client, who string) {
		t.Helper()
		start := time.Now()
		for i := range 3 {
			resp, body := doWith(t, c, w.URL("/page"))
			if resp.StatusCode != 200 {
				t.Fatalf("%s, request %d of the burst: status %d, want 200; body %q", who, i+1, resp.StatusCode, body)
			}
		}
		resp, body := doWith(t, c, w.URL("/page"))
		if resp.StatusCode != 429 {
			t.Fatalf("%s, request 4 (%v after the first): status %d, want 429; body %q", who, time.Since(start), resp.StatusCode, body)
		}
		if ra := resp.Header.Get("Retry-After"); ra != "1" {
			t.Errorf("%s: Retry-After %q, want 1 (second)", who, ra)
		}
		if !strings.Contains(string(body), "Too Many Requests") || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Errorf("%s: 429 with Content-Type %q, body %q", who, resp.Header.Get("Content-Type"), body)
		}
	}
	exhaust(one, "127.0.0.1")
	if n := app.hits.Load(); n != 3 {
		t.Errorf("the upstream saw %d requests, want the 3 allowed", n)
	}
	exhaust(two, "127.0.0.2") // its own bucket, full
	if n := app.hits.Load(); n != 6 {
		t.Errorf("the upstream saw %d requests, want 6", n)
	}

	time.Sleep(1100 * time.Millisecond) // one token back for each
	for _, c := range []*http.Client{one, two} {
		if resp, body := doWith(t, c, w.URL("/again")); resp.StatusCode != 200 {
			t.Errorf("after 1.1 s: status %d, want 200 (a refilled token); body %q", resp.StatusCode, body)
		}
	}
	if resp, _ := doWith(t, one, w.URL("/again")); resp.StatusCode != 429 {
		t.Errorf("second request after the refill: status %d, want 429 (only one token came back)", resp.StatusCode)
	}

	resp, body := do(t, "GET", "http://"+w.Admin+"/metrics", nil)
	if want := `wedge_ratelimit_limited_total{plugin="ratelimit"} 3`; !strings.Contains(string(body), want) {
		t.Errorf("/metrics (status %d) lacks %s", resp.StatusCode, want)
	}

	for _, bad := range []string{`{}`, `{"rate": 0}`, `{"rate": "5"}`, `{"rate": 5, "burst": 0.5}`} {
		spec := spec
		spec.Config = config.JSONValue(bad)
		err := exampleLoadError(t, spec)
		if err == nil || !strings.Contains(err.Error(), "ratelimit") {
			t.Errorf("config %s: server.New gave %v, want an error naming the plugin", bad, err)
		}
	}
}
