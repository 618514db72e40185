// Command counter is a proxy-wasm-go-sdk filter for Wedge's end-to-end
// tests (e2e/plugins_test.go): it counts requests in shared data with
// compare-and-swap, across every VM of its pool.
//
// Each VM takes a number from the shared key "vms" when it starts. Each
// request increments the shared key "requests" (decimal text) with a CAS
// loop and gets x-count: <the value it stored> and x-vm: <its VM's number>
// in its response. GET /count answers 200 with the current count, without
// counting itself.
//
// Build (the tests do this): GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o counter.wasm .
package main

import (
	"errors"
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() { proxywasm.SetVMContext(&vmContext{}) }

var vmNumber uint64

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) OnVMStart(int) types.OnVMStartStatus {
	n, err := increment("vms")
	if err != nil {
		proxywasm.LogCriticalf("numbering the VM: %v", err)
		return types.OnVMStartStatusFailed
	}
	vmNumber = n
	return types.OnVMStartStatusOK
}

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type pluginContext struct{ types.DefaultPluginContext }

func (*pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	// The first VM starts before any request arrives: create the key it
	// counts in, so every later update is a compare-and-swap.
	if _, _, err := proxywasm.GetSharedData("requests"); errors.Is(err, types.ErrorStatusNotFound) {
		if err := proxywasm.SetSharedData("requests", []byte("0"), 0); err != nil {
			return types.OnPluginStartStatusFailed
		}
	}
	return types.OnPluginStartStatusOK
}

func (*pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{} }

type httpContext struct {
	types.DefaultHttpContext
	count uint64
}

func (h *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	if path, _ := proxywasm.GetHttpRequestHeader(":path"); path == "/count" {
		v, _, err := proxywasm.GetSharedData("requests")
		if err != nil {
			v = []byte("error: " + err.Error())
		}
		_ = proxywasm.SendHttpResponse(200, [][2]string{{"content-type", "text/plain"}}, v, -1)
		return types.ActionPause
	}
	n, err := increment("requests")
	if err != nil {
		_ = proxywasm.SendHttpResponse(500, nil, []byte(err.Error()), -1)
		return types.ActionPause
	}
	h.count = n
	return types.ActionContinue
}

func (h *httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	if h.count != 0 {
		_ = proxywasm.AddHttpResponseHeader("x-count", strconv.FormatUint(h.count, 10))
		_ = proxywasm.AddHttpResponseHeader("x-vm", strconv.FormatUint(vmNumber, 10))
	}
	return types.ActionContinue
}

// increment adds one to the decimal number in shared data key and returns
// the new value, retrying when another VM updated it in between
// (ErrorStatusCasMismatch), as the SDK's SetSharedData doc advises. An
// absent key counts from 0.
func increment(key string) (uint64, error) {
	for {
		v, cas, err := proxywasm.GetSharedData(key)
		var n uint64
		switch {
		case errors.Is(err, types.ErrorStatusNotFound):
			cas = 0
		case err != nil:
			return 0, err
		default:
			if n, err = strconv.ParseUint(string(v), 10, 64); err != nil {
				return 0, err
			}
		}
		n++
		err = proxywasm.SetSharedData(key, []byte(strconv.FormatUint(n, 10)), cas)
		if errors.Is(err, types.ErrorStatusCasMismatch) {
			continue
		}
		return n, err
	}
}
