// Command router is Wedge's built-in router, a proxy-wasm filter written
// with proxy-wasm-go-sdk: routes matched in order on host, path, method,
// header and query, each sending the request to an upstream pool
// (wedge.upstream), serving it from a static mount (wedge.static and
// wedge.static_path, mounts opened by the host through wedge_static_mount
// at configure time), redirecting or answering with a fixed response.
//
// The configuration (README.md in this directory) is checked in
// proxy_on_configure; a bad one fails it after logging, at error level,
// the route and the reason ("routes[3]: path.regexp: ..."), which Wedge
// shows in its start-up error.
//
// Build (task plugins:build):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o plugins/router/router.wasm ./plugins/router
package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() { proxywasm.SetVMContext(&vmContext{}) }

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type pluginContext struct {
	types.DefaultPluginContext
	router *Router
}

// Property paths Wedge reads after proxy_on_request_headers (and after the
// response phases, for X-Accel-Redirect).
var (
	propUpstream   = []string{"wedge", "upstream"}
	propStatic     = []string{"wedge", "static"}
	propStaticPath = []string{"wedge", "static_path"}
)

// staticMountFunc is the host function that opens a static mount.
const staticMountFunc = "wedge_static_mount"

func (p *pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
		proxywasm.LogErrorf("reading configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	r, err := Compile(data)
	if err != nil {
		proxywasm.LogError(err.Error())
		return types.OnPluginStartStatusFailed
	}
	for _, m := range r.Mounts() {
		if err := openMount(m); err != nil {
			proxywasm.LogErrorf("%s: static: %v", m.Name, err)
			return types.OnPluginStartStatusFailed
		}
	}
	p.router = r
	if pool, ok := r.Constant(); ok {
		// One decision for every request: Wedge may make it in this
		// filter's place without calling it (a host without the call
		// answers NOT_FOUND, and the filter decides as usual).
		args, _ := json.Marshal(map[string]string{"upstream": pool})
		if _, err := proxywasm.CallForeignFunction(constantRouteFunc, args); err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
			proxywasm.LogWarnf("%s: %v", constantRouteFunc, err)
		}
	}
	return types.OnPluginStartStatusOK
}

// constantRouteFunc is the host function that takes over a constant
// decision (Router.Constant).
const constantRouteFunc = "wedge_constant_route"

// openMount asks the host to open a static mount. The host answers
// {"error": "..."} when it cannot (no such directory, a name taken).
func openMount(m MountSpec) error {
	args, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ret, err := proxywasm.CallForeignFunction(staticMountFunc, args)
	if err != nil {
		return fmt.Errorf("calling %s (static routes need Wedge): %w", staticMountFunc, err)
	}
	var res struct {
		Error string `json:"error"`
	}
	if len(ret) > 0 {
		if err := json.Unmarshal(ret, &res); err != nil {
			return fmt.Errorf("reading the answer of %s: %w", staticMountFunc, err)
		}
	}
	if res.Error != "" {
		return errors.New(res.Error)
	}
	return nil
}

func (p *pluginContext) NewHttpContext(uint32) types.HttpContext {
	return &httpContext{r: p.router}
}

type httpContext struct {
	types.DefaultHttpContext
	r     *Router
	route *Route
	req   Request // kept for X-Accel-Redirect when there are internal routes
}

func (c *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	var req Request
	if c.r.NeedsFields() {
		hs, err := proxywasm.GetHttpRequestHeaders()
		if err != nil {
			proxywasm.LogErrorf("reading request headers: %v", err)
			return types.ActionContinue
		}
		req = RequestFrom(hs)
	} else {
		// No route looks at fields: the pseudo-fields alone, a host call
		// each, cost less than the whole map.
		req.Path, _ = proxywasm.GetHttpRequestHeader(":path")
		req.Authority, _ = proxywasm.GetHttpRequestHeader(":authority")
		req.Method, _ = proxywasm.GetHttpRequestHeader(":method")
		req.Scheme, _ = proxywasm.GetHttpRequestHeader(":scheme")
	}
	if c.r.HasInternal() {
		c.req = req
	}
	d := c.r.Decide(&req)
	c.route = d.Route
	switch d.Action {
	case ActUpstream:
		if err := proxywasm.SetProperty(propUpstream, []byte(d.Upstream)); err != nil {
			proxywasm.LogErrorf("%s: setting wedge.upstream: %v", d.Route.Name, err)
		}
		if d.NewPath != "" {
			_ = proxywasm.ReplaceHttpRequestHeader(":path", d.NewPath)
		}
		editFields(d.Route.ReqEdits, proxywasm.RemoveHttpRequestHeader, proxywasm.ReplaceHttpRequestHeader, proxywasm.AddHttpRequestHeader)
	case ActStatic:
		setStatic(d)
		editFields(d.Route.ReqEdits, proxywasm.RemoveHttpRequestHeader, proxywasm.ReplaceHttpRequestHeader, proxywasm.AddHttpRequestHeader)
	default:
		if err := proxywasm.SendHttpResponse(uint32(d.Status), d.Headers, d.Body, -1); err != nil {
			proxywasm.LogErrorf("sending local response: %v", err)
		}
		return types.ActionPause
	}
	return types.ActionContinue
}

func setStatic(d Decision) {
	if err := proxywasm.SetProperty(propStatic, []byte(d.Mount)); err != nil {
		proxywasm.LogErrorf("%s: setting wedge.static: %v", d.Route.Name, err)
	}
	if err := proxywasm.SetProperty(propStaticPath, []byte(d.StaticPath)); err != nil {
		proxywasm.LogErrorf("%s: setting wedge.static_path: %v", d.Route.Name, err)
	}
}

func (c *httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	if c.route != nil && c.route.Action == ActUpstream {
		editFields(c.route.RespEdits, proxywasm.RemoveHttpResponseHeader, proxywasm.ReplaceHttpResponseHeader, proxywasm.AddHttpResponseHeader)
	}
	if c.r.HasInternal() {
		if xa, err := proxywasm.GetHttpResponseHeader("x-accel-redirect"); err == nil && xa != "" {
			if d := c.r.Accel(&c.req, xa); d.Action == ActStatic {
				setStatic(d)
			} else {
				proxywasm.LogWarnf("X-Accel-Redirect %q matches no internal route", xa)
			}
		}
	}
	return types.ActionContinue
}

// editFields applies e to the request's or the response's fields through
// that map's remove, replace and add calls: remove, then set, then add.
func editFields(e *HeaderEdits, remove func(string) error, replace, add func(string, string) error) {
	if e == nil {
		return
	}
	for _, n := range e.Remove {
		_ = remove(n)
	}
	for _, f := range e.set {
		_ = replace(f[0], f[1])
	}
	for _, f := range e.add {
		_ = add(f[0], f[1])
	}
}
