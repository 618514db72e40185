package pluginhost_test

import (
	"context"
	"fmt"

	"github.com/wedgeproxy/wedge/server/internal/message"
	"github.com/wedgeproxy/wedge/server/pluginhost"
	"github.com/wedgeproxy/wedge/server/pluginhost/internal/fixture"
)

// Example runs one request through a chain of one plugin, filter.wat, which
// adds x-wat: 1 to requests and answers /local itself.
func Example() {
	ctx := context.Background()
	h, err := pluginhost.New(ctx, pluginhost.Config{})
	if err != nil {
		panic(err)
	}
	defer h.Close(ctx)

	chain, err := h.NewChain(ctx, []pluginhost.PluginSpec{{
		Name: "filter",
		Wasm: fixture.Wasm("filter"),
	}})
	if err != nil {
		panic(err)
	}
	defer chain.Close(ctx)

	for _, path := range []string{"/hello", "/local"} {
		s := chain.NewStream(&pluginhost.StreamInfo{ID: "1", DefaultUpstream: "app"})
		req := &message.Request{Method: "GET", Target: path, Host: "example.com", Scheme: "http", Proto: "HTTP/1.1"}
		out := s.OnRequestHeaders(ctx, req)
		switch {
		case out.Err != nil:
			fmt.Println("error:", out.Err)
		case out.Local != nil:
			fmt.Printf("%s: answered %d %q by the plugin\n", path, out.Local.Status, out.Local.Body)
		default:
			fmt.Printf("%s: to upstream %q with x-wat: %s\n", path, s.Upstream(), req.Header.Get("x-wat"))
		}
		s.Finish(ctx)
	}
	// Output:
	// /hello: to upstream "app" with x-wat: 1
	// /local: answered 403 "forbidden" by the plugin
}
