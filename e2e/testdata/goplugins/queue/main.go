// Command queue is a proxy-wasm-go-sdk filter for Wedge's end-to-end tests
// (e2e/plugins_test.go): request contexts hand work to the plugin (root)
// context through a shared queue.
//
// The plugin context registers the queue "events" in OnPluginStart. Each
// request resolves it (ResolveSharedQueue with the plugin's vm_id) and
// enqueues its :path; OnQueueReady dequeues until the queue is empty and
// appends each item and a newline to the shared data key "queue-log" (a
// CAS loop). GET /queue-log answers 200 with that log, without enqueueing.
//
// Build (the tests do this): GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o queue.wasm .
package main

import (
	"errors"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() { proxywasm.SetVMContext(&vmContext{}) }

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type pluginContext struct {
	types.DefaultPluginContext
	vmID string
}

func (p *pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	if _, err := proxywasm.RegisterSharedQueue("events"); err != nil {
		proxywasm.LogCriticalf("registering the queue: %v", err)
		return types.OnPluginStartStatusFailed
	}
	id, err := proxywasm.GetProperty([]string{"plugin_vm_id"})
	if err != nil {
		proxywasm.LogCriticalf("reading plugin_vm_id: %v", err)
		return types.OnPluginStartStatusFailed
	}
	p.vmID = string(id)
	return types.OnPluginStartStatusOK
}

func (p *pluginContext) OnQueueReady(queueID uint32) {
	for {
		item, err := proxywasm.DequeueSharedQueue(queueID)
		if errors.Is(err, types.ErrorStatusEmpty) {
			return // another VM may have taken it, as the SDK says
		}
		if err != nil {
			proxywasm.LogErrorf("dequeueing: %v", err)
			return
		}
		if err := appendLog(item); err != nil {
			proxywasm.LogErrorf("recording %q: %v", item, err)
		}
	}
}

func appendLog(item []byte) error {
	for {
		v, cas, err := proxywasm.GetSharedData("queue-log")
		if errors.Is(err, types.ErrorStatusNotFound) {
			v, cas = nil, 0
		} else if err != nil {
			return err
		}
		next := append(append(append([]byte(nil), v...), item...), '\n')
		err = proxywasm.SetSharedData("queue-log", next, cas)
		if !errors.Is(err, types.ErrorStatusCasMismatch) {
			return err
		}
	}
}

func (p *pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{p: p} }

type httpContext struct {
	types.DefaultHttpContext
	p *pluginContext
}

func (h *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	path, _ := proxywasm.GetHttpRequestHeader(":path")
	if path == "/queue-log" {
		v, _, err := proxywasm.GetSharedData("queue-log")
		if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
			v = []byte("error: " + err.Error())
		}
		_ = proxywasm.SendHttpResponse(200, [][2]string{{"content-type", "text/plain"}}, v, -1)
		return types.ActionPause
	}
	q, err := proxywasm.ResolveSharedQueue(h.p.vmID, "events")
	if err == nil {
		err = proxywasm.EnqueueSharedQueue(q, []byte(path))
	}
	if err != nil {
		_ = proxywasm.SendHttpResponse(500, nil, []byte("enqueueing: "+err.Error()), -1)
		return types.ActionPause
	}
	return types.ActionContinue
}
