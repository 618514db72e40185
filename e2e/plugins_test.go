package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/internal/testenv"
	"github.com/wedgeproxy/wedge/plugins"
	"github.com/wedgeproxy/wedge/server"
	"github.com/wedgeproxy/wedge/server/config"
	"github.com/wedgeproxy/wedge/server/pluginhost"
)

// The TestGoPlugin_* tests run filters written with proxy-wasm-go-sdk
// (testdata/goplugins, its own module, so the main module neither compiles
// nor tidies them) through a real Wedge in front of real upstreams, and
// check that each behaves as the SDK documents. The filters are built by
// the tests, once per test process, into a temporary directory:
//
//	cd e2e/testdata/goplugins/<name> && GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o <name>.wasm .
//
// They skip when the SDK cannot be downloaded (no network and not in the
// module cache) and fail instead under WEDGE_REQUIRE_ALL=1.

const goPluginsInstall = "network access to proxy.golang.org, or `cd e2e/testdata/goplugins && go mod download` beforehand"

// goPluginBuild is one guest, built at most once per test process.
type goPluginBuild struct {
	once sync.Once
	path string
	err  error
}

var goPlugins struct {
	setup  sync.Once
	dir    string // the temporary directory with the .wasm files and wazero's cache
	src    string // e2e/testdata/goplugins
	goBin  string
	err    error // from setup: no directory, or the SDK cannot be downloaded
	mu     sync.Mutex
	builds map[string]*goPluginBuild
}

func TestMain(m *testing.M) {
	code := m.Run()
	if goPlugins.dir != "" {
		os.RemoveAll(goPlugins.dir)
	}
	os.Exit(code)
}

// goCommand runs the go tool in dir for GOOS=wasip1 GOARCH=wasm, outside
// any workspace and with GOFLAGS of its own (the test's, such as -race,
// mean nothing to a wasm build).
func goCommand(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, goPlugins.goBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOWORK=off", "GOFLAGS=-buildvcs=false", "CGO_ENABLED=0")
	return cmd.CombinedOutput()
}

func setupGoPlugins() {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		goPlugins.err = errors.New("cannot locate e2e/testdata/goplugins")
		return
	}
	goPlugins.src = filepath.Join(filepath.Dir(self), "testdata", "goplugins")
	goPlugins.goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goPlugins.goBin); err != nil {
		goPlugins.goBin = "go"
	}
	goPlugins.builds = map[string]*goPluginBuild{}
	goPlugins.dir, goPlugins.err = os.MkdirTemp("", "wedge-goplugins-")
	if goPlugins.err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if msg, err := goCommand(ctx, goPlugins.src, "mod", "download"); err != nil {
		goPlugins.err = fmt.Errorf("downloading proxy-wasm-go-sdk for the Go plugins: %v\n%s", err, bytes.TrimSpace(msg))
	}
}

// goPlugin returns the path of the guest testdata/goplugins/<name> built
// to a .wasm, building it the first time. It skips t when the SDK cannot
// be downloaded (fails under WEDGE_REQUIRE_ALL=1), and fails t when the
// guest does not build.
func goPlugin(t testing.TB, name string) string {
	t.Helper()
	goPlugins.setup.Do(setupGoPlugins)
	if goPlugins.err != nil {
		testenv.Missing(t, goPlugins.err.Error(), goPluginsInstall)
	}
	goPlugins.mu.Lock()
	b := goPlugins.builds[name]
	if b == nil {
		b = &goPluginBuild{}
		goPlugins.builds[name] = b
	}
	goPlugins.mu.Unlock()
	b.once.Do(func() {
		out := filepath.Join(goPlugins.dir, name+".wasm")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if msg, err := goCommand(ctx, filepath.Join(goPlugins.src, name), "build", "-buildmode=c-shared", "-o", out, "."); err != nil {
			b.err = fmt.Errorf("building the Go plugin %s: %v\n%s", name, err, bytes.TrimSpace(msg))
			return
		}
		b.path = out
	})
	if b.err != nil {
		t.Fatal(b.err) // the toolchain and the SDK are there: the guest is broken
	}
	return b.path
}

// goPluginSpec is the configuration of the plugin built from
// testdata/goplugins/<name>.
func goPluginSpec(t testing.TB, name string) config.Plugin {
	return config.Plugin{Name: name, Path: goPlugin(t, name)}
}

// pluginConfig adds pools (name -> host:port) to cfg's upstreams, keeping
// "app" the default (the built-in router, first in the chain), turns the admin listener on, shares one wazero
// compilation cache between every Wedge of the test process, sets the
// plugin chain (callback_timeout 10s unless set) and applies the defaults.
func pluginConfig(t testing.TB, cfg *config.Config, pools map[string]string, plugins []config.Plugin) {
	cfg.Admin.Address = freeAddr(t)
	goPlugins.setup.Do(setupGoPlugins) // goPlugins.dir, even for a chain of built-ins only
	cfg.PluginCache = "off"
	if goPlugins.dir != "" {
		cfg.PluginCache = filepath.Join(goPlugins.dir, "wazero-cache")
	}
	for name, addr := range pools {
		cfg.Upstreams[name] = &config.Upstream{Servers: []config.UpstreamServer{{Address: addr}}}
	}
	// The built-in router first, with a default route to "app": the
	// plugins under test see wedge.upstream set and may change it.
	cfg.Plugins = append([]config.Plugin{{Name: "routes", Builtin: "router", Config: config.JSONValue(`{"routes":[{"upstream":"app"}]}`)}},
		plugins...)
	for i := range cfg.Plugins {
		if cfg.Plugins[i].CallbackTimeout == 0 {
			// Generous: a loaded machine running -race must not fail
			// a test that is not about timeouts.
			cfg.Plugins[i].CallbackTimeout = config.Duration(10 * time.Second)
		}
	}
	cfg.ApplyDefaults()
}

