package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/wedgeproxy/wedge/sdk/wedgetest"
)

// tableConfig is the configuration the table runs against; ROOT is a
// directory holding a.txt and report.txt.
const tableConfig = `{"routes": [
 {"host": "*.example.org", "path": {"prefix": "/wild/"}, "upstream": "b", "request_headers": {"set": {"X-Wild": "1"}}},
 {"path": {"exact": "/exact"}, "method": ["GET", "HEAD"], "upstream": "a"},
 {"path": {"glob": "/img/*.png"}, "redirect": {"status": 301, "to": "https://cdn.example.com/images/$1.png"}},
 {"path": {"regexp": "^/u/(?P<id>[0-9]+)/(.*)$"}, "redirect": {"status": 308, "to": "https://$host/users/${id}?tail=$2"}},
 {"path": "/api", "strip_prefix": "/api", "upstream": "b",
  "request_headers": {"add": {"X-Added": "yes"}, "set": {"X-Set": "s"}, "remove": ["X-Remove"]},
  "response_headers": {"set": {"X-Resp": "r"}, "remove": ["X-Drop"]}},
 {"path": {"prefix": "/old/"}, "rewrite": {"regexp": "^/old/(.*)$", "to": "/new/$1"}, "upstream": "a"},
 {"path": {"exact": "/fixed"}, "rewrite": "/target?q=1", "upstream": "a"},
 {"headers": [{"name": "X-Beta", "value": "1"}], "upstream": "b"},
 {"path": {"exact": "/ua"}, "headers": [{"name": "User-Agent", "regexp": "(?i)curl"}], "respond": {"body": "curl $method\n"}},
 {"path": {"exact": "/q"}, "query": [{"name": "debug", "value": "1"}], "respond": {"status": 418, "body": "debug", "headers": {"X-Teapot": "yes"}}},
 {"path": {"exact": "/q"}, "query": [{"name": "flag", "present": true}], "respond": {"body": "flag"}},
 {"path": {"exact": "/absent"}, "headers": [{"name": "X-Absent", "present": false}], "respond": {"status": 204}},
 {"path": "/static/", "strip_prefix": "/static", "static": {"root": "ROOT"}},
 {"name": "private", "path": "/protected/", "internal": true, "strip_prefix": "/protected", "static": {"root": "ROOT"}},
 {"host": ["api.example.com"], "upstream": "b"}
]}`

// routeCase is one request and what the router does with it.
type routeCase struct {
	name   string
	method string // default GET
	host   string // default example.com
	path   string
	header [][2]string

	// A local response (status != 0 and no pool), or a routed request.
	status   int
	location string
	body     string
	pool     string      // wedge.upstream
	target   string      // :path sent on ("" = unchanged)
	mount    string      // wedge.static
	file     string      // wedge.static_path
	sent     [][2]string // fields the upstream must get ("" value: absent)
	respHdr  [][2]string // fields the client must get
}

var routeCases = []routeCase{
	{name: "exact", path: "/exact", pool: "a"},
	{name: "method not listed", method: "POST", path: "/exact", status: 404},
	{name: "wildcard host", host: "a.example.org", path: "/wild/x", pool: "b", sent: [][2]string{{"x-wild", "1"}}},
	{name: "wildcard needs a subdomain", host: "example.org", path: "/wild/x", status: 404},
	{name: "host with port and case", host: "API.example.com:8080", path: "/anything", pool: "b"},
	{name: "glob capture", path: "/img/cat.png", status: 301, location: "https://cdn.example.com/images/cat.png"},
	{name: "glob star stops at slash", path: "/img/a/b.png", status: 404},
	{name: "regexp captures", path: "/u/42/x%20y", status: 308, location: "https://example.com/users/42?tail=x%20y"},
	{name: "strip prefix and header edits", path: "/api/v1/items?x=1", header: [][2]string{{"X-Remove", "1"}},
		pool: "b", target: "/v1/items?x=1",
		sent:    [][2]string{{"x-added", "yes"}, {"x-set", "s"}, {"x-remove", ""}},
		respHdr: [][2]string{{"x-resp", "r"}, {"x-drop", ""}}},
	{name: "strip to the root", path: "/api", pool: "b", target: "/"},
	{name: "prefix at a segment boundary", path: "/apix", status: 404},
	{name: "rewrite regexp", path: "/old/a/b", pool: "a", target: "/new/a/b"},
	{name: "rewrite fixed with query", path: "/fixed?z=9", pool: "a", target: "/target?q=1"},
	{name: "header value", path: "/beta", header: [][2]string{{"X-Beta", "1"}}, pool: "b"},
	{name: "header value mismatch", path: "/beta", header: [][2]string{{"X-Beta", "2"}}, status: 404},
	{name: "header regexp", path: "/ua", header: [][2]string{{"User-Agent", "curl/8.5"}}, status: 200, body: "curl GET\n"},
	{name: "query value", path: "/q?debug=1", status: 418, body: "debug", respHdr: [][2]string{{"x-teapot", "yes"}}},
	{name: "query present", path: "/q?flag", status: 200, body: "flag"},
	{name: "query absent", path: "/q", status: 404},
	{name: "header absent", path: "/absent", status: 204},
	{name: "header present", path: "/absent", header: [][2]string{{"X-Absent", "1"}}, status: 404},
	{name: "static", path: "/static/a.txt", mount: "routes[12]", file: "/a.txt", body: "file a\n"},
	{name: "internal route not for clients", path: "/protected/report.txt", status: 404},
	{name: "dot segments resolved first", path: "/static/../api/v1", pool: "b", target: "/v1"},
	{name: "bad escape", path: "/%zz", status: 400},
}

