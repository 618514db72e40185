package wedge_test

import (
	"fmt"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/wedgeproxy/wedge/sdk/go/wedge"
)

// router sends /api/ requests to the "api" pool; in a plugin it is made
// by the PluginContext's NewHttpContext.
type router struct{ types.DefaultHttpContext }

func (*router) OnHttpRequestHeaders(int, bool) types.Action {
	if p, err := wedge.RequestURLPath(); err == nil && strings.HasPrefix(p, "/api/") {
		_ = wedge.SetUpstream("api")
	}
	return types.ActionContinue
}

// Example runs a routing filter in proxy-wasm-go-sdk's emulator, with the
// properties Wedge would give it, and reads back the pool it chose.
func Example() {
	opt := proxytest.NewEmulatorOption().
		WithHttpContext(func(uint32) types.HttpContext { return &router{} }).
		WithProperty([]string{"request", "url_path"}, []byte("/api/users")).
		WithProperty([]string{"wedge", "upstream"}, []byte("app"))
	host, reset := proxytest.NewHostEmulator(opt)
	defer reset()

	id := host.InitializeHttpContext()
	host.CallOnRequestHeaders(id, [][2]string{{":path", "/api/users"}}, true)
	pool, _ := host.GetProperty([]string{"wedge", "upstream"})
	fmt.Println("upstream:", string(pool))
	// Output: upstream: api
}
