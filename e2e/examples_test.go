package e2e

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/internal/langbuild"
	"github.com/wedgeproxy/wedge/internal/plugintest"
	"github.com/wedgeproxy/wedge/internal/testenv"
	"github.com/wedgeproxy/wedge/plugins"
	"github.com/wedgeproxy/wedge/server"
	"github.com/wedgeproxy/wedge/server/config"
	"github.com/wedgeproxy/wedge/server/pluginhost"
)

// The TestExampleGo_* and TestExampleAS_* tests build examples/go-canary
// (proxy-wasm-go-sdk, GOOS=wasip1) and examples/as-abtest (AssemblyScript,
// with sdk/assemblyscript) the way their READMEs say, load each .wasm into
// a real Wedge in front of real upstreams (echoServers on loopback, and a
// Go authorization service for the canary) and check the behaviour the
// READMEs document. BenchmarkExamples puts every example side by side.

// npmInstall is how to get the AssemblyScript toolchain, for skips.
const npmInstall = "apt-get install npm, then `npm install assemblyscript` (examples/as-abtest: `npm ci`)"

// buildGoExample builds examples/<name> (its own module) with
// `GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared` into dir.
func buildGoExample(t testing.TB, name, dir string) string {
	t.Helper()
	goPlugins.setup.Do(setupGoPlugins) // the go binary; the SDK in the module cache
	if goPlugins.err != nil {
		testenv.Missing(t, goPlugins.err.Error(), goPluginsInstall)
	}
	out := filepath.Join(dir, name+".wasm")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	src := filepath.Join(langbuild.RepoRoot(), "examples", name)
	if msg, err := goCommand(ctx, src, "build", "-buildmode=c-shared", "-o", out, "."); err != nil {
		t.Fatalf("building examples/%s: %v\n%s", name, err, bytes.TrimSpace(msg))
	}
	return out
}

// asInstall serializes `npm ci` in the AssemblyScript example directories.
var asInstall sync.Mutex

// buildASExample builds examples/<name> with `npm ci` (when node_modules
// lacks asc) and `npm run build -- -o <dir>/<name>.wasm`.
func buildASExample(t testing.TB, name, dir string) string {
	t.Helper()
	npm := testenv.LookPath(t, "npm", npmInstall)
	src := filepath.Join(langbuild.RepoRoot(), "examples", name)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, npm, args...)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "npm_config_update_notifier=false", "npm_config_fund=false", "npm_config_audit=false")
		return cmd.CombinedOutput()
	}
	asInstall.Lock()
	if _, err := os.Stat(filepath.Join(src, "node_modules", ".bin", "asc")); err != nil {
		if msg, err := run("ci"); err != nil {
			asInstall.Unlock()
			testenv.Missing(t, fmt.Sprintf("npm ci in examples/%s: %v\n%s", name, err, bytes.TrimSpace(msg)), npmInstall)
		}
	}
	asInstall.Unlock()
	out := filepath.Join(dir, name+".wasm")
	if msg, err := run("run", "--silent", "build", "--", "-o", out); err != nil {
		t.Fatalf("building examples/%s: %v\n%s", name, err, bytes.TrimSpace(msg))
	}
	return out
}

