// Command deny is a proxy-wasm-go-sdk filter for Wedge's end-to-end tests
// (e2e/plugins_test.go): it answers requests itself with SendHttpResponse
// in each phase:
//
//   - request headers: a :path under /admin/ gets 403, x-denied-by: deny,
//     content-type: text/plain, body "forbidden: <path>";
//   - request body: a body containing EVIL gets 400, x-denied-by: deny-body,
//     body "evil body";
//   - response headers: a :path under /replace/ gets 502,
//     x-denied-by: deny-response, x-upstream-status: <the upstream's
//     :status>, body "replaced", instead of the upstream's response.
//
// Every other request goes through.
//
// Build (the tests do this): GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o deny.wasm .
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
	path string
}

func (h *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	path, _ := proxywasm.GetHttpRequestHeader(":path")
	h.path = path
	if !strings.HasPrefix(path, "/admin/") {
		return types.ActionContinue
	}
	hs := [][2]string{{"x-denied-by", "deny"}, {"content-type", "text/plain"}}
	if err := proxywasm.SendHttpResponse(403, hs, []byte("forbidden: "+path), -1); err != nil {
		proxywasm.LogErrorf("sending local response: %v", err)
		return types.ActionContinue
	}
	// The SDK's rule: after SendHttpResponse, return ActionPause.
	return types.ActionPause
}

func (h *httpContext) OnHttpRequestBody(size int, end bool) types.Action {
	if !end {
		return types.ActionPause
	}
	body, err := proxywasm.GetHttpRequestBody(0, size)
	if err != nil || !strings.Contains(string(body), "EVIL") {
		return types.ActionContinue
	}
	_ = proxywasm.SendHttpResponse(400, [][2]string{{"x-denied-by", "deny-body"}}, []byte("evil body"), -1)
	return types.ActionPause
}

func (h *httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	if !strings.HasPrefix(h.path, "/replace/") {
		return types.ActionContinue
	}
	status, _ := proxywasm.GetHttpResponseHeader(":status")
	hs := [][2]string{{"x-denied-by", "deny-response"}, {"x-upstream-status", status}}
	_ = proxywasm.SendHttpResponse(502, hs, []byte("replaced"), -1)
	return types.ActionPause
}
