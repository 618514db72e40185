// Package wedge is the Go side of Wedge's plugin SDK: typed helpers for
// the properties Wedge serves to proxy-wasm (ABI v0.2.1) plugins, on top of
// github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm.
//
// A plugin is written with proxy-wasm-go-sdk as for any proxy-wasm host
// and built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm .
//
// This package adds what is Wedge's own (wedge.upstream and wedge.static,
// which route the request) and decodes Envoy's attributes as Wedge
// serializes them (proxy-wasm spec "Properties";
// envoyproxy.io/docs/envoy/latest/intro/arch_overview/advanced/attributes):
// strings as their bytes, integers as 8 bytes little-endian, booleans as
// one byte, timestamps and durations as int64 nanoseconds, header maps in
// the proxy-wasm map serialization. sdk/README.md lists every property.
//
//	func (c *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
//		if p, _ := wedge.RequestURLPath(); strings.HasPrefix(p, "/api/") {
//			_ = wedge.SetUpstream("api")
//		}
//		return types.ActionContinue
//	}
//
// # Where properties can be read
//
// Request and connection properties are readable from a stream's
// callbacks (proxy_on_request_headers to proxy_on_log, and from
// proxy_on_http_call_response while the stream is paused); response.*
// from proxy_on_response_headers on. plugin_name, plugin_root_id and
// plugin_vm_id are readable everywhere, including OnPluginStart. A
// property Wedge has no value for answers NOT_FOUND, which the helpers
// return as an error wrapping types.ErrorStatusNotFound.
//
// # Tests
//
// The helpers call proxywasm.GetProperty and proxywasm.SetProperty, so they
// run natively under proxytest (proxytest.NewEmulatorOption().WithProperty)
// as well as in Wedge. To run a built .wasm in the real host against
// made-up requests, use github.com/wedgeproxy/wedge/sdk/wedgetest.
package wedge