// TestExampleAS_ABTest: examples/as-abtest sends the users whose cookie
// bucket is below share to pool b and the others to the default pool,
// with x-ab-variant; gives a new user a bucket and a sticky cookie, about
// share% of new users landing in b; and refuses a bad configuration.
func TestExampleAS_ABTest(t *testing.T) {
	t.Parallel()
	wasm := buildASExample(t, "as-abtest", t.TempDir())
	app, b := startEcho(t, "app"), startEcho(t, "b")
	spec := config.Plugin{Name: "abtest", Path: wasm, Config: config.JSONValue(`{"pool_a":"app","pool_b":"b","share":20}`), PoolSize: 2}
	w := startExampleWedge(t, app.Addr, map[string]string{"b": b.Addr}, spec)

	t.Run("bucket decides, no new cookie", func(t *testing.T) {
		hitsB := b.hits.Load()
		for n := range 100 {
			resp, body := do(t, "GET", w.URL("/"), nil, "Cookie", "theme=dark; wedge_ab="+strconv.Itoa(n))
			up := echoed(t, resp, body)
			want := "app"
			if n < 20 {
				want = "b"
			}
			if up.Server != want || up.Header.Get("X-Ab-Variant") != map[string]string{"app": "a", "b": "b"}[want] {
				t.Fatalf("bucket %d: served by %s with x-ab-variant %q, want %s", n, up.Server, up.Header.Get("X-Ab-Variant"), want)
			}
			if c := resp.Header.Values("Set-Cookie"); len(c) != 0 {
				t.Fatalf("bucket %d: Set-Cookie %q for a user who has one", n, c)
			}
		}
		if got := b.hits.Load() - hitsB; got != 20 {
			t.Errorf("pool b got %d of 100 requests, want 20 (buckets 0-19)", got)
		}
	})

	t.Run("new users: share and sticky cookie", func(t *testing.T) {
		const users = 300
		inB := 0
		for i := range users {
			resp, body := do(t, "GET", w.URL(fmt.Sprintf("/u/%d", i)), nil)
			up := echoed(t, resp, body)
			c := resp.Header.Get("Set-Cookie")
			val, ok := strings.CutPrefix(c, "wedge_ab=")
			val, _, _ = strings.Cut(val, ";")
			n, err := strconv.Atoi(val)
			if !ok || err != nil || n < 0 || n > 99 || !strings.Contains(c, "; Path=/; Max-Age=2592000; SameSite=Lax") {
				t.Fatalf("user %d: Set-Cookie %q, want wedge_ab=<0-99>; Path=/; Max-Age=2592000; SameSite=Lax", i, c)
			}
			if (n < 20) != (up.Server == "b") {
				t.Fatalf("user %d: bucket %d served by %s", i, n, up.Server)
			}
			if up.Server == "b" {
				inB++
			}
			if i < 10 { // the cookie keeps the user where they are
				resp, body := do(t, "GET", w.URL("/again"), nil, "Cookie", "wedge_ab="+val)
				if again := echoed(t, resp, body); again.Server != up.Server || resp.Header.Get("Set-Cookie") != "" {
					t.Fatalf("user %d back with bucket %d: served by %s (first %s), Set-Cookie %q", i, n, again.Server, up.Server, resp.Header.Get("Set-Cookie"))
				}
			}
		}
		// Binomial(300, 0.2): mean 60, sd 6.9; 30..95 is over 4 sd each way.
		if inB < 30 || inB > 95 {
			t.Errorf("%d of %d new users in b, want about 20%% (30..95)", inB, users)
		}
		t.Logf("%d of %d new users in b (share 20%%)", inB, users)
	})

	t.Run("bad configuration", func(t *testing.T) {
		for _, cfg := range []string{`{"share":20}`, `{"pool_b":"b","share":150}`, `[1]`} {
			bad := spec
			bad.Config = config.JSONValue(cfg)
			if err := exampleLoadError(t, bad); err == nil || !strings.Contains(err.Error(), `"abtest"`) {
				t.Errorf("config %s: %v, want start-up refused naming the plugin", cfg, err)
			}
		}
	})
}

