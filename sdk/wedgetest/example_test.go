package wedgetest_test

import (
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/wedgeproxy/wedge/sdk/wedgetest"
)

// Example runs the router fixture (testdata/router.wat) in Wedge in front
// of two pools and reports where each request went. In a test, pass the
// test's t to New.
func Example() {
	t := &exampleT{}
	defer t.cleanup()

	wasm, err := os.ReadFile("testdata/router.wasm")
	if err != nil {
		fmt.Println(err)
		return
	}
	pool := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "from "+name) })
	}
	h, err := wedgetest.New(t, wasm, wedgetest.Options{
		Name:      "router",
		Upstreams: map[string]http.Handler{"app": pool("app"), "api": pool("api")},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	res := h.Do(wedgetest.Request{Path: "/api/users"})
	fmt.Println(res.Status, string(res.Body), "pool:", res.Upstream.Pool, "x-plugin:", res.Header.Get("X-Plugin"))

	res = h.Do(wedgetest.Request{Path: "/deny"})
	fmt.Printf("%d %q local: %v upstream: %v\n", res.Status, res.Body, res.Local, res.Upstream != nil)

	res = h.Do(wedgetest.Request{Path: "/trap"})
	fmt.Println(res.Status, "failure:", res.Failure != "")
	for _, r := range res.Logs {
		fmt.Println(r.Plugin, r.Level, r.Message)
	}
	// Output:
	// 200 from api pool: api x-plugin: wat
	// 403 "denied\n" local: true upstream: false
	// 500 failure: true
	// router INFO /trap
	// router ERROR plugin VM failed; replacing it
}

// exampleT stands in for a *testing.T outside a test.
type exampleT struct {
	cleanups []func()
	failed   bool
}

func (*exampleT) Helper() {}

func (t *exampleT) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }

func (t *exampleT) TempDir() string {
	dir, err := os.MkdirTemp("", "wedgetest-example-")
	if err != nil {
		panic(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (t *exampleT) Failed() bool { return t.failed }

func (t *exampleT) Errorf(format string, args ...any) {
	t.failed = true
	fmt.Printf(format+"\n", args...)
}

func (t *exampleT) Fatalf(format string, args ...any) {
	t.Errorf(format, args...)
	panic("fatal")
}

func (*exampleT) Logf(string, ...any) {}

// cleanup runs the cleanups, last first, as testing does.
func (t *exampleT) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}
