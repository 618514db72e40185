package pluginhost

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

// TestIsolation checks that a guest that traps, loops forever or grows its
// memory without bound fails only its own request, that its VM is
// replaced, and that the next 1,000 requests succeed.
func TestIsolation(t *testing.T) {
	type guest struct {
		name string
		spec func(t *testing.T) PluginSpec
	}
	wat := func(t *testing.T) PluginSpec {
		s := watSpec("filter", "filter")
		s.CallbackTimeout = 200 * time.Millisecond
		s.MemoryLimitBytes = 4 << 20
		return s
	}
	gog := func(t *testing.T) PluginSpec {
		s := goGuestSpec(t, "go")
		s.CallbackTimeout = 2 * time.Second
		s.MemoryLimitBytes = 16 << 20 // the guest starts with 2.5 MiB
		return s
	}
	tests := []struct {
		name    string
		spec    func(t *testing.T) PluginSpec
		path    string
		want    error
		reqs    int
		goodHdr string
	}{
		{"wat trap", wat, "/trap", ErrPluginFailed, 1000, "x-wat"},
		{"wat out of bounds", wat, "/oob", ErrPluginFailed, 1000, "x-wat"},
		{"wat endless loop", wat, "/loop", ErrCallbackTimeout, 1000, "x-wat"},
		{"wat memory without bound", wat, "/grow", ErrPluginFailed, 1000, "x-wat"},
		{"go panic", gog, "/panic", ErrPluginFailed, 1000, "x-go"},
		{"go endless loop", gog, "/loop", ErrCallbackTimeout, 1000, "x-go"},
		{"go memory without bound", gog, "/oom", ErrPluginFailed, 1000, "x-go"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := tt.spec(t)
			spec.PoolSize = 1
			h := newTestHost(t, Config{})
			c := newTestChain(t, h, spec)
			before := c.plugins[0].vmAt(0)

			r := runRequest(t, c, tt.path, "")
			if !errors.Is(r.reqOut.Err, tt.want) {
				t.Fatalf("err = %v, want %v", r.reqOut.Err, tt.want)
			}
			if !before.deadFlag.Load() {
				t.Error("the failed VM is still in service")
			}
			// The short deadline was for the failing request; a loaded
			// machine can stall a good callback that long.
			c.plugins[0].spec.CallbackTimeout = testCallbackTimeout
			for i := range tt.reqs {
				r := runRequest(t, c, "/", "")
				if r.reqOut.Err != nil || r.respOut.Err != nil || r.req.Header.Get(tt.goodHdr) != "1" {
					t.Fatalf("request %d after the failure: %+v %+v, header %v", i, r.reqOut, r.respOut, r.req.Header)
				}
			}
			after := c.plugins[0].vmAt(0)
			if after == nil || after == before {
				t.Errorf("VM not replaced: before %p, after %p", before, after)
			}
			h.metrics.hostMu.Lock()
			var failures uint64
			for k, n := range h.metrics.failures {
				if k[0] == spec.Name {
					failures += n
				}
			}
			h.metrics.hostMu.Unlock()
			if failures != 1 {
				t.Errorf("%d VM failures counted, want 1", failures)
			}
		})
	}
}

// TestIsolation_FailOpen checks that a failing fail_open plugin is skipped
// and the rest of the chain runs.
func TestIsolation_FailOpen(t *testing.T) {
	h := newTestHost(t, Config{})
	bad := watSpec("bad", "filter")
	bad.FailOpen = true
	good := watSpec("good", "filter")
	c := newTestChain(t, h, bad, good)
	r := runRequest(t, c, "/trap", "")
	if r.reqOut.Err == nil {
		// good traps too on /trap: fail closed for it.
		t.Fatal("the fail-closed plugin's trap did not fail the request")
	}
	if !errors.Is(r.reqOut.Err, ErrPluginFailed) {
		t.Errorf("err = %v", r.reqOut.Err)
	}

	good.FailOpen = true
	c2 := newTestChain(t, h, bad, good)
	r = runRequest(t, c2, "/trap", "")
	if r.reqOut.Err != nil || r.respOut.Err != nil {
		t.Errorf("fail_open plugins failed the request: %+v %+v", r.reqOut, r.respOut)
	}
}

// TestIsolation_OtherStreamsOnTheVM shows what happens to a stream whose
// context lived in a VM that another request made fail: it fails (or skips,
// with fail_open) that plugin with ErrVMLost, and a stream started after
// the failure runs on a new VM.
func TestIsolation_OtherStreamsOnTheVM(t *testing.T) {
	h := newTestHost(t, Config{})
	spec := watSpec("filter", "filter")
	spec.PoolSize = 1
	c := newTestChain(t, h, spec)
	ctx := context.Background()

	bystander := c.NewStream(nil)
	if out := bystander.OnRequestHeaders(ctx, newRequest("/")); out.Err != nil {
		t.Fatal(out.Err)
	}
	r := runRequest(t, c, "/trap", "")
	if !errors.Is(r.reqOut.Err, ErrPluginFailed) {
		t.Fatalf("err = %v", r.reqOut.Err)
	}
	out := bystander.OnResponseHeaders(ctx, newResponse())
	if !errors.Is(out.Err, ErrVMLost) {
		t.Errorf("bystander err = %v, want ErrVMLost", out.Err)
	}
	bystander.Finish(ctx)

	r = runRequest(t, c, "/", "")
	if r.reqOut.Err != nil || r.respOut.Err != nil {
		t.Errorf("a new stream failed: %+v %+v", r.reqOut, r.respOut)
	}
}

// TestIsolation_EndlessLoopLetsGCRun checks that a guest in an endless
// loop can be preempted by the Go scheduler: a garbage collection (which
// stops every goroutine) completes while the guest still loops. Without
// the instrumentation of internal/meter the collection would wait for the
// guest forever, since the watchdog that stops it cannot run either.
func TestIsolation_EndlessLoopLetsGCRun(t *testing.T) {
	h := newTestHost(t, Config{})
	spec := watSpec("filter", "filter")
	spec.PoolSize = 1
	// Long enough that only a collection blocked by the guest could
	// outlast it, however loaded the machine: the test stops the guest
	// itself once the collection is done.
	spec.CallbackTimeout = 60 * time.Second
	c := newTestChain(t, h, spec)
	v := c.plugins[0].vmAt(0)
	before := v.run.Load()

	done := make(chan result)
	go func() { done <- runRequest(t, c, "/loop", "") }()
	// Wait until one callback has been running for a while: the looping
	// proxy_on_request_headers, not the quick callbacks before it.
	var running uint64
	for {
		r := v.run.Load()
		if r != before && r&1 == 1 {
			time.Sleep(50 * time.Millisecond)
			if v.run.Load() == r {
				running = r
				break
			}
			continue
		}
		runtime.Gosched()
	}
	runtime.GC()
	if v.run.Load() != running {
		t.Errorf("the collection waited for the callback to end")
	}
	v.killNow() // as the watchdog would at the deadline
	if r := <-done; r.reqOut.Err == nil {
		t.Errorf("the stopped callback did not fail its request")
	}
}
