// Command metrics is a proxy-wasm-go-sdk filter for Wedge's end-to-end
// tests (e2e/plugins_test.go): it defines metrics, which Wedge exports on
// its admin /metrics.
//
// Defined in OnPluginStart: the counter e2e_requests_total (one per
// request), the counter e2e.bytes.total (its name has dots, which the
// export turns into "_"; the request's x-bytes value per request), the
// gauge e2e_in_flight (+1 at request headers, -1 when the stream is done)
// and the histogram e2e_path_length (the :path length of each request).
// Each response gets x-requests-total: <the counter's Value() after
// counting it>.
//
// Build (the tests do this): GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o metrics.wasm .
package main

import (
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() { proxywasm.SetVMContext(&vmContext{}) }

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type pluginContext struct {
	types.DefaultPluginContext
	requests proxywasm.MetricCounter
	bytes    proxywasm.MetricCounter
	inFlight proxywasm.MetricGauge
	pathLen  proxywasm.MetricHistogram
}

func (p *pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	p.requests = proxywasm.DefineCounterMetric("e2e_requests_total")
	p.bytes = proxywasm.DefineCounterMetric("e2e.bytes.total")
	p.inFlight = proxywasm.DefineGaugeMetric("e2e_in_flight")
	p.pathLen = proxywasm.DefineHistogramMetric("e2e_path_length")
	return types.OnPluginStartStatusOK
}

func (p *pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{p: p} }

type httpContext struct {
	types.DefaultHttpContext
	p     *pluginContext
	total uint64
}

func (h *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	p := h.p
	p.inFlight.Add(1)
	p.requests.Increment(1)
	h.total = p.requests.Value()
	if v, err := proxywasm.GetHttpRequestHeader("x-bytes"); err == nil {
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			p.bytes.Increment(n)
		}
	}
	path, _ := proxywasm.GetHttpRequestHeader(":path")
	p.pathLen.Record(uint64(len(path)))
	return types.ActionContinue
}

func (h *httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	_ = proxywasm.AddHttpResponseHeader("x-requests-total", strconv.FormatUint(h.total, 10))
	return types.ActionContinue
}

func (h *httpContext) OnHttpStreamDone() { h.p.inFlight.Add(-1) }
