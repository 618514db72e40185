// Command go-canary is a Wedge filter written with proxy-wasm-go-sdk: a
// header-based canary behind an external authorization check.
//
// For each request it
//
//  1. sends the request to the canary pool when it carries the canary field
//     (default "x-canary: 1"), else to the stable pool, by setting
//     wedge.upstream;
//  2. pauses it while it asks an authorization service (proxy_http_call to
//     the upstream pool auth_pool: GET auth_path with the request's
//     Authorization field, X-Original-Method and X-Original-URI);
//  3. resumes it when the service answers 2xx, adding x-auth-user: <the
//     answer's X-User field> to the request; answers 403 "forbidden\n" when
//     the service answers 401 or 403 (x-auth-status says which); answers 503
//     "authorization service unavailable\n" when the call fails (the pool
//     is down, the call times out) or the service answers anything else:
//     the filter fails closed.
//
// It logs one line per request at INFO: "canary: <pool> <status>" where
// status is allow, deny or unavailable.
//
// Plugin configuration (wedge.yaml's config:, as JSON):
//
//	{"auth_pool": "auth", "auth_path": "/check", "stable_pool": "app",
//	 "canary_pool": "canary", "canary_header": "x-canary", "canary_value": "1",
//	 "timeout_ms": 2000}
//
// auth_pool and canary_pool are required and must be pools of wedge.yaml's
// upstreams:; stable_pool is optional (without it a request without the
// canary field stays where the chain routed it, e.g. by the router
// plugin's default route); the others have the defaults shown.
//
// Build (README.md):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o go-canary.wasm .
package main

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/wedgeproxy/wedge/sdk/go/wedge"
)

func main() {}

func init() { proxywasm.SetVMContext(&vmContext{}) }

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

// settings is the plugin configuration.
type settings struct {
	AuthPool     string `json:"auth_pool"`
	AuthPath     string `json:"auth_path"`
	StablePool   string `json:"stable_pool"`
	CanaryPool   string `json:"canary_pool"`
	CanaryHeader string `json:"canary_header"`
	CanaryValue  string `json:"canary_value"`
	TimeoutMS    uint32 `json:"timeout_ms"`
}

// parseSettings decodes the plugin configuration and fills in defaults.
func parseSettings(data []byte) (settings, error) {
	s := settings{AuthPath: "/check", CanaryHeader: "x-canary", CanaryValue: "1", TimeoutMS: 2000}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, err
	}
	if s.AuthPool == "" || s.CanaryPool == "" {
		return s, errors.New(`auth_pool and canary_pool are required`)
	}
	s.CanaryHeader = strings.ToLower(s.CanaryHeader)
	return s, nil
}

type pluginContext struct {
	types.DefaultPluginContext
	cfg settings
}

func (p *pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	data, err := proxywasm.GetPluginConfiguration()
	if err == nil {
		p.cfg, err = parseSettings(data)
	}
	if err != nil {
		// Wedge refuses to start, naming the plugin and this line.
		proxywasm.LogCriticalf("configuration %q: %v", data, err)
		return types.OnPluginStartStatusFailed
	}
	return types.OnPluginStartStatusOK
}

func (p *pluginContext) NewHttpContext(uint32) types.HttpContext {
	return &httpContext{cfg: &p.cfg}
}

type httpContext struct {
	types.DefaultHttpContext
	cfg  *settings
	pool string // the pool chosen, for the log line
}

func (h *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	h.pool = h.cfg.StablePool
	if v, err := proxywasm.GetHttpRequestHeader(h.cfg.CanaryHeader); err == nil && v == h.cfg.CanaryValue {
		h.pool = h.cfg.CanaryPool
	}
	if h.pool == "" {
		h.pool = "default" // for the log: where the chain routed it
	} else if err := wedge.SetUpstream(h.pool); err != nil {
		proxywasm.LogErrorf("canary: routing to %s: %v", h.pool, err)
	}
	method, _ := proxywasm.GetHttpRequestHeader(":method")
	uri, _ := proxywasm.GetHttpRequestHeader(":path")
	hs := [][2]string{
		{":method", "GET"}, {":path", h.cfg.AuthPath}, {":authority", h.cfg.AuthPool},
		{"x-original-method", method}, {"x-original-uri", uri},
	}
	if token, err := proxywasm.GetHttpRequestHeader("authorization"); err == nil {
		hs = append(hs, [2]string{"authorization", token})
	}
	if _, err := proxywasm.DispatchHttpCall(h.cfg.AuthPool, hs, nil, nil, h.cfg.TimeoutMS, h.onAuth); err != nil {
		h.unavailable("dispatching: " + err.Error())
		return types.ActionPause
	}
	return types.ActionPause // onAuth resumes or answers
}

// onAuth is the authorization service's answer.
func (h *httpContext) onAuth(numHeaders, _, _ int) {
	if numHeaders == 0 { // the call failed: pool down, timeout, ...
		h.unavailable("call failed")
		return
	}
	hs, err := proxywasm.GetHttpCallResponseHeaders()
	if err != nil {
		h.unavailable("reading the answer: " + err.Error())
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
	switch {
	case strings.HasPrefix(status, "2"):
		if user != "" {
			_ = proxywasm.ReplaceHttpRequestHeader("x-auth-user", user)
		}
		proxywasm.LogInfof("canary: %s allow", h.pool)
		if err := proxywasm.ResumeHttpRequest(); err != nil {
			proxywasm.LogErrorf("canary: resuming: %v", err)
		}
	case status == "401" || status == "403":
		proxywasm.LogInfof("canary: %s deny", h.pool)
		_ = proxywasm.SendHttpResponse(403, [][2]string{{"content-type", "text/plain"}, {"x-auth-status", status}},
			[]byte("forbidden\n"), -1)
	default:
		h.unavailable("status " + status)
	}
}

// unavailable answers 503: the filter fails closed.
func (h *httpContext) unavailable(why string) {
	proxywasm.LogWarnf("canary: %s unavailable (%s)", h.pool, why)
	_ = proxywasm.SendHttpResponse(503, [][2]string{{"content-type", "text/plain"}},
		[]byte("authorization service unavailable\n"), -1)
}