// TestExampleGo_Canary: examples/go-canary asks the authorization service
// (a pool) about each request, lets allowed ones through to the stable or,
// with x-canary: 1, the canary pool, with x-auth-user; answers 403 for a
// denied one and 503 when the service is down; refuses a configuration
// without its pools.
func TestExampleGo_Canary(t *testing.T) {
	t.Parallel()
	wasm := buildGoExample(t, "go-canary", t.TempDir())
	app, canary, auth := startEcho(t, "app"), startEcho(t, "canary"), startAuth(t)
	spec := config.Plugin{Name: "canary", Path: wasm, Config: config.JSONValue(`{"auth_pool":"auth","stable_pool":"app","canary_pool":"canary"}`), PoolSize: 2}
	w := startExampleWedge(t, app.Addr, map[string]string{"canary": canary.Addr, "auth": auth.Addr}, spec)

	for _, tt := range []struct {
		name, auth, canaryField, want string
	}{
		{"allowed, stable", "Bearer good", "", "app"},
		{"allowed, canary", "Bearer good", "1", "canary"},
		{"allowed, other canary value", "Bearer good", "0", "app"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(auth.calls())
			h := []string{"Authorization", tt.auth}
			if tt.canaryField != "" {
				h = append(h, "X-Canary", tt.canaryField)
			}
			resp, body := do(t, "POST", w.URL("/orders?id=7"), []byte("order"), h...)
			up := echoed(t, resp, body)
			if up.Server != tt.want || up.Header.Get("X-Auth-User") != "alice" || up.Body != "order" {
				t.Errorf("served by %s, x-auth-user %q, body %q; want %s, alice, order", up.Server, up.Header.Get("X-Auth-User"), up.Body, tt.want)
			}
			calls := auth.calls()
			if len(calls) != before+1 || calls[before] != "GET /check auth Bearer good" {
				t.Errorf("auth service saw %q, want one GET /check auth Bearer good", calls[before:])
			}
		})
	}
	t.Run("denied", func(t *testing.T) {
		hits := app.hits.Load() + canary.hits.Load()
		for _, c := range []string{"", "1"} {
			resp, body := do(t, "GET", w.URL("/orders"), nil, "Authorization", "Bearer bad", "X-Canary", c)
			if resp.StatusCode != 403 || string(body) != "forbidden\n" || resp.Header.Get("X-Auth-Status") != "401" {
				t.Errorf("canary %q: %d %q x-auth-status %q, want 403 \"forbidden\\n\" 401", c, resp.StatusCode, body, resp.Header.Get("X-Auth-Status"))
			}
		}
		if got := app.hits.Load() + canary.hits.Load(); got != hits {
			t.Errorf("a denied request reached an upstream")
		}
	})
	t.Run("auth service down", func(t *testing.T) {
		w := startExampleWedge(t, app.Addr, map[string]string{"canary": canary.Addr, "auth": freeAddr(t)}, spec)
		hits := app.hits.Load()
		resp, body := do(t, "GET", w.URL("/orders"), nil, "Authorization", "Bearer good")
		if resp.StatusCode != 503 || string(body) != "authorization service unavailable\n" {
			t.Errorf("%d %q, want 503 \"authorization service unavailable\\n\"", resp.StatusCode, body)
		}
		if app.hits.Load() != hits {
			t.Error("the request reached the upstream with the authorization service down")
		}
	})
	t.Run("bad configuration", func(t *testing.T) {
		bad := spec
		bad.Config = config.JSONValue(`{"auth_pool":"auth"}`)
		if err := exampleLoadError(t, bad); err == nil || !strings.Contains(err.Error(), `"canary"`) {
			t.Errorf("%v, want start-up refused naming the plugin", err)
		}
	})
}

// TestExamples_PluginTest runs `wedge plugin test` on the examples' own
// plugintest.yaml files with the plugins just built: every case passes and
// the output says what each plugin did.
func TestExamples_PluginTest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tt := range []struct {
		name  string
		build func(testing.TB, string, string) string
		want  []string
	}{
		{"as-abtest", buildASExample, []string{
			"plugin abtest (as-abtest.wasm, ",
			"=== 1. a user in bucket 10 sees variant B\nrequest:  GET /\nupstream: b (GET /)\n  + x-ab-variant: b\n" +
				"response: 200, from the upstream\n  body: \"variant b\\n\"\nlog:      info abtest: bucket 10 variant b\nPASS\n",
			"\n  + set-cookie: wedge_ab=",
			"4 cases, 4 passed, 0 failed\n",
		}},
		{"go-canary", buildGoExample, []string{
			"plugin canary (go-canary.wasm, ",
			"=== 1. allowed, stable\nrequest:  GET /orders\nupstream: app (GET /orders)\n  + x-auth-user: alice\n" +
				"call:     auth (GET /check)\nresponse: 200, from the upstream\n  body: \"stable\\n\"\nlog:      info canary: app allow\nPASS\n",
			"=== 3. denied\nrequest:  GET /orders\nupstream: none\ncall:     auth (GET /check)\n" +
				"response: 403, local response from the plugin\n  + content-type: text/plain\n  + x-auth-status: 401\n  body: \"forbidden\\n\"\n",
			"log:      warn canary: app unavailable (call failed)\nPASS\n",
			"4 cases, 4 passed, 0 failed\n",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wasm := tt.build(t, tt.name, dir)
			var out, errOut bytes.Buffer
			file := filepath.Join(langbuild.RepoRoot(), "examples", tt.name, "plugintest.yaml")
			if code := plugintest.Command([]string{"test", "--plugin", wasm, file}, &out, &errOut); code != 0 {
				t.Fatalf("exit code %d; stderr %s\n%s", code, errOut.String(), out.String())
			}
			for _, want := range tt.want {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q; output:\n%s", want, out.String())
				}
			}
		})
	}
}