// startPluginWedge starts Wedge (startWedge) in front of app (the pool
// "app") with the extra pools and the plugin chain (pluginConfig); tweak,
// if any, may change the configuration first.
func startPluginWedge(t *testing.T, app string, pools map[string]string, plugins []config.Plugin, tweak func(*config.Config)) *wedge {
	t.Helper()
	return startWedge(t, app, func(cfg *config.Config) {
		if tweak != nil {
			tweak(cfg)
		}
		pluginConfig(t, cfg, pools, plugins)
	})
}

// echoServer is an upstream that answers every request with what it
// received, as JSON (echoReply), plus the fields X-Upstream: <name>,
// X-Up-Replace: old and X-Up-Remove: yes for plugins to edit. Requests
// under /pair/ are held until a second one arrives (at most 5 s), so that
// two are in flight at once; with the query chunked=1 the reply is sent
// chunked.
type echoServer struct {
	Name string
	Addr string
	hits atomic.Int64

	gateMu sync.Mutex
	gate   chan struct{}
}

// echoReply is an echoServer's answer.
type echoReply struct {
	Server           string      `json:"server"`
	Method           string      `json:"method"`
	URI              string      `json:"uri"`
	Host             string      `json:"host"`
	Header           http.Header `json:"header"`
	Body             string      `json:"body"`
	ContentLength    int64       `json:"content_length"`
	TransferEncoding []string    `json:"transfer_encoding"`
}

func startEcho(t *testing.T, name string) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echoServer{Name: name, Addr: ln.Addr().String()}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return e
}

func (e *echoServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.hits.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/pair/") {
		e.pair()
	}
	out, _ := json.Marshal(echoReply{
		Server: e.Name, Method: r.Method, URI: r.RequestURI, Host: r.Host, Header: r.Header,
		Body: string(body), ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding,
	})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Upstream", e.Name)
	h.Set("X-Up-Replace", "old")
	h.Set("X-Up-Remove", "yes")
	if r.URL.Query().Get("chunked") == "" {
		h.Set("Content-Length", strconv.Itoa(len(out)))
		w.Write(out)
		return
	}
	half := len(out) / 2 // two flushes: a chunked response
	w.Write(out[:half])
	w.(http.Flusher).Flush()
	w.Write(out[half:])
}

// pair returns when another request calls it too, or after 5 s.
func (e *echoServer) pair() {
	e.gateMu.Lock()
	if g := e.gate; g != nil {
		e.gate = nil
		e.gateMu.Unlock()
		close(g)
		return
	}
	g := make(chan struct{})
	e.gate = g
	e.gateMu.Unlock()
	select {
	case <-g:
	case <-time.After(5 * time.Second):
		e.gateMu.Lock()
		if e.gate == g {
			e.gate = nil
		}
		e.gateMu.Unlock()
	}
}

// pluginClient is the HTTP client of these tests: a new connection per
// request, bounded in time.
var pluginClient = normalClient(20 * time.Second)

// do sends one request with pluginClient and returns the response with
// its whole body. header holds name, value pairs, added in order ("Host"
// sets the request's host); a nil body sends none.
func do(t testing.TB, method, url string, body []byte, header ...string) (*http.Response, []byte) {
	t.Helper()
	return doClient(t, pluginClient, method, url, body, header...)
}

// doClient is do with client c.
func doClient(t testing.TB, c *http.Client, method, url string, body []byte, header ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if strings.EqualFold(header[i], "Host") {
			req.Host = header[i+1]
			continue
		}
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp, b
}

