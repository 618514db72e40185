// Command compress is Wedge's built-in response compression, a proxy-wasm
// filter written with proxy-wasm-go-sdk. It holds the policy only: which
// responses are compressed, with which coding (gzip, br, zstd, negotiated
// from Accept-Encoding with q-values, RFC 9110 §12.5.3) and at which
// level. The bytes never cross guest memory: the filter asks the host to
// compress the buffered body with wedge_compress_response (sdk/README.md).
//
// In proxy_on_response_headers it decides (Policy.Decide), adds Vary:
// Accept-Encoding, and for a response it compresses asks the host first,
// then sets Content-Encoding, turns a strong ETag weak, and removes the
// fields the coding makes false: Content-Length (the host sets the new
// one), Accept-Ranges (ranges of the identity body would not match,
// nginx does the same), Content-MD5, Content-Digest and Repr-Digest. A
// host that cannot compress this response (a streamed one) refuses, and
// so does a Wedge without wedge_compress_response (NOT_FOUND): the fields
// are then left true.
//
// The configuration (Config; README.md in this directory) is checked in
// proxy_on_configure; a bad one fails it after logging the field and the
// reason, which Wedge shows in its start-up error.
//
// Build:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o plugins/compress/compress.wasm ./plugins/compress
package main

import (
	"encoding/json"
	"errors"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/wedgeproxy/wedge/sdk/go/wedge"
)

func main() {}

func init() { proxywasm.SetVMContext(&vmContext{}) }

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type pluginContext struct {
	types.DefaultPluginContext
	policy *Policy
}

// compressFunc is the host function that compresses the response body.
const compressFunc = "wedge_compress_response"

// warned is set once the VM logged that compressFunc failed.
var warned bool

func (p *pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
		proxywasm.LogErrorf("reading configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	pol, err := ParseConfig(data)
	if err != nil {
		proxywasm.LogError(err.Error())
		return types.OnPluginStartStatusFailed
	}
	p.policy = pol
	return types.OnPluginStartStatusOK
}

func (p *pluginContext) NewHttpContext(uint32) types.HttpContext {
	return &httpContext{policy: p.policy}
}

type httpContext struct {
	types.DefaultHttpContext
	policy *Policy
}

func (c *httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	resp, err := proxywasm.GetHttpResponseHeaders()
	if err != nil {
		proxywasm.LogWarnf("reading response headers: %v", err)
		return types.ActionContinue
	}
	req, err := proxywasm.GetHttpRequestHeaders()
	if err != nil {
		proxywasm.LogWarnf("reading request headers: %v", err)
		return types.ActionContinue
	}
	x := Exchange{Size: -1}
	x.Method, _ = lookup(req, ":method")
	status, _ := lookup(resp, ":status")
	x.Status = int(contentLength(status, true))
	x.Request, x.Response = req, resp
	x.Size = contentLength(lookup(x.Response, "content-length"))
	if x.Size < 0 && x.Method != "HEAD" {
		if n, err := wedge.ResponseSize(); err == nil {
			x.Size = n // the buffered length of a response without Content-Length
		}
	}
	d := c.policy.Decide(x)
	if d.Vary {
		if v, changed := mergeVary(values(x.Response, "vary")); changed {
			if err := proxywasm.ReplaceHttpResponseHeader("vary", v); err != nil {
				proxywasm.LogWarnf("setting vary: %v", err)
			}
		}
	}
	if d.Coding == "" {
		return types.ActionContinue // d.Why says why; not logged: formatting costs every response
	}
	if d.Body {
		ret, err := proxywasm.CallForeignFunction(compressFunc, c.policy.args[d.Coding])
		if err != nil {
			// NOT_FOUND: a host without the call. Send the response as it
			// is, and say so once per VM, not once per response.
			if !warned {
				warned = true
				proxywasm.LogWarnf("not compressing: %s: %v", compressFunc, err)
			}
			return types.ActionContinue
		}
		var answer struct {
			Refused string `json:"refused"`
		}
		if len(ret) > 0 && json.Unmarshal(ret, &answer) == nil && answer.Refused != "" {
			// a response the host cannot transform (streamed)
			proxywasm.LogDebugf("not compressing: %s", answer.Refused)
			return types.ActionContinue
		}
	}
	applyFields(d, x.Response, x.Status == 304)
	return types.ActionContinue
}

// applyFields sets the response fields of a response compressed with
// d.Coding (or, for a 304, only those a 200 would carry).
func applyFields(d Decision, resp [][2]string, notModified bool) {
	if etag, ok := lookup(resp, "etag"); ok {
		if w, keep := weakETag(etag); !keep {
			logErr("removing etag", proxywasm.RemoveHttpResponseHeader("etag"))
		} else if w != etag {
			logErr("setting etag", proxywasm.ReplaceHttpResponseHeader("etag", w))
		}
	}
	if notModified {
		return
	}
	logErr("setting content-encoding", proxywasm.ReplaceHttpResponseHeader("content-encoding", d.Coding))
	for _, name := range [...]string{"content-length", "accept-ranges", "content-md5", "content-digest", "repr-digest"} {
		if has(resp, name) {
			logErr("removing "+name, proxywasm.RemoveHttpResponseHeader(name))
		}
	}
}

func logErr(what string, err error) {
	if err != nil {
		proxywasm.LogWarnf("%s: %v", what, err)
	}
}
