// Command goplugin is a proxy-wasm filter written with proxy-wasm-go-sdk
// and sdk/go/wedge, the Go guest of wedgetest's tests: it reports what the
// wedge helpers read from the real host.
//
// In proxy_on_request_headers it adds x-prop-<name>: <value> request
// fields for request and connection properties (x-prop-<name>-error when a
// helper fails), sends /api/ requests to the "api" pool with
// wedge.SetUpstream, stores the request path as a stream property, and for
// /call pauses the request until a proxy_http_call to the "api" pool
// answers (x-call: <status> <body>). In
// proxy_on_response_headers it adds x-prop-<name> response fields for
// response properties and the stream property read back.
//
// Build (wedgetest's tests do this):
//
//	cd sdk/wedgetest/testdata/goplugin && GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o goplugin.wasm .
package main

import (
	"fmt"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/wedgeproxy/wedge/sdk/go/wedge"
)

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext { return &httpContext{} })
}

type httpContext struct{ types.DefaultHttpContext }

// report adds x-prop-name to the request (resp false) or response fields.
func report[T any](resp bool, name string, v T, err error) {
	key, val := "x-prop-"+name, fmt.Sprint(v)
	if err != nil {
		key, val = key+"-error", err.Error()
	}
	if resp {
		_ = proxywasm.AddHttpResponseHeader(key, val)
	} else {
		_ = proxywasm.AddHttpRequestHeader(key, val)
	}
}

func (*httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	const q = false
	{ // first, before the fields this adds
		hs, err := wedge.RequestHeaders()
		var names []string
		for _, h := range hs {
			names = append(names, h[0])
		}
		report(q, "headers", strings.Join(names, ","), err)
	}
	{
		v, err := wedge.PluginName()
		report(q, "plugin-name", v, err)
	}
	{
		v, err := wedge.RequestPath()
		report(q, "path", v, err)
	}
	{
		v, err := wedge.RequestURLPath()
		report(q, "url-path", v, err)
	}
	{
		v, err := wedge.RequestQuery()
		report(q, "query", v, err)
	}
	{
		v, err := wedge.RequestHost()
		report(q, "host", v, err)
	}
	{
		v, err := wedge.RequestMethod()
		report(q, "method", v, err)
	}
	{
		v, err := wedge.RequestScheme()
		report(q, "scheme", v, err)
	}
	{
		v, err := wedge.RequestProtocol()
		report(q, "protocol", v, err)
	}
	{
		v, err := wedge.RequestID()
		report(q, "id", v, err)
	}
	{
		v, err := wedge.RequestUserAgent()
		report(q, "useragent", v, err)
	}
	{
		v, err := wedge.RequestHeader("x-in")
		report(q, "header-x-in", v, err)
	}
	{
		v, err := wedge.RequestTime()
		report(q, "time-unix", v.Unix(), err)
	}
	{
		v, err := wedge.RequestDuration()
		report(q, "duration-nonneg", v >= 0, err)
	}
	{
		v, err := wedge.RequestSize()
		report(q, "size", v, err)
	}
	{
		v, err := wedge.SourceAddress()
		report(q, "source", v.Addr(), err)
	}
	{
		v, err := wedge.DestinationAddress()
		report(q, "destination", v.Addr(), err)
	}
	{
		v, err := wedge.ConnectionMTLS()
		report(q, "mtls", v, err)
	}
	{
		_, err := wedge.TLSVersion()
		report(q, "tls", "", err)
	}
	{
		_, err := wedge.ResponseCode()
		report(q, "early-code", "", err)
	}
	{
		v, err := wedge.Upstream()
		report(q, "upstream-before", v, err)
	}
	if p, err := wedge.RequestURLPath(); err == nil && strings.HasPrefix(p, "/api/") {
		report(q, "set-upstream", "api", wedge.SetUpstream("api"))
	}
	{
		v, err := wedge.Upstream()
		report(q, "upstream-after", v, err)
	}
	if p, err := wedge.RequestPath(); err == nil {
		report(q, "set-state", "ok", wedge.SetStreamProperty("goplugin.path", []byte(p)))
	}
	if p, _ := wedge.RequestURLPath(); p == "/call" {
		// Ask the "api" pool first; resume when it answers.
		hs := [][2]string{{":method", "GET"}, {":path", "/check"}, {":authority", "auth.internal"}}
		_, err := proxywasm.DispatchHttpCall("api", hs, nil, nil, 5000, func(_, bodySize, _ int) {
			var status string
			hs, _ := proxywasm.GetHttpCallResponseHeaders()
			for _, h := range hs {
				if h[0] == ":status" {
					status = h[1]
				}
			}
			body, _ := proxywasm.GetHttpCallResponseBody(0, bodySize)
			_ = proxywasm.AddHttpRequestHeader("x-call", status+" "+string(body))
			_ = proxywasm.ResumeHttpRequest()
		})
		if err == nil {
			return types.ActionPause
		}
		report(q, "call", "", err)
	}
	return types.ActionContinue
}

func (*httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	const r = true
	{ // first, before the fields this adds
		hs, err := wedge.ResponseHeaders()
		var names []string
		for _, h := range hs {
			names = append(names, h[0])
		}
		report(r, "headers", strings.Join(names, ","), err)
		if len(hs) > 0 {
			report(r, "headers-first", hs[0][0]+"="+hs[0][1], err)
		}
	}
	{
		v, err := wedge.ResponseCode()
		report(r, "code", v, err)
	}
	{
		v, err := wedge.ResponseCodeDetails()
		report(r, "code-details", v, err)
	}
	{
		v, err := wedge.ResponseHeader("x-pool")
		report(r, "header-x-pool", v, err)
	}
	{
		v, err := wedge.ResponseSize()
		report(r, "size", v, err)
	}
	{
		v, err := wedge.UpstreamAddress()
		report(r, "upstream-address-set", v != "", err)
	}
	{
		v, err := wedge.StreamProperty("goplugin.path")
		report(r, "state", string(v), err)
	}
	return types.ActionContinue
}