// echoed decodes an echoServer's reply, failing t when the response is
// not a 200 from an echo.
func echoed(t testing.TB, resp *http.Response, body []byte) echoReply {
	t.Helper()
	var r echoReply
	if resp.StatusCode != 200 {
		t.Fatalf("status %d, want 200; body %q", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("upstream reply %q: %v", body, err)
	}
	return r
}

// TestGoPlugin_Headers: a filter adds, replaces and removes request and
// response fields and rewrites :path; the upstream and the client see
// exactly that.
func TestGoPlugin_Headers(t *testing.T) {
	t.Parallel()
	app := startEcho(t, "app")
	w := startPluginWedge(t, app.Addr, nil, []config.Plugin{goPluginSpec(t, "headers")}, nil)

	resp, body := do(t, "GET", w.URL("/old/thing?x=1"), nil, "Host", "client.example",
		"X-Replace", "old", "X-Remove", "yes", "X-Multi", "client", "X-Keep", "k", "X-Authority", "rewritten.example")
	up := echoed(t, resp, body)
	if up.URI != "/new/thing?x=1" {
		t.Errorf("upstream got request-target %q, want /new/thing?x=1 (the :path rewrite)", up.URI)
	}
	if up.Host != "rewritten.example" {
		t.Errorf("upstream got Host %q, want rewritten.example (the :authority rewrite)", up.Host)
	}
	// The map the filter lists: the pseudo-fields first, names in lower
	// case, Host only as :authority.
	names := strings.Split(up.Header.Get("X-Seen-Names"), ",")
	if len(names) < 4 || !slices.Equal(names[:4], []string{":authority", ":path", ":method", ":scheme"}) {
		t.Errorf("GetHttpRequestHeaders listed %q, want :authority, :path, :method, :scheme first", names)
	}
	for _, n := range []string{"x-replace", "x-remove", "x-multi", "x-keep", "x-authority"} {
		if !slices.Contains(names, n) {
			t.Errorf("GetHttpRequestHeaders listed %q, without %s", names, n)
		}
	}
	if slices.Contains(names, "host") {
		t.Errorf("GetHttpRequestHeaders listed host besides :authority: %q", names)
	}
	for name, want := range map[string][]string{
		"X-Added":          {"yes"},
		"X-Replace":        {"new"},
		"X-Remove":         nil,
		"X-Multi":          {"client", "plugin"}, // add keeps the existing value
		"X-Keep":           {"k"},
		"X-Set-By-Replace": {"v"}, // replace adds a field that is absent
	} {
		if got := up.Header.Values(name); !slices.Equal(got, want) {
			t.Errorf("upstream got %s: %q, want %q", name, got, want)
		}
	}
	for name, want := range map[string][]string{
		"X-Resp-Added":    {"yes"},
		"X-Original-Path": {"/old/thing?x=1"},
		"X-Up-Replace":    {"new"},
		"X-Up-Remove":     nil,
		"X-Upstream":      {"app"},
		"X-Seen-Status":   {"200"},
	} {
		if got := resp.Header.Values(name); !slices.Equal(got, want) {
			t.Errorf("client got %s: %q, want %q", name, got, want)
		}
	}

	// A path the filter does not rewrite goes through as it was.
	resp, body = do(t, "GET", w.URL("/kept/path"), nil, "Host", "client.example")
	if up := echoed(t, resp, body); up.URI != "/kept/path" || up.Host != "client.example" {
		t.Errorf("upstream got %q for %q, want /kept/path for client.example", up.URI, up.Host)
	}

	// :status set in the response phase.
	resp, body = do(t, "GET", w.URL("/old/status/x"), nil)
	if resp.StatusCode != 299 {
		t.Errorf("/old/status/x: status %d, want 299 (set by the filter); body %q", resp.StatusCode, body)
	}

	// Whole maps replaced, pseudo-fields included.
	resp, body = do(t, "POST", w.URL("/all/x"), []byte("kept"), "X-Gone", "1")
	if resp.StatusCode != 203 {
		t.Fatalf("/all/x: status %d, want 203 (the replaced :status); body %q", resp.StatusCode, body)
	}
	up = echoReply{}
	if err := json.Unmarshal(body, &up); err != nil {
		t.Fatalf("/all/x: %v in %q", err, body)
	}
	if up.Method != "GET" || up.URI != "/all-replaced" || up.Host != "all.example" || up.Header.Get("X-Only") != "1" || up.Header.Get("X-Gone") != "" {
		t.Errorf("after ReplaceHttpRequestHeaders the upstream got %s %s, Host %q, fields %q", up.Method, up.URI, up.Host, up.Header)
	}
	if up.Body != "kept" {
		t.Errorf("after ReplaceHttpRequestHeaders the upstream got body %q, want \"kept\" (framing is the proxy's)", up.Body)
	}
	if resp.Header.Get("X-All") != "1" || resp.Header.Get("Content-Type") != "text/plain" ||
		resp.Header.Get("X-Upstream") != "" || resp.ContentLength != int64(len(body)) {
		t.Errorf("after ReplaceHttpResponseHeaders the client got %q, Content-Length %d for %d bytes", resp.Header, resp.ContentLength, len(body))
	}
	if names := strings.Split(resp.Header.Get("X-Names"), ","); names[0] != ":status" || !slices.Contains(names, "x-upstream") {
		t.Errorf("GetHttpResponseHeaders listed %q, want :status first and x-upstream", names)
	}
}

// TestGoPlugin_Body: a filter replaces the whole request body and edits
// the response body (prepend, append); the upstream and the client get
// the new bodies with a Content-Length that fits them, small and large
// (spilled to temp files), whether or not the filter removed
// Content-Length itself, and when the client's body and the upstream's
// response were chunked, on one keep-alive connection.
func TestGoPlugin_Body(t *testing.T) {
	t.Parallel()
	app := startEcho(t, "app")
	w := startPluginWedge(t, app.Addr, nil, []config.Plugin{goPluginSpec(t, "body")}, func(cfg *config.Config) {
		cfg.Limits.ClientBodyBufferSize = 4 << 10 // larger bodies spill to a temp file
		cfg.Limits.ProxyBufferSize = 4 << 10
	})

	c, err := net.Dial("tcp", w.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReader(c)
	for _, size := range []int{1, 11, 100 << 10} {
		for _, mode := range []string{"length", "drop-length", "chunked"} {
			name := fmt.Sprintf("size=%d/%s", size, mode)
			payload := bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz-"), size/27+1)[:size]
			var req bytes.Buffer
			switch mode {
			case "length", "drop-length":
				fmt.Fprintf(&req, "POST /upload HTTP/1.1\r\nHost: body.test\r\nContent-Length: %d\r\n", size)
				if mode == "drop-length" {
					req.WriteString("X-Drop-Length: 1\r\n")
				}
				req.WriteString("\r\n")
				req.Write(payload)
			case "chunked": // the client's body and the upstream's reply chunked
				req.WriteString("POST /upload?chunked=1 HTTP/1.1\r\nHost: body.test\r\nTransfer-Encoding: chunked\r\n\r\n")
				for p := payload; len(p) > 0; {
					n := min(len(p), 5000)
					fmt.Fprintf(&req, "%x\r\n%s\r\n", n, p[:n])
					p = p[n:]
				}
				req.WriteString("0\r\n\r\n")
			}
			if _, err := c.Write(req.Bytes()); err != nil {
				t.Fatalf("%s: writing request: %v", name, err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s: reading response (a wrong Content-Length before it shows here): %v", name, err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("%s: reading body: %v", name, err)
			}
			if resp.StatusCode != 200 {
				t.Fatalf("%s: status %d: %q", name, resp.StatusCode, body)
			}
			if resp.ContentLength != int64(len(body)) || len(resp.TransferEncoding) != 0 {
				t.Errorf("%s: response Content-Length %d, Transfer-Encoding %q for a %d-byte body",
					name, resp.ContentLength, resp.TransferEncoding, len(body))
			}
			inner, ok1 := bytes.CutPrefix(body, []byte("<<"))
			inner, ok2 := bytes.CutSuffix(inner, []byte(">>"))
			if !ok1 || !ok2 {
				t.Fatalf("%s: response body not wrapped in << >>: %.80q...", name, body)
			}
			var up echoReply
			if err := json.Unmarshal(inner, &up); err != nil {
				t.Fatalf("%s: upstream reply: %v", name, err)
			}
			want := "request:" + strings.ToUpper(string(payload))
			if up.Body != want {
				t.Errorf("%s: upstream got a %d-byte body %.40q..., want %d bytes %.40q...", name, len(up.Body), up.Body, len(want), want)
			}
			if up.ContentLength != int64(len(want)) || len(up.TransferEncoding) != 0 {
				t.Errorf("%s: upstream got Content-Length %d, Transfer-Encoding %q, want %d", name, up.ContentLength, up.TransferEncoding, len(want))
			}
		}
	}
	w.assertTempEmpty(t)
}

// TestGoPlugin_LocalResponse: SendHttpResponse answers the client
// (status, fields, body): from the request headers and body phases the
// upstream never sees the request; from the response headers phase it
// replaces the upstream's response.
func TestGoPlugin_LocalResponse(t *testing.T) {
	t.Parallel()
	app := startEcho(t, "app")
	w := startPluginWedge(t, app.Addr, nil, []config.Plugin{goPluginSpec(t, "deny")}, nil)

	for _, method := range []string{"GET", "POST"} {
		var reqBody []byte
		if method == "POST" {
			reqBody = []byte("some body the upstream must not get")
		}
		resp, body := do(t, method, w.URL("/admin/secret"), reqBody)
		if resp.StatusCode != 403 || string(body) != "forbidden: /admin/secret" {
			t.Errorf("%s /admin/secret: %d %q, want 403 \"forbidden: /admin/secret\"", method, resp.StatusCode, body)
		}
		if got := resp.Header.Get("X-Denied-By"); got != "deny" {
			t.Errorf("%s: X-Denied-By %q, want deny", method, got)
		}
		if got := resp.Header.Get("Content-Type"); got != "text/plain" {
			t.Errorf("%s: Content-Type %q, want text/plain", method, got)
		}
		if resp.ContentLength != int64(len(body)) {
			t.Errorf("%s: Content-Length %d for %d bytes", method, resp.ContentLength, len(body))
		}
	}
	if n := app.hits.Load(); n != 0 {
		t.Errorf("the upstream got %d requests for denied paths", n)
	}
	resp, body := do(t, "GET", w.URL("/public"), nil)
	if up := echoed(t, resp, body); up.URI != "/public" {
		t.Errorf("upstream got %q", up.URI)
	}

	// From the request body phase: the upstream never sees it.
	hits := app.hits.Load()
	resp, body = do(t, "POST", w.URL("/upload"), []byte("an EVIL payload"))
	if resp.StatusCode != 400 || string(body) != "evil body" || resp.Header.Get("X-Denied-By") != "deny-body" {
		t.Errorf("POST with EVIL: %d %q %q, want 400 \"evil body\" from the body phase", resp.StatusCode, body, resp.Header)
	}
	if app.hits.Load() != hits {
		t.Error("a request denied in its body phase reached the upstream")
	}
	resp, body = do(t, "POST", w.URL("/upload"), []byte("a fine payload"))
	if up := echoed(t, resp, body); up.Body != "a fine payload" {
		t.Errorf("upstream got %q", up.Body)
	}

	// From the response headers phase: replaces the upstream's response.
	resp, body = do(t, "GET", w.URL("/replace/x"), nil)
	if resp.StatusCode != 502 || string(body) != "replaced" || resp.Header.Get("X-Denied-By") != "deny-response" {
		t.Errorf("/replace/x: %d %q %q, want 502 \"replaced\" from the response phase", resp.StatusCode, body, resp.Header)
	}
	if got := resp.Header.Get("X-Upstream-Status"); got != "200" {
		t.Errorf("/replace/x: the filter read :status %q, want 200", got)
	}
	if resp.Header.Get("X-Upstream") != "" || resp.ContentLength != int64(len(body)) {
		t.Errorf("/replace/x: upstream fields leaked or wrong length: %q, Content-Length %d", resp.Header, resp.ContentLength)
	}
}

// TestGoPlugin_Properties: properties a filter reads (GetProperty,
// GetPropertyMap) have Envoy's names and values.
func TestGoPlugin_Properties(t *testing.T) {
	t.Parallel()
	app := startEcho(t, "app")
	spec := goPluginSpec(t, "props")
	spec.RootID, spec.VMID = "props-root", "props-vm"
	w := startPluginWedge(t, app.Addr, nil, []config.Plugin{spec}, nil)

	for _, tc := range []struct {
		method, body, eos string
	}{
		{"GET", "", "true"},        // no body: end_of_stream with the headers
		{"POST", "hello", "false"}, // a body follows
	} {
		c, err := net.Dial("tcp", w.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		head := tc.method + " /props/x?q=1 HTTP/1.1\r\nHost: probe.example\r\nX-Probe: abc\r\nConnection: close\r\n" +
			"User-Agent: probe/1\r\nX-Request-Id: rid-" + tc.method + "\r\n"
		if tc.body != "" {
			head += "Content-Length: " + strconv.Itoa(len(tc.body)) + "\r\n"
		}
		io.WriteString(c, head+"\r\n"+tc.body)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", tc.method, resp.StatusCode)
		}
		// Fields sent: Host (as :authority), X-Probe, Connection (hop-by-hop,
		// which Wedge may already have removed), Content-Length; plus the
		// pseudo-fields :authority, :path, :method, :scheme.
		count := resp.Header.Get("X-Request-Count")
		n, m, _ := strings.Cut(count, "/")
		if n != m || n == "" || n == "0" {
			t.Errorf("%s: num_headers/len(GetHttpRequestHeaders) = %q, want equal", tc.method, count)
		}
		for name, want := range map[string]string{
			"X-Prop-Request-Path":            "/props/x?q=1",
			"X-Prop-Request-Url-Path":        "/props/x",
			"X-Prop-Request-Query":           "q=1",
			"X-Prop-Request-Scheme":          "http",
			"X-Prop-Request-Id":              "rid-" + tc.method,
			"X-Prop-Request-Useragent":       "probe/1",
			"X-Prop-Request-Size":            strconv.Itoa(len(tc.body)),
			"X-Prop-Source-Port":             portOf(c.LocalAddr().String()),
			"X-Prop-Destination-Port":        portOf(w.Addr),
			"X-Prop-Upstream-Address":        app.Addr,
			"X-Prop-Request-Method":          tc.method,
			"X-Prop-Request-Host":            "probe.example",
			"X-Prop-Request-Protocol":        "HTTP/1.1",
			"X-Prop-Source-Address":          c.LocalAddr().String(),
			"X-Prop-Destination-Address":     w.Addr,
			"X-Prop-Plugin-Name":             "props",
			"X-Prop-Plugin-Root-Id":          "props-root",
			"X-Prop-Plugin-Vm-Id":            "props-vm",
			"X-Prop-Request-Headers-Map":     "abc",
			"X-Prop-Request-Headers-X-Probe": "abc",
			"X-Prop-Response-Code":           "200",
			"X-Request-Eos":                  tc.eos,
			"X-Response-Eos":                 "false", // the upstream's reply has a body
		} {
			if got := resp.Header.Values(name); len(got) != 1 || got[0] != want {
				t.Errorf("%s: %s: %q, want %q", tc.method, name, got, want)
			}
		}
	}
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// TestGoPlugin_SharedData: a counter in shared data, incremented with
// compare-and-swap by every request on several VMs at once, counts every
// request exactly once.
func TestGoPlugin_SharedData(t *testing.T) {
	t.Parallel()
	app := startEcho(t, "app")
	spec := goPluginSpec(t, "counter")
	spec.PoolSize = 3
	w := startPluginWedge(t, app.Addr, nil, []config.Plugin{spec}, nil)

	const workers, each = 8, 12
	var mu sync.Mutex
	counts := map[int]int{}
	vms := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				resp, err := pluginClient.Get(w.URL(fmt.Sprintf("/pair/%d/%d", i, j)))
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				n, err := strconv.Atoi(resp.Header.Get("X-Count"))
				if resp.StatusCode != 200 || err != nil {
					errs <- fmt.Errorf("status %d, X-Count %q", resp.StatusCode, resp.Header.Get("X-Count"))
					return
				}
				mu.Lock()
				counts[n]++
				vms[resp.Header.Get("X-Vm")]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	const total = workers * each
	for n := 1; n <= total; n++ {
		if counts[n] != 1 {
			t.Errorf("count %d was handed out %d times, want once", n, counts[n])
		}
	}
	if len(counts) != total {
		t.Errorf("%d distinct counts for %d requests", len(counts), total)
	}
	if len(vms) < 2 {
		t.Errorf("requests ran on VMs %v, want at least 2 (pool_size 3, two requests in flight at once)", vms)
	}
	resp, body := do(t, "GET", w.URL("/count"), nil)
	if resp.StatusCode != 200 || string(body) != strconv.Itoa(total) {
		t.Errorf("/count: %d %q, want %d", resp.StatusCode, body, total)
	}
	t.Logf("requests per VM: %v", vms)
}

// TestGoPlugin_SharedQueue: request contexts enqueue, the plugin (root)
// context's OnQueueReady dequeues every item exactly once.
func TestGoPlugin_SharedQueue(t *testing.T) {
	t.Parallel()
	app := startEcho(t, "app")
	spec := goPluginSpec(t, "queue")
	spec.PoolSize = 2
	spec.VMID = "queue-vm" // the namespace ResolveSharedQueue looks the queue up in
	w := startPluginWedge(t, app.Addr, nil, []config.Plugin{spec}, nil)

	const n = 20
	var want []string
	var wg sync.WaitGroup
	for i := range n {
		path := fmt.Sprintf("/pair/q%02d", i)
		want = append(want, path)
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := pluginClient.Get(w.URL(path))
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("%s: status %d", path, resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	var got []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, body := do(t, "GET", w.URL("/queue-log"), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("/queue-log: %d %q", resp.StatusCode, body)
		}
		got = strings.Fields(string(body))
		if len(got) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("dequeued %q, want each of %q once", got, want)
	}
}

// TestGoPlugin_Metrics: metrics a filter defines (counter, gauge,
// histogram) appear on the admin /metrics with the right values, shared
// by the VMs of its pool and kept across a reload.
func TestGoPlugin_Metrics(t *testing.T) {
	t.Parallel()
	app := startEcho(t, "app")
	spec := goPluginSpec(t, "metrics")
	spec.PoolSize = 2
	w := startPluginWedge(t, app.Addr, nil, []config.Plugin{spec}, nil)

	const n = 6
	for i := 1; i <= n; i++ {
		resp, body := do(t, "GET", w.URL("/m/"+strconv.Itoa(i)), nil, "X-Bytes", "10")
		echoed(t, resp, body)
		if got := resp.Header.Get("X-Requests-Total"); got != strconv.Itoa(i) {
			t.Errorf("request %d: the counter's Value() read %q", i, got)
		}
	}
	// Eight more at once, so the second VM counts too.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := pluginClient.Get(w.URL("/pair/x"))
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}()
	}
	wg.Wait()
	const total = n + 8
	waitMetric(t, w, `wedge_e2e_requests_total{plugin="metrics"}`, total)
	waitMetric(t, w, `wedge_e2e_bytes_total{plugin="metrics"}`, n*10)
	waitMetric(t, w, `wedge_e2e_in_flight{plugin="metrics"}`, 0)
	waitMetric(t, w, `wedge_e2e_path_length_count{plugin="metrics"}`, total)

	// A reload starts new VMs; they define the same metrics and go on
	// counting where the old ones stopped.
	next, err := config.QuickMode([]string{w.Addr}, []string{app.Addr}, "")
	if err != nil {
		t.Fatal(err)
	}
	next.Log.Access, next.Limits.TempPath = "off", w.Temp
	pluginConfig(t, next, nil, []config.Plugin{spec})
	next.Admin.Address = w.Admin
	if err := w.srv.Reload(next); err != nil {
		t.Fatalf("reloading: %v", err)
	}
	resp, body := do(t, "GET", w.URL("/after-reload"), nil, "X-Bytes", "5")
	echoed(t, resp, body)
	if got := resp.Header.Get("X-Requests-Total"); got != strconv.Itoa(total+1) {
		t.Errorf("after the reload the counter's Value() read %q, want %d", got, total+1)
	}
	waitMetric(t, w, `wedge_e2e_requests_total{plugin="metrics"}`, total+1)
	waitMetric(t, w, `wedge_e2e_bytes_total{plugin="metrics"}`, n*10+5)
}

// TestGoPlugin_Tick: OnTick runs at the period the filter set and its
// effect (shared data) is visible to requests.
func TestGoPlugin_Tick(t *testing.T) {
	t.Parallel()
	app := startEcho(t, "app")
	spec := goPluginSpec(t, "tick")
	spec.PoolSize = 1
	w := startPluginWedge(t, app.Addr, nil, []config.Plugin{spec}, nil)

	read := func() int {
		t.Helper()
		resp, body := do(t, "GET", w.URL("/ticks"), nil)
		n, err := strconv.Atoi(string(body))
		if resp.StatusCode != 200 || err != nil {
			t.Fatalf("/ticks: %d %q", resp.StatusCode, body)
		}
		return n
	}
	first := read()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if n := read(); n >= first+3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ticks went from %d to %d in 10 s with a 20 ms period", first, read())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if app.hits.Load() != 0 {
		t.Errorf("/ticks reached the upstream")
	}
}

// authServer is an authorization service: GET /check answers 200 with
// X-User: alice for "Authorization: Bearer good" (and, after 500 ms, for
// "Bearer slow"), else 401 "bad token".
type authServer struct {
	Addr string
	mu   sync.Mutex
	seen []string // "METHOD target host authorization" of each call
}

func startAuth(t *testing.T) *authServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &authServer{Addr: ln.Addr().String()}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.seen = append(a.seen, strings.Join([]string{r.Method, r.RequestURI, r.Host, r.Header.Get("Authorization")}, " "))
		a.mu.Unlock()
		if r.Header.Get("Authorization") == "Bearer slow" {
			time.Sleep(500 * time.Millisecond)
			r.Header.Set("Authorization", "Bearer good")
		}
		if r.Header.Get("Authorization") != "Bearer good" {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		w.Header().Set("X-User", "alice")
		io.WriteString(w, "ok")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return a
}

func (a *authServer) calls() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.seen)
}

