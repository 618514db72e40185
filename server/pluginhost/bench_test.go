package pluginhost

import (
	"context"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/server/pluginhost/internal/abi"
)

// The benchmarks below run each case for the .wat fixtures (hand-written,
// no runtime) and for the Go guest (proxy-wasm-go-sdk, a Go runtime inside):
//
//	go test -run '^$' -bench . -count 10 ./server/pluginhost/
//
// BenchmarkCallback is the cost of one call into a guest, BenchmarkHostCall
// that of one callback making one host call (subtract BenchmarkCallback
// for the host call alone), BenchmarkStream that of a whole request.

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

// BenchmarkCallback is one callback into a guest that does nothing in it:
// proxy_on_request_headers of abi.wat; proxy_on_request_trailers of the Go
// guest, which proxy-wasm-go-sdk answers without a host call.
func BenchmarkCallback(b *testing.B) {
	b.Run("wat", func(b *testing.B) {
		e := benchEnv(b, PluginSpec{})
		b.ReportAllocs()
		for b.Loop() {
			e.callback(b, abi.CbRequestHeaders, 6, 1)
		}
	})
	b.Run("go", func(b *testing.B) {
		e := benchEnv(b, goGuestSpec(b, "go"))
		b.ReportAllocs()
		for b.Loop() {
			e.callback(b, abi.CbRequestTrailers, 0, 0)
		}
	})
}

// BenchmarkHostCall is one callback that makes one
// proxy_get_header_map_value host call for :path, which calls back into
// the guest's allocator for the value: abi.wat's
// call_proxy_get_header_map_value, and the Go guest's
// proxy_on_request_headers on /bench. Subtract BenchmarkCallback for the
// host call alone.
func BenchmarkHostCall(b *testing.B) {
	b.Run("wat", func(b *testing.B) {
		e := benchEnv(b, PluginSpec{})
		kp, kn := e.str(":path")
		ret := e.out(2)
		v := e.vm()
		fn := v.mod.ExportedFunction("call_proxy_get_header_map_value")
		reset := v.mod.ExportedFunction("reset_heap")
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			v.mu.Lock()
			e.s.active.Store(0)
			v.stack[0], v.stack[1], v.stack[2], v.stack[3], v.stack[4] = uint64(abi.MapHTTPRequestHeaders), kp, kn, ret, ret+4
			st, err := v.callFn(fn, abi.CbRequestHeaders, 5, time.Second, e.sp.id, e.sp)
			if i++; i%4096 == 0 && err == nil {
				// The bump allocator keeps every value; rewind it now and
				// then, outside the measured shape.
				_, err = v.callFn(reset, abi.CbRequestHeaders, 0, time.Second, e.sp.id, e.sp)
			}
			e.s.active.Store(-1)
			v.mu.Unlock()
			if err != nil || st != 0 {
				b.Fatal(st, err)
			}
		}
	})
	b.Run("go", func(b *testing.B) {
		e := benchEnv(b, goGuestSpec(b, "go"))
		b.ReportAllocs()
		for b.Loop() {
			e.callback(b, abi.CbRequestHeaders, 6, 1)
		}
	})
}

// BenchmarkStream is a whole request through one plugin, the phases the
// proxy runs for a GET answered with a 1 KiB body: NewStream,
// OnRequestHeaders, OnResponseHeaders, OnResponseBody, Finish (log, done,
// delete). filter.wat adds a request field, a response field and prepends
// to the body, and counts the request in proxy_on_log; the Go guest, on
// /bench, reads :path, adds a response field and counts the request in
// proxy_on_done.
func BenchmarkStream(b *testing.B) {
	b.Run("wat", func(b *testing.B) {
		h := newTestHost(b, Config{})
		spec := watSpec("filter", "filter")
		spec.PoolSize = 1
		benchStream(b, newTestChain(b, h, spec), "/")
	})
	b.Run("go", func(b *testing.B) {
		h := newTestHost(b, Config{})
		spec := goGuestSpec(b, "go")
		spec.PoolSize = 1
		benchStream(b, newTestChain(b, h, spec), "/bench")
	})
}

func benchStream(b *testing.B, c *Chain, path string) {
	ctx := context.Background()
	info := &StreamInfo{ID: "bench"}
	req, resp := newRequest(path), newResponse()
	resp.ContentLength = 1024
	hdr, rhdr := req.Header, resp.Header
	body := &fixedBody{buf: make([]byte, 0, 2048)}
	b.ReportAllocs()
	for b.Loop() {
		req.Header, resp.Header = hdr[:len(hdr):len(hdr)], rhdr[:len(rhdr):len(rhdr)]
		body.buf = body.buf[:1024]
		s := c.NewStream(info)
		if out := s.OnRequestHeaders(ctx, req); out.Err != nil {
			b.Fatal(out.Err)
		}
		if out := s.OnResponseHeaders(ctx, resp); out.Err != nil {
			b.Fatal(out.Err)
		}
		if c.WantsResponseBody() {
			if out := s.OnResponseBody(ctx, resp, body); out.Err != nil {
				b.Fatal(out.Err)
			}
		}
		s.Finish(ctx)
	}
}

// fixedBody is a Body in a buffer that edits in place while it has room,
// so that a benchmark counts the host's allocations, not the body's.
type fixedBody struct{ buf []byte }

func (f *fixedBody) Len() int64 { return int64(len(f.buf)) }

func (f *fixedBody) ReadAt(p []byte, off int64) (int, error) {
	return (&memBody{b: f.buf}).ReadAt(p, off)
}

func (f *fixedBody) Replace(start, length int64, data []byte) error {
	n := len(f.buf) - int(length) + len(data)
	tail := f.buf[start+length:]
	if n > cap(f.buf) {
		nb := make([]byte, n, 2*n)
		copy(nb, f.buf[:start])
		copy(nb[start:], data)
		copy(nb[int(start)+len(data):], tail)
		f.buf = nb
		return nil
	}
	old := len(f.buf)
	f.buf = f.buf[:max(n, old)]
	copy(f.buf[int(start)+len(data):], tail)
	copy(f.buf[start:], data)
	f.buf = f.buf[:n]
	return nil
}
