package wedgetest_test

import (
	"net/http"
	"testing"

	"github.com/wedgeproxy/wedge/sdk/wedgetest"
)

// TestLanguages runs the raw-ABI filters in C, Rust and AssemblyScript
// (testdata/lang, each built by the command at the top of its source) in
// the real host, enough times to show that their allocators hold up.
func TestLanguages(t *testing.T) {
	for _, tt := range []struct{ lang, wasm, field string }{
		{"C", "testdata/lang/filter_c.wasm", "X-From-C"},
		{"Rust", "testdata/lang/filter_rust.wasm", "X-From-Rust"},
		{"AssemblyScript", "testdata/lang/filter_as.wasm", "X-From-As"},
	} {
		t.Run(tt.lang, func(t *testing.T) {
			h, err := wedgetest.New(t, readWasm(t, tt.wasm), wedgetest.Options{
				Upstreams: map[string]http.Handler{"app": echo("app"), "api": echo("api")},
			})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			for i := range 100 {
				path, pool := "/api/users", "api"
				if i%2 == 1 {
					path, pool = "/", "app"
				}
				res := h.Do(wedgetest.Request{Path: path})
				up := res.Upstream
				if res.Status != 200 || up == nil || up.Pool != pool || up.Header.Get(tt.field) != "1" {
					t.Fatalf("%s: status %d, upstream %+v; want 200 from %s with %s: 1", path, res.Status, up, pool, tt.field)
				}
				if len(res.Logs) != 1 || res.Logs[0].Message != path {
					t.Fatalf("%s: logs %v, want the path", path, res.Logs)
				}
			}
		})
	}
}