// TestGoPlugin_HTTPCall: a filter pauses each request while it asks an
// authorization service (DispatchHttpCall to the pool "auth"), then
// resumes it with a field from the answer (ResumeHttpRequest) or denies
// it with a local response.
func TestGoPlugin_HTTPCall(t *testing.T) {
	t.Parallel()
	app := startEcho(t, "app")
	auth := startAuth(t)
	spec := goPluginSpec(t, "auth")
	spec.Config = config.JSONValue(`{"cluster":"auth"}`)
	spec.PoolSize = 2
	w := startPluginWedge(t, app.Addr, map[string]string{"auth": auth.Addr}, []config.Plugin{spec}, nil)

	t.Run("allowed", func(t *testing.T) {
		resp, body := do(t, "POST", w.URL("/upload"), []byte("payload"), "Authorization", "Bearer good")
		up := echoed(t, resp, body)
		if got := up.Header.Values("X-Auth-User"); !slices.Equal(got, []string{"alice"}) {
			t.Errorf("upstream got X-Auth-User %q, want alice", got)
		}
		if up.Body != "payload" || up.URI != "/upload" || up.Method != "POST" {
			t.Errorf("upstream got %s %s %q, want POST /upload \"payload\"", up.Method, up.URI, up.Body)
		}
		calls := auth.calls()
		if len(calls) != 1 || calls[0] != "GET /check auth.internal Bearer good" {
			t.Errorf("auth service saw %q", calls)
		}
	})
	t.Run("denied", func(t *testing.T) {
		hits := app.hits.Load()
		resp, body := do(t, "GET", w.URL("/private"), nil, "Authorization", "Bearer bad")
		if resp.StatusCode != 403 || string(body) != "denied: bad token\n" {
			t.Errorf("%d %q, want 403 \"denied: bad token\\n\"", resp.StatusCode, body)
		}
		if got := resp.Header.Get("X-Auth-Status"); got != "401" {
			t.Errorf("X-Auth-Status %q, want 401", got)
		}
		if app.hits.Load() != hits {
			t.Error("a denied request reached the upstream")
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tok := "Bearer good"
				if i%2 == 1 {
					tok = "Bearer bad"
				}
				req, _ := http.NewRequest("GET", w.URL(fmt.Sprintf("/c/%d", i)), nil)
				req.Header.Set("Authorization", tok)
				resp, err := pluginClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				want := 200
				if i%2 == 1 {
					want = 403
				}
				if resp.StatusCode != want {
					t.Errorf("request %d: %d %q, want %d", i, resp.StatusCode, b, want)
				}
			}()
		}
		wg.Wait()
	})
	t.Run("client gone while paused", func(t *testing.T) {
		hits := app.hits.Load()
		for range 4 {
			c, err := net.Dial("tcp", w.Addr)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, "GET /gone HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer slow\r\n\r\n")
			time.Sleep(50 * time.Millisecond)
			c.Close() // before the authorization service answers
		}
		time.Sleep(time.Second) // the calls answer; the filter resumes streams whose client left
		resp, body := do(t, "GET", w.URL("/after"), nil, "Authorization", "Bearer good")
		if up := echoed(t, resp, body); up.URI != "/after" {
			t.Errorf("upstream got %q", up.URI)
		}
		if n := app.hits.Load() - hits; n > 5 {
			t.Errorf("upstream got %d requests, want at most 5", n)
		}
	})
	t.Run("unknown pool", func(t *testing.T) {
		resp, body := do(t, "GET", w.URL("/unknown-pool"), nil, "Authorization", "Bearer good")
		if resp.StatusCode != 502 || !strings.Contains(resp.Header.Get("X-Dispatch-Error"), "bad argument") {
			t.Errorf("%d, X-Dispatch-Error %q (%q); want 502 and bad argument, as the spec says for an unknown upstream",
				resp.StatusCode, resp.Header.Get("X-Dispatch-Error"), body)
		}
	})
	t.Run("service down", func(t *testing.T) {
		w := startPluginWedge(t, app.Addr, map[string]string{"auth": freeAddr(t)}, []config.Plugin{spec}, nil)
		resp, body := do(t, "GET", w.URL("/x"), nil, "Authorization", "Bearer good")
		if resp.StatusCode != 503 || string(body) != "authorization service unavailable" {
			t.Errorf("%d %q, want 503 from the filter's callback for a failed call", resp.StatusCode, body)
		}
	})
}

