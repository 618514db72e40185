package wedgetest_test

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/sdk/wedgetest"
)

var (
	goOnce sync.Once
	goWasm []byte
	goErr  error
)

// goPlugin builds testdata/goplugin (proxy-wasm-go-sdk and sdk/go/wedge)
// with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared, once per test process,
// and skips the test when that cannot be done.
func goPlugin(t *testing.T) []byte {
	t.Helper()
	goOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wedgetest-goplugin-")
		if err != nil {
			goErr = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "goplugin.wasm")
		// Read the source here so that go test's cache sees it change.
		if _, goErr = os.ReadFile(filepath.Join("testdata", "goplugin", "main.go")); goErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, ".")
		cmd.Dir = filepath.Join("testdata", "goplugin")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if msg, err := cmd.CombinedOutput(); err != nil {
			goErr = &buildError{err: err, out: string(msg)}
			return
		}
		goWasm, goErr = os.ReadFile(out)
	})
	switch {
	case errors.Is(goErr, exec.ErrNotFound):
		t.Skipf("building the Go plugin: %v", goErr)
	case goErr != nil:
		t.Fatalf("building the Go plugin: %v", goErr)
	}
	return goWasm
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

func (e *buildError) Unwrap() error { return e.err }

// TestGoPlugin runs a plugin written with sdk/go/wedge in the real host and
// checks what each helper read.
func TestGoPlugin(t *testing.T) {
	wasm := goPlugin(t)
	h, err := wedgetest.New(t, wasm, wedgetest.Options{
		Name:      "goplugin",
		Upstreams: map[string]http.Handler{"app": echo("app"), "api": echo("api")},
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	before := time.Now().Unix()
	res := h.Do(wedgetest.Request{Method: "POST", Path: "/api/users?id=7", Host: "shop.example",
		Header: http.Header{"X-In": {"v"}, "User-Agent": {"wedgetest"}}, Body: []byte("hello")})
	if res.Status != 200 || res.Upstream == nil || res.Upstream.Pool != "api" {
		t.Fatalf("status %d, upstream %+v; want 200 from api (logs %v, failure %q)", res.Status, res.Upstream, res.Logs, res.Failure)
	}
	up := res.Upstream.Header
	for name, want := range map[string]string{
		"plugin-name":     "goplugin",
		"path":            "/api/users?id=7",
		"url-path":        "/api/users",
		"query":           "id=7",
		"host":            "shop.example",
		"method":          "POST",
		"scheme":          "http",
		"protocol":        "HTTP/1.1",
		"useragent":       "wedgetest",
		"header-x-in":     "v",
		"headers":         ":authority,:path,:method,:scheme,user-agent,x-in,content-length",
		"duration-nonneg": "true",
		"size":            "5",
		"source":          "127.0.0.1",
		"destination":     "127.0.0.1",
		"mtls":            "false",
		"upstream-before": "app",
		"set-upstream":    "api",
		"upstream-after":  "api",
		"set-state":       "ok",
	} {
		if got := up.Get("X-Prop-" + name); got != want {
			t.Errorf("request x-prop-%s = %q, want %q (error: %q)", name, got, want, up.Get("X-Prop-"+name+"-Error"))
		}
	}
	if up.Get("X-Prop-Id") == "" {
		t.Errorf("request.id is empty")
	}
	if sec, _ := strconv.ParseInt(up.Get("X-Prop-Time-Unix"), 10, 64); sec < before-1 || sec > time.Now().Unix()+1 {
		t.Errorf("request.time %s s, want about %d", up.Get("X-Prop-Time-Unix"), before)
	}
	for _, name := range []string{"tls", "early-code"} {
		if up.Get("X-Prop-"+name+"-Error") == "" {
			t.Errorf("x-prop-%s: want a not-found error on a plain-text request phase", name)
		}
	}
	for name, want := range map[string]string{
		"code":                 "200",
		"code-details":         "via_upstream",
		"header-x-pool":        "api",
		"headers-first":        ":status=200",
		"size":                 "9",
		"upstream-address-set": "true",
		"state":                "/api/users?id=7",
		"headers":              ":status,x-pool,date,content-length,content-type,via",
	} {
		if got := res.Header.Get("X-Prop-" + name); got != want {
			t.Errorf("response x-prop-%s = %q, want %q (error: %q)", name, got, want, res.Header.Get("X-Prop-"+name+"-Error"))
		}
	}
}

// TestGoPlugin_httpCall checks a request paused on proxy_http_call: the
// call is reported in Calls, the request in Upstream once resumed.
func TestGoPlugin_httpCall(t *testing.T) {
	wasm := goPlugin(t)
	h, err := wedgetest.New(t, wasm, wedgetest.Options{
		Upstreams: map[string]http.Handler{"app": echo("app"), "api": echo("api")},
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	res := h.Do(wedgetest.Request{Path: "/call"})
	if res.Status != 200 || res.Upstream == nil || res.Upstream.Pool != "app" {
		t.Fatalf("status %d, upstream %+v; want 200 from app (failure %q)", res.Status, res.Upstream, res.Failure)
	}
	if got := res.Upstream.Header.Get("X-Call"); got != "200 api:" {
		t.Errorf("x-call: %q, want \"200 api:\"", got)
	}
	if len(res.Calls) != 1 || res.Calls[0].Pool != "api" || res.Calls[0].Target != "/check" || res.Calls[0].Host != "auth.internal" {
		t.Errorf("Calls = %+v, want one GET /check to api", res.Calls)
	}
}
