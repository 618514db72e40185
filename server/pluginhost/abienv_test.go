package pluginhost

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/wedgeproxy/wedge/server/pluginhost/internal/abi"
	"github.com/wedgeproxy/wedge/server/pluginhost/internal/fixture"
)

// abiEnv runs host calls one at a time through abi.wasm, whose exports
// call_<host call> make the host call with the arguments given, from a
// stream context of a request, as if a callback of phase cb were running.
type abiEnv struct {
	t  testing.TB
	h  *Host
	c  *Chain
	s  *Stream
	sp *streamPlugin
	cb abi.Callback

	scratch uint32 // next free byte of the test's scratch area
}

// scratchBase is where abiEnv.put writes: below the guest's heap (64 KiB),
// above its data.
const scratchBase = 0x1000

func newABIEnv(t testing.TB, cfg Config, spec PluginSpec) *abiEnv {
	t.Helper()
	h := newTestHost(t, cfg)
	if spec.Name == "" {
		spec.Name = "abi"
	}
	if spec.Wasm == nil {
		spec.Wasm = fixture.Wasm("abi")
	}
	if spec.PoolSize == 0 {
		spec.PoolSize = 1
	}
	c := newTestChain(t, h, spec)
	e := &abiEnv{t: t, h: h, c: c, cb: abi.CbRequestHeaders}
	e.newStream()
	return e
}

// newStream starts a stream with a request, a response and bodies, and
// makes its context in the plugin.
func (e *abiEnv) newStream() {
	e.t.Helper()
	s := e.c.NewStream(&StreamInfo{ID: "req-1", DefaultUpstream: "app"})
	s.req = newRequest("/a/b?x=1")
	s.resp = newResponse()
	s.reqBody = &memBody{b: []byte("hello world")}
	s.respBody = &memBody{b: []byte("response body")}
	s.phase = abi.CbRequestHeaders
	sp := &s.plugins[0]
	v, err := s.lock(sp, e.c.plugins[0])
	if err != nil {
		e.t.Fatalf("pinning: %v", err)
	}
	sp.id = v.newContextID()
	v.streams[sp.id] = sp
	_, err = v.callLocked(abi.CbContextCreate, testCallbackTimeout, sp.id, sp, sp.id, abi.RootContextID)
	v.mu.Unlock()
	if err != nil {
		e.t.Fatalf("proxy_on_context_create: %v", err)
	}
	e.s, e.sp = s, sp
	e.t.Cleanup(func() { s.Finish(context.Background()) })
}

func (e *abiEnv) vm() *vm { return e.sp.vm }

// call makes host call name with args and returns its status. err is the
// failure of the VM, if the call trapped.
func (e *abiEnv) call(name string, args ...uint64) (abi.Status, error) {
	e.t.Helper()
	v := e.vm()
	fn := v.mod.ExportedFunction("call_" + name)
	if fn == nil {
		e.t.Fatalf("abi.wasm exports no call_%s", name)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	e.s.active.Store(0)
	defer e.s.active.Store(-1)
	copy(v.stack[:], args)
	r, err := v.callFn(fn, e.cb, len(args), testCallbackTimeout, e.sp.id, e.sp)
	if err != nil {
		v.failLocked(err)
	}
	return abi.Status(uint32(r)), err
}

// must makes a host call that must answer want.
func (e *abiEnv) must(want abi.Status, name string, args ...uint64) {
	e.t.Helper()
	st, err := e.call(name, args...)
	if err != nil {
		e.t.Fatalf("%s: %v", name, err)
	}
	if st != want {
		e.t.Fatalf("%s = %v, want %v", name, st, want)
	}
}

// put copies b into the scratch area and returns its address.
func (e *abiEnv) put(b []byte) uint64 {
	e.t.Helper()
	p := scratchBase + e.scratch
	if !e.vm().mem.Write(p, b) {
		e.t.Fatalf("writing %d bytes at %#x", len(b), p)
	}
	e.scratch += uint32(len(b)+7) &^ 7
	if e.scratch > 0xe000 {
		e.t.Fatal("scratch area full")
	}
	return uint64(p)
}

func (e *abiEnv) str(s string) (uint64, uint64) { return e.put([]byte(s)), uint64(len(s)) }

// out reserves n result words and returns the address of the first.
func (e *abiEnv) out(n int) uint64 { return e.put(make([]byte, 4*n)) }

func (e *abiEnv) u32(p uint64) uint32 {
	e.t.Helper()
	x, ok := e.vm().mem.ReadUint32Le(uint32(p))
	if !ok {
		e.t.Fatalf("reading u32 at %#x", p)
	}
	return x
}

func (e *abiEnv) u64(p uint64) uint64 {
	e.t.Helper()
	x, ok := e.vm().mem.ReadUint64Le(uint32(p))
	if !ok {
		e.t.Fatalf("reading u64 at %#x", p)
	}
	return x
}

// result reads the (pointer, size) a host call returned at ret and ret+4.
func (e *abiEnv) result(ret uint64) []byte {
	e.t.Helper()
	ptr, size := e.u32(ret), e.u32(ret+4)
	if size == 0 {
		return nil
	}
	b, ok := e.vm().mem.Read(ptr, size)
	if !ok {
		e.t.Fatalf("result (%#x, %d) outside memory", ptr, size)
	}
	return append([]byte(nil), b...)
}

// serialize encodes pairs as a proxy-wasm map.
func serialize(pairs ...string) []byte {
	kv := 0
	for _, p := range pairs {
		kv += len(p)
	}
	b := make([]byte, abi.MapSize(len(pairs)/2, kv))
	w := abi.NewMapWriter(b, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		w.Add(pairs[i], pairs[i+1], false)
	}
	return b
}

// deserialize decodes a proxy-wasm map into name/value pairs.
func deserialize(t testing.TB, b []byte) []string {
	t.Helper()
	var out []string
	if err := abi.DecodeMap(b, func(k, v []byte) bool {
		out = append(out, string(k), string(v))
		return true
	}); err != nil {
		t.Fatalf("decoding map: %v", err)
	}
	return out
}

func le64(b []byte) int64 { return int64(binary.LittleEndian.Uint64(b)) }