// TestGoPlugin_Configuration: a filter gets its plugin configuration
// (YAML config, as JSON) in OnPluginStart and its VM configuration in
// OnVMStart, and acts on them, and a reload gives it the new one; a
// configuration it refuses stops Wedge from starting, naming the plugin.
func TestGoPlugin_Configuration(t *testing.T) {
	t.Parallel()
	app := startEcho(t, "app")
	spec := goPluginSpec(t, "config")
	spec.Config = config.JSONValue(`{"add":{"x-greeting":"hello","x-team":"edge"},"deny_prefix":"/blocked/","deny_status":451}`)
	spec.VMConfig = config.JSONValue(`{"greeting":"hi"}`)
	w := startPluginWedge(t, app.Addr, nil, []config.Plugin{spec}, nil)

	resp, body := do(t, "GET", w.URL("/open"), nil)
	up := echoed(t, resp, body)
	for name, want := range map[string]string{"X-Greeting": "hello", "X-Team": "edge", "X-Vm-Greeting": "hi"} {
		if got := up.Header.Values(name); !slices.Equal(got, []string{want}) {
			t.Errorf("upstream got %s: %q, want %q", name, got, want)
		}
	}
	resp, body = do(t, "GET", w.URL("/blocked/x"), nil)
	if resp.StatusCode != 451 || string(body) != "denied by configuration" {
		t.Errorf("/blocked/x: %d %q, want 451 from the configured deny_prefix", resp.StatusCode, body)
	}

	// A reload hands the new configuration to OnPluginStart of new VMs.
	next, err := config.QuickMode([]string{w.Addr}, []string{app.Addr}, "")
	if err != nil {
		t.Fatal(err)
	}
	next.Log.Access, next.Limits.TempPath = "off", w.Temp
	changed := spec
	changed.Config = config.JSONValue(`{"add":{"x-greeting":"bonjour"}}`)
	pluginConfig(t, next, nil, []config.Plugin{changed})
	next.Admin.Address = w.Admin
	if err := w.srv.Reload(next); err != nil {
		t.Fatalf("reloading: %v", err)
	}
	resp, body = do(t, "GET", w.URL("/blocked/x"), nil)
	up = echoed(t, resp, body)
	if got := up.Header.Values("X-Greeting"); !slices.Equal(got, []string{"bonjour"}) || up.Header.Get("X-Team") != "" {
		t.Errorf("after the reload the upstream got X-Greeting %q, X-Team %q; want bonjour and none", got, up.Header.Get("X-Team"))
	}

	// A configuration the filter refuses (OnPluginStart false).
	cfg, err := config.QuickMode([]string{freeAddr(t)}, []string{app.Addr}, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Log.Access = "off"
	bad := spec
	bad.Config = config.JSONValue(`{"add":5}`)
	pluginConfig(t, cfg, nil, []config.Plugin{bad})
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(cfg, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Builtins: plugins.Builtin})
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		srv.Shutdown(ctx)
		cancel()
		t.Fatal("server.New accepted a plugin whose OnPluginStart refuses its configuration")
	}
	if !errors.Is(err, pluginhost.ErrInvalidPlugin) || !strings.Contains(err.Error(), `"config"`) {
		t.Errorf("server.New: %v; want ErrInvalidPlugin naming the plugin \"config\"", err)
	}
}

