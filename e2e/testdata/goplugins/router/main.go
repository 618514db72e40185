// Command router is a proxy-wasm-go-sdk filter for Wedge's end-to-end
// tests (e2e/plugins_test.go): it picks the upstream pool by setting
// Wedge's property wedge.upstream.
//
// A request whose :path starts with /b/ goes to the pool "b", with the
// prefix /b stripped from :path; /nowhere/ goes to the pool "nowhere",
// which is not configured (Wedge answers 500). Every request gets
// x-upstream-default: <wedge.upstream as it was before, read with
// GetProperty> and x-upstream-chosen: <as it is after>.
//
// Build (the tests do this): GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o router.wasm .
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

type httpContext struct{ types.DefaultHttpContext }

var upstreamProp = []string{"wedge", "upstream"}

func (*httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	before, err := proxywasm.GetProperty(upstreamProp)
	if err != nil {
		before = []byte("error: " + err.Error())
	}
	_ = proxywasm.AddHttpRequestHeader("x-upstream-default", string(before))
	path, _ := proxywasm.GetHttpRequestHeader(":path")
	switch {
	case strings.HasPrefix(path, "/b/"):
		if err := proxywasm.SetProperty(upstreamProp, []byte("b")); err != nil {
			proxywasm.LogErrorf("setting wedge.upstream: %v", err)
		}
		_ = proxywasm.ReplaceHttpRequestHeader(":path", strings.TrimPrefix(path, "/b"))
	case strings.HasPrefix(path, "/nowhere/"):
		_ = proxywasm.SetProperty(upstreamProp, []byte("nowhere"))
	}
	after, err := proxywasm.GetProperty(upstreamProp)
	if err != nil {
		after = []byte("error: " + err.Error())
	}
	_ = proxywasm.AddHttpRequestHeader("x-upstream-chosen", string(after))
	return types.ActionContinue
}
