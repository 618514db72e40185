// Command body is a proxy-wasm-go-sdk filter for Wedge's end-to-end tests
// (e2e/plugins_test.go): it rewrites whole request and response bodies.
//
// The request body B becomes "request:" + upper-case(B) (ReplaceHttpRequestBody);
// the response body R becomes "<<" + R + ">>" (PrependHttpResponseBody and
// AppendHttpResponseBody). When the request has x-drop-length: 1 the filter
// also removes Content-Length in the header phases, as filters written for
// Envoy do before changing a body's length; either way the host must send
// the new length.
//
// Build (the tests do this): GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o body.wasm .
package main

import (
	"bytes"

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
	dropLength bool
}

func (h *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	if v, _ := proxywasm.GetHttpRequestHeader("x-drop-length"); v == "1" {
		h.dropLength = true
		_ = proxywasm.RemoveHttpRequestHeader("content-length")
	}
	return types.ActionContinue
}

func (h *httpContext) OnHttpRequestBody(size int, end bool) types.Action {
	if !end {
		return types.ActionPause // wait for the whole body
	}
	var body []byte
	if size > 0 {
		b, err := proxywasm.GetHttpRequestBody(0, size)
		if err != nil {
			proxywasm.LogErrorf("reading request body: %v", err)
			return types.ActionContinue
		}
		body = b
	}
	if err := proxywasm.ReplaceHttpRequestBody(append([]byte("request:"), bytes.ToUpper(body)...)); err != nil {
		proxywasm.LogErrorf("replacing request body: %v", err)
	}
	return types.ActionContinue
}

func (h *httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	if h.dropLength {
		_ = proxywasm.RemoveHttpResponseHeader("content-length")
	}
	return types.ActionContinue
}

func (h *httpContext) OnHttpResponseBody(size int, end bool) types.Action {
	if !end {
		return types.ActionPause
	}
	if err := proxywasm.PrependHttpResponseBody([]byte("<<")); err != nil {
		proxywasm.LogErrorf("prepending response body: %v", err)
	}
	if err := proxywasm.AppendHttpResponseBody([]byte(">>")); err != nil {
		proxywasm.LogErrorf("appending response body: %v", err)
	}
	return types.ActionContinue
}