// TestGoPlugin_Route: a filter that sets wedge.upstream sends the request
// to that pool; the default is readable first.
func TestGoPlugin_Route(t *testing.T) {
	t.Parallel()
	app, b := startEcho(t, "app"), startEcho(t, "b")
	w := startPluginWedge(t, app.Addr, map[string]string{"b": b.Addr}, []config.Plugin{goPluginSpec(t, "router")}, nil)

	for _, tc := range []struct {
		path, server, uri, chosen string
	}{
		{"/b/thing?x=1", "b", "/thing?x=1", "b"},
		{"/a/thing", "app", "/a/thing", "app"},
		{"/b/", "b", "/", "b"},
	} {
		resp, body := do(t, "GET", w.URL(tc.path), nil)
		up := echoed(t, resp, body)
		if up.Server != tc.server || up.URI != tc.uri {
			t.Errorf("%s went to %s as %q, want %s as %q", tc.path, up.Server, up.URI, tc.server, tc.uri)
		}
		if got := up.Header.Get("X-Upstream-Default"); got != "app" {
			t.Errorf("%s: wedge.upstream read %q before the filter set it, want app (default_upstream)", tc.path, got)
		}
		if got := up.Header.Get("X-Upstream-Chosen"); got != tc.chosen {
			t.Errorf("%s: wedge.upstream read back %q, want %s", tc.path, got, tc.chosen)
		}
	}
	resp, _ := do(t, "GET", w.URL("/nowhere/x"), nil)
	if resp.StatusCode != 500 {
		t.Errorf("/nowhere/x (pool not configured): %d, want 500", resp.StatusCode)
	}
}

