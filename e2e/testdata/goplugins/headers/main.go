// Command headers is a proxy-wasm-go-sdk filter for Wedge's end-to-end
// tests (e2e/plugins_test.go): it adds, replaces and removes request and
// response header fields and rewrites :path.
//
// Request: adds x-added: yes and a second x-multi: plugin, replaces
// x-replace with "new", removes x-remove, adds x-seen-names: <the names
// GetHttpRequestHeaders listed, comma-separated>, rewrites a :path starting
// with /old/ to /new/ and, when x-authority is present, :authority to its
// value. Response: adds x-resp-added: yes, x-original-path: <the :path
// before the rewrite> and x-seen-status: <:status>, replaces x-up-replace
// with "new", removes x-up-remove, and sets :status to 299 for a request
// whose :path started with /old/status/. It also sets x-set-by-replace: v
// with ReplaceHttpRequestHeader, which adds a field that is absent.
//
// A request whose :path starts with /all/ instead has its whole map
// replaced (ReplaceHttpRequestHeaders) by GET /all-replaced,
// :authority all.example and the one field x-only: 1; its response's map
// is replaced (ReplaceHttpResponseHeaders) by :status 203,
// content-type: text/plain, x-all: 1 and x-names: <the names
// GetHttpResponseHeaders listed before, comma-separated>.
//
// Build (the tests do this): GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o headers.wasm .
package main

import (
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() { proxywasm.SetVMContext(&vmContext{}) }

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type pluginContext struct{ types.DefaultPluginContext }

func (*pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{} }

type httpContext struct {
	types.DefaultHttpContext
	origPath string
}

func (h *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	path, err := proxywasm.GetHttpRequestHeader(":path")
	if err != nil {
		proxywasm.LogErrorf("reading :path: %v", err)
		return types.ActionContinue
	}
	h.origPath = path
	if strings.HasPrefix(path, "/all/") {
		must(proxywasm.ReplaceHttpRequestHeaders([][2]string{
			{":method", "GET"}, {":path", "/all-replaced"}, {":authority", "all.example"}, {":scheme", "http"},
			{"x-only", "1"},
		}))
		return types.ActionContinue
	}
	hs, err := proxywasm.GetHttpRequestHeaders()
	if err != nil {
		proxywasm.LogErrorf("listing request fields: %v", err)
	}
	names := make([]string, len(hs))
	for i, kv := range hs {
		names[i] = kv[0]
	}
	must(proxywasm.AddHttpRequestHeader("x-added", "yes"))
	must(proxywasm.AddHttpRequestHeader("x-multi", "plugin"))
	must(proxywasm.ReplaceHttpRequestHeader("x-replace", "new"))
	must(proxywasm.RemoveHttpRequestHeader("x-remove"))
	must(proxywasm.ReplaceHttpRequestHeader("x-set-by-replace", "v"))
	must(proxywasm.AddHttpRequestHeader("x-seen-names", strings.Join(names, ",")))
	if rest, ok := strings.CutPrefix(path, "/old/"); ok {
		must(proxywasm.ReplaceHttpRequestHeader(":path", "/new/"+rest))
	}
	if a, err := proxywasm.GetHttpRequestHeader("x-authority"); err == nil {
		must(proxywasm.ReplaceHttpRequestHeader(":authority", a))
	}
	return types.ActionContinue
}

func (h *httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	if strings.HasPrefix(h.origPath, "/all/") {
		hs, err := proxywasm.GetHttpResponseHeaders()
		if err != nil {
			proxywasm.LogErrorf("listing response fields: %v", err)
		}
		names := make([]string, len(hs))
		for i, kv := range hs {
			names[i] = kv[0]
		}
		must(proxywasm.ReplaceHttpResponseHeaders([][2]string{
			{":status", "203"}, {"content-type", "text/plain"}, {"x-all", "1"},
			{"x-names", strings.Join(names, ",")},
		}))
		return types.ActionContinue
	}
	must(proxywasm.AddHttpResponseHeader("x-resp-added", "yes"))
	must(proxywasm.AddHttpResponseHeader("x-original-path", h.origPath))
	must(proxywasm.ReplaceHttpResponseHeader("x-up-replace", "new"))
	must(proxywasm.RemoveHttpResponseHeader("x-up-remove"))
	status, err := proxywasm.GetHttpResponseHeader(":status")
	if err != nil {
		status = "error: " + err.Error()
	}
	must(proxywasm.AddHttpResponseHeader("x-seen-status", status))
	if strings.HasPrefix(h.origPath, "/old/status/") {
		must(proxywasm.ReplaceHttpResponseHeader(":status", "299"))
	}
	return types.ActionContinue
}

func must(err error) {
	if err != nil {
		proxywasm.LogErrorf("header call failed: %v", err)
	}
}
