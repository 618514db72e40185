package pluginhost

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/wedgeproxy/wedge/server/pluginhost/internal/abi"
)

// fuzzCalls are the host calls that take guest pointers or lengths: every
// proxy_* call abi.wasm re-exports, with its arity.
func fuzzCalls() []hostCall {
	var out []hostCall
	for _, hc := range hostCalls {
		if strings.HasPrefix(hc.name, "proxy_") {
			out = append(out, hc)
		}
	}
	return out
}

// FuzzHostCall makes one host call with arbitrary arguments over guest
// memory holding arbitrary bytes, from a stream context with a request, a
// response and bodies. Whatever the guest passes, the host must answer a
// status or trap that VM; a Go runtime error (index out of range, nil
// dereference) recovered by wazero is a host bug and fails the fuzzer.
func FuzzHostCall(f *testing.F) {
	calls := fuzzCalls()
	const base = scratchBase
	for i, hc := range calls {
		// Arguments pointing into the data, with plausible sizes.
		f.Add(uint8(i), serialize(":path", "/x", "x-a", "1"), uint32(abi.MapHTTPRequestHeaders), uint32(base), uint32(8),
			uint32(base+16), uint32(4), uint32(base+64), uint32(base+68), uint32(0))
		// And garbage.
		f.Add(uint8(i), []byte("\xff\xff\xff\xff\x00"), uint32(1<<31), uint32(0xffffffff), uint32(0xfffffff0),
			uint32(7), uint32(1<<20), uint32(base), uint32(0), uint32(3))
		_ = hc
	}
	e := newABIEnv(f, Config{Dispatcher: &fakeDispatcher{status: 200}, ForeignFunctions: map[string]ForeignFunction{
		"wedge_echo": func(_ *ForeignCall, b []byte) ([]byte, error) { return b, nil },
	}}, PluginSpec{MemoryLimitBytes: 1 << 20})
	f.Fuzz(func(t *testing.T, which uint8, mem []byte, a0, a1, a2, a3, a4, a5, a6, a7 uint32) {
		e.t = t
		hc := calls[int(which)%len(calls)]
		if len(mem) > 0x8000 {
			mem = mem[:0x8000]
		}
		if v := e.vm(); v.deadFlag.Load() {
			e.newStream()
		}
		e.s.req = newRequest("/a/b?x=1")
		e.s.resp = newResponse()
		e.s.reqBody = &memBody{b: []byte("hello world")}
		e.s.respBody = &memBody{b: []byte("response body")}
		v := e.vm()
		if !v.mem.Write(scratchBase, mem) {
			t.Fatal("writing guest memory")
		}
		raw := [...]uint32{a0, a1, a2, a3, a4, a5, a6, a7, a0 ^ a1, a2 ^ a3, a4 ^ a5, a6 ^ a7}
		args := make([]uint64, len(hc.params))
		for i := range args {
			args[i] = uint64(raw[i%len(raw)])
		}
		_, err := e.call(hc.name, args...)
		if err != nil {
			var re runtime.Error
			if errors.As(err, &re) {
				t.Fatalf("%s%v: the host panicked: %v", hc.name, args, err)
			}
			return // the VM trapped and was replaced
		}
		v.mu.Lock()
		_, err = v.callFn(v.mod.ExportedFunction("reset_heap"), abi.CbRequestHeaders, 0, testCallbackTimeout, e.sp.id, e.sp)
		v.mu.Unlock()
		if err != nil {
			t.Fatalf("reset_heap: %v", err)
		}
	})
}