// TestGoPlugin_Chain: several filters in one chain run their request
// phases in configuration order, each seeing what the one before did, and
// their response phases in reverse; a local response still runs the
// response phases of the filters before the one that answered.
func TestGoPlugin_Chain(t *testing.T) {
	t.Parallel()
	app, b := startEcho(t, "app"), startEcho(t, "b")
	plugins := []config.Plugin{goPluginSpec(t, "router"), goPluginSpec(t, "headers"), goPluginSpec(t, "deny")}
	w := startPluginWedge(t, app.Addr, map[string]string{"b": b.Addr}, plugins, nil)

	// router: to pool b, /b/old/x -> /old/x; then headers: /old/x -> /new/x.
	resp, body := do(t, "GET", w.URL("/b/old/x"), nil)
	up := echoed(t, resp, body)
	if up.Server != "b" || up.URI != "/new/x" {
		t.Errorf("/b/old/x went to %s as %q, want b as /new/x", up.Server, up.URI)
	}
	if up.Header.Get("X-Added") != "yes" || up.Header.Get("X-Upstream-Chosen") != "b" {
		t.Errorf("upstream fields: %q", up.Header)
	}
	if got := resp.Header.Get("X-Original-Path"); got != "/old/x" {
		t.Errorf("headers saw :path %q, want /old/x (after router)", got)
	}

	// deny answers; the response phase of headers (before it) still runs.
	hits := app.hits.Load() + b.hits.Load()
	resp, body = do(t, "GET", w.URL("/admin/x"), nil)
	if resp.StatusCode != 403 || string(body) != "forbidden: /admin/x" {
		t.Fatalf("/admin/x: %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Resp-Added") != "yes" || resp.Header.Get("X-Seen-Status") != "403" {
		t.Errorf("the local response did not go through the response phase of headers: %q", resp.Header)
	}
	if app.hits.Load()+b.hits.Load() != hits {
		t.Error("a denied request reached an upstream")
	}
}
