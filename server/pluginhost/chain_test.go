package pluginhost

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/server/pluginhost/internal/fixture"
)

func TestChain_Pinning(t *testing.T) {
	h := newTestHost(t, Config{})
	spec := watSpec("filter", "filter")
	spec.PoolSize = 3
	c := newTestChain(t, h, spec)
	ctx := context.Background()

	var streams []*Stream
	seen := map[*vm]bool{}
	for range 3 {
		s := c.NewStream(nil)
		if out := s.OnRequestHeaders(ctx, newRequest("/")); out.Err != nil {
			t.Fatal(out.Err)
		}
		streams = append(streams, s)
		seen[s.plugins[0].vm] = true
	}
	if len(seen) != 3 {
		t.Errorf("3 concurrent streams used %d VMs, want 3 (one each)", len(seen))
	}
	for _, s := range streams {
		v := s.plugins[0].vm
		if out := s.OnResponseHeaders(ctx, newResponse()); out.Err != nil {
			t.Fatal(out.Err)
		}
		if s.plugins[0].vm != v {
			t.Error("a stream moved to another VM")
		}
		s.Finish(ctx)
		if got := v.pinned.Load(); got != 0 {
			t.Errorf("VM still has %d pinned streams after Finish", got)
		}
	}
	// A fourth stream reuses a VM: the pool is full.
	s := c.NewStream(nil)
	s.OnRequestHeaders(ctx, newRequest("/"))
	if !seen[s.plugins[0].vm] {
		t.Error("a new VM was made beyond PoolSize")
	}
	s.Finish(ctx)
}