// exampleBenchRow is one plugin of BenchmarkExamples. To add one (another
// language's example), append to exampleBenchRows from an init function.
type exampleBenchRow struct {
	name string
	// build returns the path of the .wasm, built into dir (or committed);
	// BenchmarkExamples calls it once per row.
	build func(tb testing.TB, dir string) string
	// config is the plugin configuration; pools the extra upstream pools
	// it needs ("auth" gets an authorization service allowing "Bearer
	// good", the others an echo); header the request's fields.
	config string
	pools  []string
	header []string
	// path is the request's path; default "/bench".
	path string
	// routed puts the wat-baseline router after the plugin, for plugins
	// that do not route themselves (it sends /api/... to the pool "api"):
	// the row then costs the baseline plus the plugin.
	routed bool
}

var exampleBenchRows = []exampleBenchRow{
	{name: "wat-baseline", build: func(testing.TB, string) string {
		return filepath.Join(langbuild.RepoRoot(), "sdk", "wedgetest", "testdata", "router.wasm")
	}, pools: []string{"api"}, path: "/api/bench"},
	{name: "go-canary", build: func(tb testing.TB, dir string) string { return buildGoExample(tb, "go-canary", dir) },
		config: `{"auth_pool":"auth","stable_pool":"app","canary_pool":"canary"}`, pools: []string{"auth", "canary"},
		header: []string{"Authorization", "Bearer good"}},
	{name: "as-abtest", build: func(tb testing.TB, dir string) string { return buildASExample(tb, "as-abtest", dir) },
		config: `{"pool_a":"app","pool_b":"b","share":20}`, pools: []string{"b"}, header: []string{"Cookie", "wedge_ab=7"}},
	{name: "rust-apikey", build: func(tb testing.TB, dir string) string {
		return langbuild.Rust(tb, filepath.Join(langbuild.RepoRoot(), "examples", "rust-apikey"), dir)
	}, config: `{"keys":{"alice":"k-alice-7f3a"}}`, header: []string{"X-Api-Key", "k-alice-7f3a"},
		routed: true, pools: []string{"api"}, path: "/api/bench"},
	{name: "c-ratelimit", build: func(tb testing.TB, dir string) string {
		return langbuild.C(tb, filepath.Join(dir, "ratelimit.wasm"), filepath.Join(langbuild.RepoRoot(), "examples", "c-ratelimit", "ratelimit.c"))
	}, config: `{"rate":1000000,"burst":1000000}`, routed: true, pools: []string{"api"}, path: "/api/bench"},
}

