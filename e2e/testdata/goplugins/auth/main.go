// Command auth is a proxy-wasm-go-sdk filter for Wedge's end-to-end tests
// (e2e/plugins_test.go): external authorization with DispatchHttpCall.
//
// Each request is paused while GET /check, with the request's
// Authorization field, goes to the upstream pool named in the plugin
// configuration ({"cluster": "auth"}). When it answers 200 the filter adds
// x-auth-user: <its x-user field> to the request and resumes it with
// ResumeHttpRequest; any other status is answered to the client as a local
// response: 403, x-auth-status: <the call's status>, body "denied: <the
// call's body>". A call that fails (no headers) answers 503. A call the
// host refuses at once (an unknown pool, path /unknown-pool) answers 502
// with x-dispatch-error: <the error>.
//
// Build (the tests do this): GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o auth.wasm .
package main

import (
	"encoding/json"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() { proxywasm.SetVMContext(&vmContext{}) }

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type pluginContext struct {
	types.DefaultPluginContext
	cluster string
}

func (p *pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil {
		proxywasm.LogCriticalf("reading the configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	var cfg struct {
		Cluster string `json:"cluster"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil || cfg.Cluster == "" {
		proxywasm.LogCriticalf("configuration %q: want {\"cluster\": name} (%v)", data, err)
		return types.OnPluginStartStatusFailed
	}
	p.cluster = cfg.Cluster
	return types.OnPluginStartStatusOK
}

func (p *pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{p: p} }

type httpContext struct {
	types.DefaultHttpContext
	p *pluginContext
}

func (h *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	cluster := h.p.cluster
	if path, _ := proxywasm.GetHttpRequestHeader(":path"); path == "/unknown-pool" {
		cluster = "no-such-pool"
	}
	token, _ := proxywasm.GetHttpRequestHeader("authorization")
	hs := [][2]string{
		{":method", "GET"}, {":path", "/check"}, {":authority", "auth.internal"},
		{"authorization", token},
	}
	_, err := proxywasm.DispatchHttpCall(cluster, hs, nil, nil, 5000, h.onAuthResponse)
	if err != nil {
		_ = proxywasm.SendHttpResponse(502, [][2]string{{"x-dispatch-error", err.Error()}}, nil, -1)
		return types.ActionPause
	}
	return types.ActionPause // resumed (or answered) by onAuthResponse
}

func (h *httpContext) onAuthResponse(numHeaders, bodySize, _ int) {
	if numHeaders == 0 {
		_ = proxywasm.SendHttpResponse(503, nil, []byte("authorization service unavailable"), -1)
		return
	}
	hs, err := proxywasm.GetHttpCallResponseHeaders()
	if err != nil {
		_ = proxywasm.SendHttpResponse(500, nil, []byte(err.Error()), -1)
		return
	}
	var status, user string
	for _, kv := range hs {
		switch kv[0] {
		case ":status":
			status = kv[1]
		case "x-user":
			user = kv[1]
		}
	}
	if status != "200" {
		var body []byte
		if bodySize > 0 {
			body, _ = proxywasm.GetHttpCallResponseBody(0, bodySize)
		}
		_ = proxywasm.SendHttpResponse(403, [][2]string{{"x-auth-status", status}},
			append([]byte("denied: "), body...), -1)
		return
	}
	_ = proxywasm.AddHttpRequestHeader("x-auth-user", user)
	if err := proxywasm.ResumeHttpRequest(); err != nil {
		proxywasm.LogErrorf("resuming: %v", err)
	}
}