// TestChain_Hammer runs many concurrent requests, some pausing on HTTP
// calls and some answered locally, through pools smaller than the
// concurrency, with a ticking plugin alongside. Run it with -race.
func TestChain_Hammer(t *testing.T) {
	d := &fakeDispatcher{status: 200, delay: time.Millisecond}
	h := newTestHost(t, Config{Dispatcher: d})
	a, b := watSpec("a", "filter"), watSpec("b", "filter")
	a.PoolSize, b.PoolSize = 2, 3
	bg := PluginSpec{Name: "bg", Wasm: fixture.Wasm("background"), PoolSize: 2}
	c := newTestChain(t, h, a, bg, b)

	const workers, perWorker = 8, 150
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range perWorker {
				path := []string{"/", "/", "/pause", "/local", "/upstream"}[rnd.IntN(5)]
				r := runRequest(t, c, path, "body")
				err := r.reqOut.Err
				if err == nil {
					err = r.respOut.Err
				}
				switch {
				case err != nil:
					errs <- fmt.Errorf("worker %d request %d %s: %w", w, i, path, err)
					return
				case path == "/local" && r.reqOut.Local == nil:
					errs <- fmt.Errorf("%s: no local response", path)
					return
				case path == "/pause" && r.req.Header.Count("x-auth-status") != 2:
					errs <- fmt.Errorf("%s: header %v", path, r.req.Header)
					return
				case path == "/" && (r.reqBody != "body!!" || r.respBody != "!!content"):
					errs <- fmt.Errorf("%s: bodies %q %q", path, r.reqBody, r.respBody)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, p := range c.plugins {
		p.mu.Lock()
		for i, v := range p.slots {
			if v != nil && v.pinned.Load() != 0 {
				t.Errorf("%s VM %d: %d streams still pinned", p.name, i, v.pinned.Load())
			}
		}
		p.mu.Unlock()
	}
}

// TestChain_HammerWithTraps mixes trapping requests into concurrent load:
// only they, and streams that had a context in the VM they broke, fail;
// every request started afterwards on a fresh VM succeeds.
func TestChain_HammerWithTraps(t *testing.T) {
	h := newTestHost(t, Config{})
	spec := watSpec("filter", "filter")
	spec.PoolSize = 3
	c := newTestChain(t, h, spec)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var traps, lost, ok int
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				path := "/"
				if (i+w)%40 == 0 {
					path = "/trap"
				}
				r := runRequest(t, c, path, "")
				err := r.reqOut.Err
				if err == nil {
					err = r.respOut.Err
				}
				mu.Lock()
				switch {
				case path == "/trap" && errors.Is(err, ErrPluginFailed):
					traps++
				case path == "/trap":
					t.Errorf("trap request: %v", err)
				case err == nil:
					ok++
				case errors.Is(err, ErrVMLost):
					lost++
				default:
					t.Errorf("request %s: %v", path, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d ok, %d trapped, %d lost their VM", ok, traps, lost)
	for i := range 100 {
		if r := runRequest(t, c, "/", ""); r.reqOut.Err != nil || r.respOut.Err != nil {
			t.Fatalf("request %d after the load: %+v %+v", i, r.reqOut, r.respOut)
		}
	}
}

func TestChain_CloseDrains(t *testing.T) {
	h := newTestHost(t, Config{})
	c, err := h.NewChain(context.Background(), []PluginSpec{watSpec("filter", "filter")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := c.NewStream(nil)
	s.OnRequestHeaders(ctx, newRequest("/"))

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Close(short) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close with an open stream and a short context = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	s.Finish(ctx) // after the VMs are gone: no callbacks, no panic

	c2, err := h.NewChain(ctx, []PluginSpec{watSpec("filter", "filter")})
	if err != nil {
		t.Fatal(err)
	}
	s2 := c2.NewStream(nil)
	s2.OnRequestHeaders(ctx, newRequest("/"))
	done2 := make(chan error, 1)
	go func() { done2 <- c2.Close(ctx) }()
	select {
	case err := <-done2:
		t.Fatalf("Close returned before the stream finished: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	s2.OnResponseHeaders(ctx, newResponse())
	s2.Finish(ctx)
	if err := <-done2; err != nil {
		t.Errorf("Close = %v", err)
	}
}

func TestChain_TicksAndQueues(t *testing.T) {
	h := newTestHost(t, Config{})
	newTestChain(t, h, PluginSpec{Name: "bg", Wasm: fixture.Wasm("background"), PoolSize: 1})
	deadline := time.Now().Add(10 * time.Second)
	for {
		ticks, _, _ := h.shared.get([]byte("ticks"))
		deq, _, _ := h.shared.get([]byte("dequeued"))
		last, _, _ := h.shared.get([]byte("last"))
		if len(ticks) == 4 && len(deq) == 4 && binary.LittleEndian.Uint32(ticks) >= 3 &&
			binary.LittleEndian.Uint32(deq) >= 1 && string(last) == "job" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ticks %v, dequeued %v, last %q", ticks, deq, last)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHost_NewChainErrors(t *testing.T) {
	h := newTestHost(t, Config{})
	tests := []struct {
		name string
		spec PluginSpec
		want string
	}{
		{"not wasm", PluginSpec{Name: "p", Wasm: []byte("nope")}, "compiling"},
		{"no name", PluginSpec{Wasm: fixture.Wasm("filter")}, "no name"},
		{"no context create", PluginSpec{Name: "p", Wasm: fixture.Wasm("broken_noctx")}, "proxy_on_context_create"},
		{"bad signature", PluginSpec{Name: "p", Wasm: fixture.Wasm("broken_sig")}, "exports proxy_on_request_headers as (i32, i32) -> (i32)"},
		{"unknown import", PluginSpec{Name: "p", Wasm: fixture.Wasm("broken_import")}, "imports env.proxy_teleport"},
		{"mistyped import", PluginSpec{Name: "p", Wasm: fixture.Wasm("broken_importsig")}, "imports env.proxy_log as (i32) -> (i32)"},
		{"ABI v0.1.0", PluginSpec{Name: "p", Wasm: fixture.Wasm("broken_v010")}, "v0.1.0"},
		{"no allocator", PluginSpec{Name: "p", Wasm: fixture.Wasm("broken_noalloc")}, "no allocator"},
		{"configure fails", PluginSpec{Name: "p", Wasm: fixture.Wasm("broken_configure")}, "proxy_on_configure returned false"},
		{"start traps", PluginSpec{Name: "p", Wasm: fixture.Wasm("broken_start")}, "_initialize"},
		{"memory too big", PluginSpec{Name: "p", Wasm: fixture.Wasm("filter"), MemoryLimitBytes: 64 << 10}, "initial memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := h.NewChain(context.Background(), []PluginSpec{watSpec("fine", "filter"), tt.spec})
			if err == nil {
				c.Close(context.Background())
				t.Fatal("NewChain succeeded")
			}
			if !errors.Is(err, ErrInvalidPlugin) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v; want ErrInvalidPlugin mentioning %q", err, tt.want)
			}
			if tt.spec.Name != "" && !strings.Contains(err.Error(), `"p"`) {
				t.Errorf("err = %v; does not name the plugin", err)
			}
		})
	}
	_, err := h.NewChain(context.Background(), []PluginSpec{watSpec("dup", "filter"), watSpec("dup", "filter")})
	if err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate names: %v", err)
	}
}

// TestHost_ToolchainShapes loads guests shaped like the other SDKs'
// output: an Emscripten-style C++ guest (malloc, _start,
// emscripten_notify_memory_growth), a Rust-style one (_initialize, v0.1.0
// names kept for compatibility, WASI), and an AssemblyScript-style one
// (env.abort, malloc).
func TestHost_ToolchainShapes(t *testing.T) {
	h := newTestHost(t, Config{})
	for _, name := range []string{"shape_emscripten", "shape_rust", "shape_assemblyscript"} {
		t.Run(name, func(t *testing.T) {
			c := newTestChain(t, h, PluginSpec{Name: name, Wasm: fixture.Wasm(name), PoolSize: 1})
			r := runRequest(t, c, "/", "")
			if r.reqOut.Err != nil || r.req.Header.Get("x-shape") != "1" {
				t.Errorf("%+v, header %v", r.reqOut, r.req.Header)
			}
		})
	}
}

func TestHost_CompilationCache(t *testing.T) {
	dir := t.TempDir()
	h := newTestHost(t, Config{CompilationCacheDir: dir + "/cache"})
	newTestChain(t, h, watSpec("filter", "filter"))
	entries, err := os.ReadDir(dir + "/cache")
	if err != nil || len(entries) == 0 {
		t.Errorf("compilation cache directory: %v, %d entries", err, len(entries))
	}
}
