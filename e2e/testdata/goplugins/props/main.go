// Command props is a proxy-wasm-go-sdk filter for Wedge's end-to-end tests
// (e2e/plugins_test.go): it reads properties with GetProperty and
// GetPropertyMap in the request phase and echoes them in response fields
// named x-prop-<property> (dots as dashes); a property that cannot be read
// gives "error: <reason>".
//
// Read in the request phase: request.path, request.url_path,
// request.query, request.scheme, request.method, request.host,
// request.protocol, request.id, request.useragent, source.address,
// destination.address, plugin_name, plugin_root_id, plugin_vm_id, the
// x-probe entry of the request.headers map (as x-prop-request-headers-map),
// request.headers.x-probe (a path of three segments), and the integers
// (8 bytes little-endian, echoed in decimal) source.port and
// destination.port. Read in the response phase: upstream.address and the
// integers response.code and request.size. It also echoes the arguments of the header callbacks:
// x-request-eos and x-response-eos (end_of_stream), x-request-count
// (num_headers, and the length of GetHttpRequestHeaders, as "N/M").
//
// Build (the tests do this): GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o props.wasm .
package main

import (
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() { proxywasm.SetVMContext(&vmContext{}) }

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type pluginContext struct{ types.DefaultPluginContext }

func (*pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{} }

type httpContext struct {
	types.DefaultHttpContext
	seen [][2]string
}

var stringProps = [][]string{
	{"request", "path"},
	{"request", "url_path"},
	{"request", "query"},
	{"request", "scheme"},
	{"request", "method"},
	{"request", "host"},
	{"request", "protocol"},
	{"request", "id"},
	{"request", "useragent"},
	{"source", "address"},
	{"destination", "address"},
	{"plugin_name"},
	{"plugin_root_id"},
	{"plugin_vm_id"},
	{"request", "headers", "x-probe"},
}

func (h *httpContext) OnHttpRequestHeaders(numHeaders int, end bool) types.Action {
	hs, _ := proxywasm.GetHttpRequestHeaders()
	h.seen = append(h.seen,
		[2]string{"x-request-eos", strconv.FormatBool(end)},
		[2]string{"x-request-count", strconv.Itoa(numHeaders) + "/" + strconv.Itoa(len(hs))})
	for _, path := range stringProps {
		v, err := proxywasm.GetProperty(path)
		h.add(path, string(v), err)
	}
	h.addInt([]string{"source", "port"})
	h.addInt([]string{"destination", "port"})
	m, err := proxywasm.GetPropertyMap([]string{"request", "headers"})
	var probe string
	for _, kv := range m {
		if kv[0] == "x-probe" {
			probe = kv[1]
		}
	}
	h.add([]string{"request", "headers", "map"}, probe, err)
	return types.ActionContinue
}

func (h *httpContext) OnHttpResponseHeaders(_ int, end bool) types.Action {
	h.seen = append(h.seen, [2]string{"x-response-eos", strconv.FormatBool(end)})
	h.addInt([]string{"response", "code"})
	h.addInt([]string{"request", "size"})
	v, err := proxywasm.GetProperty([]string{"upstream", "address"})
	h.add([]string{"upstream", "address"}, string(v), err)
	for _, kv := range h.seen {
		if err := proxywasm.AddHttpResponseHeader(kv[0], kv[1]); err != nil {
			proxywasm.LogErrorf("adding %s: %v", kv[0], err)
		}
	}
	return types.ActionContinue
}

func (h *httpContext) add(path []string, v string, err error) {
	name := "x-prop-" + strings.ReplaceAll(strings.Join(path, "-"), "_", "-")
	if err != nil {
		v = "error: " + err.Error()
	}
	h.seen = append(h.seen, [2]string{name, v})
}

// addInt records an integer property.
func (h *httpContext) addInt(path []string) {
	v, err := proxywasm.GetProperty(path)
	var s string
	if err == nil && len(v) == 8 {
		s = strconv.FormatUint(binary.LittleEndian.Uint64(v), 10)
	} else if err == nil {
		s = "bad length " + strconv.Itoa(len(v))
	}
	h.add(path, s, err)
}
