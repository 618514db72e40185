package pluginhost

import (
	"context"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/server/pluginhost/internal/abi"
)

// benchEnv is a stream with a context in the plugin, for calling one
// callback or host call at a time.
func benchEnv(b *testing.B, spec PluginSpec) *abiEnv {
	spec.PoolSize = 1
	e := newABIEnv(b, Config{}, spec)
	e.s.req = newRequest("/bench")
	return e
}

// callback runs callback cb of the stream's context once.
func (e *abiEnv) callback(b *testing.B, cb abi.Callback, a1, a2 uint32) {
	v := e.vm()
	v.mu.Lock()
	e.s.active.Store(0)
	_, err := v.callLocked(cb, time.Second, e.sp.id, e.sp, e.sp.id, a1, a2)
	e.s.active.Store(-1)
	v.mu.Unlock()
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCallback_Wat is one proxy_on_request_headers of a guest that
// does nothing in it.
func BenchmarkCallback_Wat(b *testing.B) {
	e := benchEnv(b, PluginSpec{})
	b.ReportAllocs()
	for b.Loop() {
		e.callback(b, abi.CbRequestHeaders, 6, 1)
	}
}

// BenchmarkHostCall_Wat is one call into the guest that makes one
// proxy_get_header_map_value host call (which calls back into the guest's
// allocator); subtract BenchmarkCallback_Wat for the host call alone.
func BenchmarkHostCall_Wat(b *testing.B) {
	e := benchEnv(b, PluginSpec{})
	kp, kn := e.str(":path")
	ret := e.out(2)
	v := e.vm()
	fn := v.mod.ExportedFunction("call_proxy_get_header_map_value")
	reset := v.mod.ExportedFunction("reset_heap")
	b.ReportAllocs()
	for b.Loop() {
		v.mu.Lock()
		e.s.active.Store(0)
		v.stack[0], v.stack[1], v.stack[2], v.stack[3], v.stack[4] = uint64(abi.MapHTTPRequestHeaders), kp, kn, ret, ret+4
		st, err := v.callFn(fn, abi.CbRequestHeaders, 5, time.Second, e.sp.id, e.sp)
		if err == nil {
			_, err = v.callFn(reset, abi.CbRequestHeaders, 0, time.Second, e.sp.id, e.sp)
		}
		e.s.active.Store(-1)
		v.mu.Unlock()
		if err != nil || st != 0 {
			b.Fatal(st, err)
		}
	}
}

// BenchmarkCallback_Go is one proxy_on_request_trailers of the Go guest,
// which proxy-wasm-go-sdk answers without a host call.
func BenchmarkCallback_Go(b *testing.B) {
	e := benchEnv(b, goGuestSpec(b, "go"))
	b.ReportAllocs()
	for b.Loop() {
		e.callback(b, abi.CbRequestTrailers, 0, 0)
	}
}

// BenchmarkHostCall_Go is one proxy_on_request_headers of the Go guest on
// /bench: the callback plus one host call (proxy_get_header_map_value for
// :path, with its allocation in the guest); subtract BenchmarkCallback_Go.
func BenchmarkHostCall_Go(b *testing.B) {
	e := benchEnv(b, goGuestSpec(b, "go"))
	b.ReportAllocs()
	for b.Loop() {
		e.callback(b, abi.CbRequestHeaders, 6, 1)
	}
}

// BenchmarkStream_Wat is a whole request through filter.wat: stream,
// request headers (two host calls), response headers (one), finish (log,
// done, delete).
func BenchmarkStream_Wat(b *testing.B) {
	h := newTestHost(b, Config{})
	spec := watSpec("filter", "filter")
	spec.PoolSize = 1
	c := newTestChain(b, h, spec)
	benchStream(b, c)
}

// BenchmarkStream_Go is BenchmarkStream_Wat with the Go guest.
func BenchmarkStream_Go(b *testing.B) {
	h := newTestHost(b, Config{})
	spec := goGuestSpec(b, "go")
	spec.PoolSize = 1
	c := newTestChain(b, h, spec)
	benchStream(b, c)
}

func benchStream(b *testing.B, c *Chain) {
	ctx := context.Background()
	info := &StreamInfo{ID: "bench"}
	req, resp := newRequest("/"), newResponse()
	hdr, rhdr := req.Header, resp.Header
	b.ReportAllocs()
	for b.Loop() {
		req.Header, resp.Header = hdr[:len(hdr):len(hdr)], rhdr[:len(rhdr):len(rhdr)]
		s := c.NewStream(info)
		if out := s.OnRequestHeaders(ctx, req); out.Err != nil {
			b.Fatal(out.Err)
		}
		if out := s.OnResponseHeaders(ctx, resp); out.Err != nil {
			b.Fatal(out.Err)
		}
		s.Finish(ctx)
	}
}
