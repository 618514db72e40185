package pluginhost

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/wedgeproxy/wedge/internal/langbuild"
	"github.com/wedgeproxy/wedge/server/internal/message"
)

// The example plugins in Rust (sdk/rust) and C (sdk/c), measured in the
// host: the size of the built .wasm, the time NewChain takes to compile
// and start one VM, and the cost of a request through each:
//
//	go test -run '^$' -bench 'BenchmarkExample' -count 5 ./server/pluginhost/
//
// They build the examples first (internal/langbuild), and skip without the
// Debian toolchains. Compare with BenchmarkStream's wat and go guests.

// exampleBench is one example plugin, built, with its configuration and
// the request of its benchmark.
type exampleBench struct {
	name   string
	wasm   []byte
	config string
	header message.Header // added to the request
}

func exampleBenches(b *testing.B) []exampleBench {
	b.Helper()
	root := langbuild.RepoRoot()
	dir := b.TempDir()
	rust := langbuild.Rust(b, filepath.Join(root, "examples", "rust-apikey"), dir)
	c := langbuild.C(b, filepath.Join(dir, "ratelimit.wasm"), filepath.Join(root, "examples", "c-ratelimit", "ratelimit.c"))
	read := func(p string) []byte {
		w, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		return w
	}
	return []exampleBench{
		{
			name:   "rust-apikey",
			wasm:   read(rust),
			config: `{"keys":{"alice":"k-alice-7f3a","ci":"k-ci-19be"}}`,
			header: message.Header{{Name: "X-Api-Key", Value: "k-ci-19be"}},
		},
		{
			// A bucket that never empties: every request reads and writes
			// shared data (get, CAS set).
			name:   "c-ratelimit",
			wasm:   read(c),
			config: `{"rate":1e12,"burst":1e12}`,
		},
	}
}

func (e exampleBench) spec() PluginSpec {
	return PluginSpec{Name: e.name, Wasm: e.wasm, Configuration: []byte(e.config), PoolSize: 1, CallbackTimeout: testCallbackTimeout}
}

// BenchmarkExampleStart is NewChain for one example and one VM: "cold"
// compiles the module in a new Host each time (no compilation cache, as
// Wedge's first start with plugin_cache: off), "cached" in one Host whose
// compiled code is kept, as a reload or a restart with plugin_cache. Each
// reports the module's size as wasm-bytes.
func BenchmarkExampleStart(b *testing.B) {
	ctx := context.Background()
	for _, e := range exampleBenches(b) {
		b.Run(e.name+"/cold", func(b *testing.B) {
			b.ReportMetric(float64(len(e.wasm)), "wasm-bytes")
			for b.Loop() {
				h, err := New(ctx, Config{Logger: quietLogger(b)})
				if err != nil {
					b.Fatal(err)
				}
				c, err := h.NewChain(ctx, []PluginSpec{e.spec()})
				if err != nil {
					b.Fatal(err)
				}
				c.Close(ctx)
				h.Close(ctx)
			}
		})
		b.Run(e.name+"/cached", func(b *testing.B) {
			b.ReportMetric(float64(len(e.wasm)), "wasm-bytes")
			h := newTestHost(b, Config{CompilationCacheDir: b.TempDir()})
			c := newTestChain(b, h, e.spec()) // fills the cache
			c.Close(ctx)
			for b.Loop() {
				c, err := h.NewChain(ctx, []PluginSpec{e.spec()})
				if err != nil {
					b.Fatal(err)
				}
				c.Close(ctx)
			}
		})
	}
}

// BenchmarkExampleStream is a request that each example lets through, with
// the phases the proxy runs for a GET answered with a 1 KiB body
// (BenchmarkStream's shape, plus proxy_on_request_body with an empty body
// when the plugin exports it, as the proxy calls it): rust-apikey checks a
// good key, removes it and sets X-Api-Client; c-ratelimit takes a token
// from its client's bucket in shared data.
func BenchmarkExampleStream(b *testing.B) {
	for _, e := range exampleBenches(b) {
		b.Run(e.name, func(b *testing.B) {
			h := newTestHost(b, Config{})
			c := newTestChain(b, h, e.spec())
			ctx := context.Background()
			info := &StreamInfo{ID: "bench", Source: netip.MustParseAddrPort("127.0.0.1:50000")}
			req, resp := newRequest("/bench"), newResponse()
			// The plugin edits the request's fields in place: start each
			// request from a copy of them.
			hdr := append(req.Header, e.header...)
			hbuf := make(message.Header, 0, len(hdr)+4)
			resp.ContentLength = 1024
			rhdr := resp.Header
			body := &fixedBody{buf: make([]byte, 0, 2048)}
			b.ReportAllocs()
			for b.Loop() {
				req.Header, resp.Header = append(hbuf[:0], hdr...), rhdr[:len(rhdr):len(rhdr)]
				body.buf = body.buf[:1024]
				s := c.NewStream(info)
				if out := s.OnRequestHeaders(ctx, req); out.Err != nil || out.Local != nil {
					b.Fatalf("request headers: %v, local response %+v", out.Err, out.Local)
				}
				if c.WantsRequestBody() {
					if out := s.OnRequestBody(ctx, req, nil); out.Err != nil {
						b.Fatal(out.Err)
					}
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
		})
	}
}