func (c *routeCase) request() Request {
	r := Request{Method: c.method, Authority: c.host, Path: c.path, Scheme: "http", Headers: c.header}
	if r.Method == "" {
		r.Method = "GET"
	}
	if r.Authority == "" {
		r.Authority = "example.com"
	}
	return r
}

// configWithRoot writes ROOT (a.txt, report.txt) and returns the table's
// configuration pointing at it.
func configWithRoot(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{"a.txt": "file a\n", "report.txt": "report\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root, _ := json.Marshal(dir)
	return []byte(strings.ReplaceAll(tableConfig, `"ROOT"`, string(root)))
}

func fieldValue(hs [][2]string, name string) (string, bool) {
	for _, h := range hs {
		if strings.EqualFold(h[0], name) {
			return h[1], true
		}
	}
	return "", false
}

// TestRouter_Decide runs the table on the policy alone.
func TestRouter_Decide(t *testing.T) {
	r, err := Compile(configWithRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range routeCases {
		t.Run(c.name, func(t *testing.T) {
			req := c.request()
			d := r.Decide(&req)
			switch {
			case c.pool != "":
				if d.Action != ActUpstream || d.Upstream != c.pool || d.NewPath != c.target {
					t.Errorf("got %v pool %q path %q, want pool %q path %q", d.Action, d.Upstream, d.NewPath, c.pool, c.target)
				}
			case c.mount != "":
				if d.Action != ActStatic || d.Mount != c.mount || d.StaticPath != c.file {
					t.Errorf("got %v mount %q path %q, want %q %q", d.Action, d.Mount, d.StaticPath, c.mount, c.file)
				}
			default:
				loc, _ := fieldValue(d.Headers, "location")
				if d.Status != c.status || loc != c.location || c.body != "" && string(d.Body) != c.body {
					t.Errorf("got %d %q %q, want %d %q %q", d.Status, loc, d.Body, c.status, c.location, c.body)
				}
			}
		})
	}
}

// TestRouter_Accel: X-Accel-Redirect targets match internal routes only.
func TestRouter_Accel(t *testing.T) {
	r, err := Compile(configWithRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	req := Request{Method: "GET", Authority: "example.com", Path: "/download"}
	if d := r.Accel(&req, "/protected/sub/report.txt?x=1"); d.Action != ActStatic || d.Mount != "private" || d.StaticPath != "/sub/report.txt" {
		t.Errorf("internal target: %+v", d)
	}
	if d := r.Accel(&req, "/static/a.txt"); d.Action != ActNotFound {
		t.Errorf("a public route served an X-Accel-Redirect: %+v", d)
	}
}

// TestRouter_default: unmatched requests take the default route wherever
// it is written; without one they get 404.
func TestRouter_default(t *testing.T) {
	r, err := Compile([]byte(`{"routes":[{"upstream":"app"},{"path":"/b/","upstream":"b"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"/b/x": "b", "/c": "app", "/": "app"} {
		req := Request{Method: "GET", Path: path}
		if d := r.Decide(&req); d.Upstream != want {
			t.Errorf("%s: %q, want %q", path, d.Upstream, want)
		}
	}
	r, err = Compile([]byte(`{"routes":[{"default":true,"respond":{"status":404,"body":"custom"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	req := Request{Method: "GET", Path: "/x"}
	if d := r.Decide(&req); d.Status != 404 || string(d.Body) != "custom" {
		t.Errorf("custom default: %+v", d)
	}
}

// TestCompile_errors: a bad configuration names the route and the field.
func TestCompile_errors(t *testing.T) {
	for _, tt := range []struct{ conf, want string }{
		{``, "routes: the router needs a configuration with routes:"},
		{`{"routes": []}`, "routes: at least one route is required"},
		{`{"rutes": []}`, `parsing configuration: unknown field "rutes"`},
		{`{"routes": [{"upstream": "a", "pth": "/"}]}`, `routes[0]: unknown field "pth"`},
		{`{"routes": [{"path": "/"}]}`, "routes[0]: want exactly one action of upstream, static, redirect and respond, got 0"},
		{`{"routes": [{"upstream": "a", "respond": {}}]}`, "routes[0]: want exactly one action of upstream, static, redirect and respond, got 2"},
		{`{"routes": [{"path": "/a", "upstream": "a"}, {"path": "/b", "upstream": "b"}, {"upstream": "c"}, {"path": {"regexp": "("}, "upstream": "a"}]}`,
			"routes[3]: path.regexp: error parsing regexp: missing closing ): `(`"},
		{`{"routes": [{"path": {"prefix": "/a", "exact": "/b"}, "upstream": "a"}]}`, "routes[0]: path.want exactly one of prefix, exact, glob and regexp"},
		{`{"routes": [{"path": "a/", "upstream": "a"}]}`, `routes[0]: path.prefix: "a/" must start with "/"`},
		{`{"routes": [{"upstream": "A b"}]}`, `routes[0]: upstream: "A b" is not a pool name ([a-z0-9_-]+)`},
		{`{"routes": [{"redirect": {"status": 200, "to": "/"}}]}`, "routes[0]: redirect.status: want 301, 302, 303, 307 or 308, got 200"},
		{`{"routes": [{"path": "/a", "redirect": {"to": "/$1"}}]}`, "routes[0]: redirect.to: $1: captures need path.regexp or path.glob"},
		{`{"routes": [{"path": {"regexp": "^/(a)$"}, "redirect": {"to": "/${id}"}}]}`,
			"routes[0]: redirect.to: ${id}: no such capture or variable (host, path, query, uri, scheme, method)"},
		{`{"routes": [{"path": {"glob": "/*"}, "redirect": {"to": "/$2"}}]}`, "routes[0]: redirect.to: $2: the path pattern has 1 capture groups"},
		{`{"routes": [{"respond": {"status": 99}}]}`, "routes[0]: respond.status: want 200-599, got 99"},
		{`{"routes": [{"static": {"root": ""}}]}`, "routes[0]: static.root: the directory to serve is required"},
		{`{"routes": [{"internal": true, "upstream": "a"}]}`, "routes[0]: internal: an internal route serves X-Accel-Redirect targets and needs static:"},
		{`{"routes": [{"upstream": "a"}, {"default": true, "upstream": "b"}]}`,
			"routes[1]: a second default route (routes[0] is one; a route without conditions is a default route)"},
		{`{"routes": [{"default": true, "path": "/", "upstream": "b"}]}`,
			"routes[0]: default: a default route takes no conditions (host, path, method, headers, query)"},
		{`{"routes": [{"host": "a.*.com", "upstream": "b"}]}`, `routes[0]: host: "a.*.com" is not a host name or a wildcard like *.example.com`},
		{`{"routes": [{"headers": [{"name": "X", "value": "1", "regexp": "2"}], "upstream": "b"}]}`, "routes[0]: headers[0]: value and regexp are exclusive"},
		{`{"routes": [{"headers": [{"name": "X", "regexp": "["}], "upstream": "b"}]}`, "routes[0]: headers[0].regexp: error parsing regexp: missing closing ]: `[`"},
		{`{"routes": [{"strip_prefix": "api", "upstream": "b"}]}`, `routes[0]: strip_prefix: "api" must start with "/" and be more than "/"`},
		{`{"routes": [{"rewrite": {"to": "/x"}, "upstream": "b"}]}`, `routes[0]: rewrite.regexp: required (or write rewrite: "/fixed/path")`},
		{`{"routes": [{"request_headers": {"set": {"Bad Name": "x"}}, "upstream": "b"}]}`, `routes[0]: request_headers.set: "Bad Name" is not a field name`},
		{`{"routes": [{"response_headers": {"add": {"X": "a\nb"}}, "upstream": "b"}]}`, "routes[0]: response_headers.add: X: control characters are not allowed in a value"},
		{`{"routes": [{"method": 3, "upstream": "b"}]}`, "routes[0]: want a string or a list of strings"},
		{`{"routes": [{"redirect": {"to": "/$"}}]}`, `routes[0]: redirect.to: a lone "$" at the end (write $$ for a dollar sign)`},
	} {
		_, err := Compile([]byte(tt.conf))
		if err == nil || err.Error() != tt.want {
			t.Errorf("Compile(%s):\n got  %v\n want %s", tt.conf, err, tt.want)
		}
	}
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"/": "/", "/a/b": "/a/b", "/a//b/": "/a/b/", "/a/./b": "/a/b", "/a/../b": "/b", "/..": "/",
		"/a/..": "/", "/a/b/..": "/a/", "/%41": "/A", "/a%2Fb": "/a/b", "*": "*",
	} {
		if got, ok := cleanPath(in); !ok || got != want {
			t.Errorf("cleanPath(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "a", "/%", "/%zz", "/%00"} {
		if got, ok := cleanPath(in); ok {
			t.Errorf("cleanPath(%q) = %q, true; want false", in, got)
		}
	}
}

// FuzzDecide: any configuration either fails to compile or routes any
// request without panicking; paths sent on start with "/".
func FuzzDecide(f *testing.F) {
	f.Add([]byte(tableConfig), "GET", "example.com", "/api/x?y")
	f.Add([]byte(`{"routes":[{"path":{"glob":"/**"},"rewrite":"/$1$path$query","upstream":"a"}]}`), "GET", "h", "/%2e%2e/a")
	f.Fuzz(func(t *testing.T, conf []byte, method, host, path string) {
		r, err := Compile(conf)
		if err != nil {
			return
		}
		req := Request{Method: method, Authority: host, Path: path, Headers: [][2]string{{"x-a", path}}}
		d := r.Decide(&req)
		if d.NewPath != "" && d.NewPath[0] != '/' {
			t.Errorf("path sent on %q", d.NewPath)
		}
		r.Accel(&req, path)
	})
}

// TestRouter_proxytest runs the table through the proxy-wasm-go-sdk
// emulator: the filter's own calls (properties, header edits, local
// responses, wedge_static_mount).
func TestRouter_proxytest(t *testing.T) {
	conf := configWithRoot(t)
	opt := proxytest.NewEmulatorOption().WithVMContext(&vmContext{}).WithPluginConfiguration(conf)
	host, reset := proxytest.NewHostEmulator(opt)
	defer reset()
	var mounts []MountSpec
	host.RegisterForeignFunction(staticMountFunc, func(b []byte) []byte {
		var m MountSpec
		if err := json.Unmarshal(b, &m); err != nil {
			return []byte(`{"error":"bad json"}`)
		}
		mounts = append(mounts, m)
		return []byte(`{}`)
	})
	if st := host.StartPlugin(); st != types.OnPluginStartStatusOK {
		t.Fatalf("StartPlugin: %v", st)
	}
	if len(mounts) != 2 || mounts[0].Name != "routes[12]" || mounts[1].Name != "private" || !mounts[1].Internal {
		t.Fatalf("mounts %+v", mounts)
	}
	for _, c := range routeCases {
		t.Run(c.name, func(t *testing.T) {
			req := c.request()
			hs := append([][2]string{{":method", req.Method}, {":authority", req.Authority}, {":path", req.Path}, {":scheme", "http"}}, c.header...)
			id := host.InitializeHttpContext()
			action := host.CallOnRequestHeaders(id, hs, true)
			local := host.GetSentLocalResponse(id)
			if c.pool == "" && c.mount == "" {
				if local == nil || action != types.ActionPause {
					t.Fatalf("no local response (action %v)", action)
				}
				loc, _ := fieldValue(local.Headers, "location")
				if int(local.StatusCode) != c.status || loc != c.location || c.body != "" && string(local.Data) != c.body {
					t.Errorf("got %d %q %q, want %d %q %q", local.StatusCode, loc, local.Data, c.status, c.location, c.body)
				}
				for _, f := range c.respHdr {
					if v, _ := fieldValue(local.Headers, f[0]); v != f[1] {
						t.Errorf("response %s = %q, want %q", f[0], v, f[1])
					}
				}
				return
			}
			if local != nil || action != types.ActionContinue {
				t.Fatalf("local response %+v, action %v", local, action)
			}
			prop := func(p ...string) string {
				v, _ := host.GetProperty(p)
				return string(v)
			}
			if c.pool != "" && prop("wedge", "upstream") != c.pool {
				t.Errorf("wedge.upstream = %q, want %q", prop("wedge", "upstream"), c.pool)
			}
			if c.mount != "" && (prop("wedge", "static") != c.mount || prop("wedge", "static_path") != c.file) {
				t.Errorf("wedge.static = %q %q, want %q %q", prop("wedge", "static"), prop("wedge", "static_path"), c.mount, c.file)
			}
			got := host.GetCurrentRequestHeaders(id)
			want := c.target
			if want == "" {
				want = c.path
			}
			if p, _ := fieldValue(got, ":path"); p != want {
				t.Errorf(":path = %q, want %q", p, want)
			}
			for _, f := range c.sent {
				if v, _ := fieldValue(got, f[0]); v != f[1] {
					t.Errorf("request %s = %q, want %q", f[0], v, f[1])
				}
			}
			host.CallOnResponseHeaders(id, [][2]string{{":status", "200"}, {"x-drop", "1"}}, false)
			resp := host.GetCurrentResponseHeaders(id)
			for _, f := range c.respHdr {
				if v, _ := fieldValue(resp, f[0]); v != f[1] {
					t.Errorf("response %s = %q, want %q", f[0], v, f[1])
				}
			}
			host.CompleteHttpContext(id)
		})
	}
}

// TestRouter_wasm runs the table through the committed router.wasm in
// the real Wedge (sdk/wedgetest): two upstream pools that echo what they
// got, a static mount on disk, and X-Accel-Redirect.
func TestRouter_wasm(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the router in wazero")
	}
	wasm, err := os.ReadFile("router.wasm")
	if err != nil {
		t.Fatal(err)
	}
	echo := func(pool string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if xa := r.URL.Query().Get("accel"); xa != "" {
				w.Header().Set("X-Accel-Redirect", xa)
				io.WriteString(w, "not this")
				return
			}
			w.Header().Set("X-Drop", "1")
			fmt.Fprintf(w, "%s %s", pool, r.URL.RequestURI())
		})
	}
	h, err := wedgetest.New(t, wasm, wedgetest.Options{
		Name:      "router",
		Config:    configWithRoot(t),
		PoolSize:  1,
		Upstreams: map[string]http.Handler{"a": echo("a"), "b": echo("b")},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range routeCases {
		t.Run(c.name, func(t *testing.T) {
			req := c.request()
			hdr := http.Header{}
			for _, f := range c.header {
				hdr.Add(f[0], f[1])
			}
			res := h.Do(wedgetest.Request{Method: req.Method, Host: req.Authority, Path: req.Path, Header: hdr})
			switch {
			case c.pool != "":
				want := c.target
				if want == "" {
					want = c.path
				}
				if res.Upstream == nil || res.Upstream.Pool != c.pool || res.Upstream.Target != want {
					t.Fatalf("got %d %q upstream %+v, want pool %q target %q", res.Status, res.Body, res.Upstream, c.pool, want)
				}
				for _, f := range c.sent {
					if v := res.Upstream.Header.Get(f[0]); v != f[1] {
						t.Errorf("upstream got %s = %q, want %q", f[0], v, f[1])
					}
				}
			case c.mount != "":
				if res.Status != 200 || string(res.Body) != c.body || res.Upstream != nil {
					t.Errorf("static: %d %q upstream %v", res.Status, res.Body, res.Upstream)
				}
			default:
				if res.Status != c.status || res.Header.Get("Location") != c.location || c.body != "" && string(res.Body) != c.body || res.Upstream != nil {
					t.Errorf("got %d %q %q, want %d %q %q", res.Status, res.Header.Get("Location"), res.Body, c.status, c.location, c.body)
				}
			}
			for _, f := range c.respHdr {
				if v := res.Header.Get(f[0]); v != f[1] {
					t.Errorf("response %s = %q, want %q", f[0], v, f[1])
				}
			}
		})
	}
	// X-Accel-Redirect from pool a, served from the internal route.
	res := h.Do(wedgetest.Request{Path: "/exact?accel=/protected/report.txt"})
	if res.Status != 200 || string(res.Body) != "report\n" {
		t.Errorf("X-Accel-Redirect: %d %q", res.Status, res.Body)
	}
	// A bad configuration fails start-up with the route and the reason.
	_, err = wedgetest.New(t, wasm, wedgetest.Options{Name: "router", PoolSize: 1,
		Config: []byte(`{"routes":[{"upstream":"a"},{"path":{"regexp":"(["},"upstream":"a"}]}`)})
	if err == nil || !strings.Contains(err.Error(), "proxy_on_configure returned false: routes[1]: path.regexp: error parsing regexp") {
		t.Errorf("bad configuration: %v", err)
	}
}
