// Command config is a proxy-wasm-go-sdk filter for Wedge's end-to-end
// tests (e2e/plugins_test.go): its behaviour comes from its JSON plugin
// configuration (GetPluginConfiguration in OnPluginStart) and VM
// configuration (GetVMConfiguration in OnVMStart).
//
// Plugin configuration: {"add": {field: value, ...}, "deny_prefix": "/p",
// "deny_status": 451}: every request gets the fields in "add"; one whose
// :path starts with deny_prefix is answered deny_status with the body
// "denied by configuration". Configuration that is not such JSON fails
// OnPluginStart, so the plugin does not load. VM configuration:
// {"greeting": "..."}: every request gets x-vm-greeting: <greeting>.
//
// Build (the tests do this): GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o config.wasm .
package main

import (
	"encoding/json"
	"sort"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() { proxywasm.SetVMContext(&vmContext{}) }

var vmGreeting string

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) OnVMStart(size int) types.OnVMStartStatus {
	if size == 0 {
		return types.OnVMStartStatusOK
	}
	data, err := proxywasm.GetVMConfiguration()
	if err != nil {
		proxywasm.LogCriticalf("reading the VM configuration: %v", err)
		return types.OnVMStartStatusFailed
	}
	var cfg struct {
		Greeting string `json:"greeting"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		proxywasm.LogCriticalf("VM configuration %q: %v", data, err)
		return types.OnVMStartStatusFailed
	}
	vmGreeting = cfg.Greeting
	return types.OnVMStartStatusOK
}

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type config struct {
	Add        map[string]string `json:"add"`
	DenyPrefix string            `json:"deny_prefix"`
	DenyStatus uint32            `json:"deny_status"`
}

type pluginContext struct {
	types.DefaultPluginContext
	cfg  config
	keys []string
}

func (p *pluginContext) OnPluginStart(size int) types.OnPluginStartStatus {
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil {
		proxywasm.LogCriticalf("reading the configuration (%d bytes): %v", size, err)
		return types.OnPluginStartStatusFailed
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p.cfg); err != nil {
		proxywasm.LogCriticalf("configuration %q: %v", data, err)
		return types.OnPluginStartStatusFailed
	}
	if p.cfg.DenyStatus == 0 {
		p.cfg.DenyStatus = 403
	}
	for k := range p.cfg.Add {
		p.keys = append(p.keys, k)
	}
	sort.Strings(p.keys)
	proxywasm.LogInfof("configured: %s", data)
	return types.OnPluginStartStatusOK
}

func (p *pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{p: p} }

type httpContext struct {
	types.DefaultHttpContext
	p *pluginContext
}

func (h *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	cfg := &h.p.cfg
	if path, _ := proxywasm.GetHttpRequestHeader(":path"); cfg.DenyPrefix != "" && strings.HasPrefix(path, cfg.DenyPrefix) {
		_ = proxywasm.SendHttpResponse(cfg.DenyStatus, nil, []byte("denied by configuration"), -1)
		return types.ActionPause
	}
	for _, k := range h.p.keys {
		_ = proxywasm.AddHttpRequestHeader(k, cfg.Add[k])
	}
	if vmGreeting != "" {
		_ = proxywasm.AddHttpRequestHeader("x-vm-greeting", vmGreeting)
	}
	return types.ActionContinue
}