// BenchmarkExamples reports, for each example plugin side by side, its
// size (wasm-bytes), the time to compile and start one VM of it in a fresh
// plugin host (cold-start-ms: NewChain, compilation included), to start
// one again with the compiled code cached (start-ms), and the time per
// request through an in-process Wedge on loopback with keep-alive, the
// plugin alone in the chain, in front of upstreams answering "ok" (ns/op,
// the plugin's HTTP calls included). The row wat-baseline is the smallest
// plugin that routes (sdk/wedgetest/testdata/router.wat, hand-written
// WebAssembly): the difference to it is what a language's runtime and the
// example's work cost. Run with -benchtime=100x or more:
//
//	go test -run '^$' -bench Examples -benchtime=1000x ./e2e/
func BenchmarkExamples(b *testing.B) {
	dir := b.TempDir()
	built := map[string]string{} // row name -> .wasm, built once
	for _, row := range exampleBenchRows {
		b.Run(row.name, func(b *testing.B) {
			wasm := built[row.name]
			if wasm == "" {
				wasm = row.build(b, dir)
				built[row.name] = wasm
			}
			size, cold, warm := benchStart(b, row, wasm)
			benchRequests(b, row, wasm)
			// After the timed loop: ResetTimer drops reported metrics.
			b.ReportMetric(float64(size), "wasm-bytes")
			b.ReportMetric(float64(cold.Microseconds())/1000, "cold-start-ms")
			b.ReportMetric(float64(warm.Microseconds())/1000, "start-ms")
		})
	}
}

// benchStart measures the module's size, a cold start and a warm one.
func benchStart(b *testing.B, row exampleBenchRow, wasmPath string) (size int, cold, warm time.Duration) {
	b.Helper()
	wasm, err := os.ReadFile(wasmPath)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	// An empty compilation cache of its own: the first start compiles and
	// fills it, the second finds the code there, as a restart does.
	h, err := pluginhost.New(ctx, pluginhost.Config{Logger: slog.New(slog.DiscardHandler), CompilationCacheDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close(ctx)
	spec := []pluginhost.PluginSpec{{Name: row.name, Wasm: wasm, Configuration: []byte(row.config), PoolSize: 1}}
	for i := range 2 {
		start := time.Now()
		c, err := h.NewChain(ctx, spec)
		if err != nil {
			b.Fatalf("NewChain: %v", err)
		}
		d := time.Since(start)
		if i == 0 {
			cold = d
		} else {
			warm = d
		}
		c.Close(ctx)
	}
	return len(wasm), cold, warm
}

// benchRequests runs b.N GETs through Wedge with the row's plugin on one
// keep-alive connection.
func benchRequests(b *testing.B, row exampleBenchRow, wasm string) {
	b.Helper()
	ok := func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/check" && r.Header.Get("Authorization") != "Bearer good" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		w.Header().Set("X-User", "alice")
		io.WriteString(w, "ok")
	}
	pools := map[string]string{}
	for _, name := range append([]string{"app"}, row.pools...) {
		pools[name] = benchUpstream(b, http.HandlerFunc(ok))
	}
	cfg, err := config.QuickMode([]string{freeAddr(b)}, []string{pools["app"]}, "")
	if err != nil {
		b.Fatal(err)
	}
	delete(pools, "app")
	cfg.Log.Access = "off"
	cfg.Limits.TempPath = b.TempDir()
	for name, addr := range pools {
		cfg.Upstreams[name] = &config.Upstream{Servers: []config.UpstreamServer{{Address: addr}}}
	}
	// Alone in the chain, the plugin routes every request itself;
	// otherwise the baseline router follows it.
	cfg.Plugins = []config.Plugin{{Name: row.name, Path: wasm, Config: config.JSONValue(row.config), PoolSize: 1}}
	if row.routed {
		cfg.Plugins = append(cfg.Plugins, config.Plugin{Name: "wat-router", Path: exampleBenchRows[0].build(b, ""), PoolSize: 1})
	}
	cfg.PluginCache = "off"
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	srv, err := server.New(cfg, server.Options{Logger: slog.New(slog.DiscardHandler), Builtins: plugins.Builtin})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	url := "http://" + srv.Addrs()[0].String() + cmp.Or(row.path, "/bench")
	get := func() {
		req, _ := http.NewRequest("GET", url, nil)
		for i := 0; i+1 < len(row.header); i += 2 {
			req.Header.Set(row.header[i], row.header[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	get() // the connection, the VM's first request
	b.ResetTimer()
	for range b.N {
		get()
	}
}

// benchUpstream serves h on a loopback port until the benchmark ends.
func benchUpstream(b *testing.B, h http.Handler) string {
	b.Helper()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}
