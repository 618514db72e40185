// Command tick is a proxy-wasm-go-sdk filter for Wedge's end-to-end tests
// (e2e/plugins_test.go): OnTick runs every 20 ms (SetTickPeriodMilliSeconds
// in OnPluginStart) and increments the shared data key "ticks" (decimal
// text, a CAS loop). GET /ticks answers 200 with its value.
//
// Build (the tests do this): GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o tick.wasm .
package main

import (
	"errors"
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() { proxywasm.SetVMContext(&vmContext{}) }

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type pluginContext struct{ types.DefaultPluginContext }

func (*pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	if err := proxywasm.SetTickPeriodMilliSeconds(20); err != nil {
		proxywasm.LogCriticalf("setting the tick period: %v", err)
		return types.OnPluginStartStatusFailed
	}
	return types.OnPluginStartStatusOK
}

func (*pluginContext) OnTick() {
	for {
		v, cas, err := proxywasm.GetSharedData("ticks")
		var n uint64
		if errors.Is(err, types.ErrorStatusNotFound) {
			cas = 0
		} else if err != nil {
			proxywasm.LogErrorf("reading ticks: %v", err)
			return
		} else {
			n, _ = strconv.ParseUint(string(v), 10, 64)
		}
		err = proxywasm.SetSharedData("ticks", []byte(strconv.FormatUint(n+1, 10)), cas)
		if !errors.Is(err, types.ErrorStatusCasMismatch) {
			return
		}
	}
}

func (*pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{} }

type httpContext struct{ types.DefaultHttpContext }

func (*httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	if path, _ := proxywasm.GetHttpRequestHeader(":path"); path != "/ticks" {
		return types.ActionContinue
	}
	v, _, err := proxywasm.GetSharedData("ticks")
	if errors.Is(err, types.ErrorStatusNotFound) {
		v = []byte("0")
	} else if err != nil {
		v = []byte("error: " + err.Error())
	}
	_ = proxywasm.SendHttpResponse(200, [][2]string{{"content-type", "text/plain"}}, v, -1)
	return types.ActionPause
}
