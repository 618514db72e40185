// Command benchplugin is the trivial plugin of the server benchmarks
// (server/bench_test.go): a proxy-wasm-go-sdk filter that adds one request
// field, x-bench: 1, and does nothing else.
//
// It is its own module so that the main module's go mod tidy leaves
// proxy-wasm-go-sdk alone. The benchmark builds it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o benchplugin.wasm .
package main

import (
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

func (*httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	_ = proxywasm.AddHttpRequestHeader("x-bench", "1")
	return types.ActionContinue
}
