package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/wedgeproxy/wedge/server/internal/message"
	"github.com/wedgeproxy/wedge/server/pluginhost/internal/abi"
)

// hostCall is one function of the "env" host module.
type hostCall struct {
	name    string
	params  []api.ValueType
	results []api.ValueType
	fn      api.GoModuleFunc
}

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

func i32n(n int) []api.ValueType { return i32s(n) }

// status is the usual result list of a proxy_* host call.
var status = []api.ValueType{i32}

// hostCalls lists every function of "env": all proxy-wasm v0.2.1 host
// calls (spec "Functions exposed by the host"), the v0.1.0 names SDKs
// still import (proxy_get_configuration, proxy_continue_request,
// proxy_continue_response, proxy_clear_route_cache), and shims toolchains
// import (AssemblyScript's abort and seed, Emscripten's
// emscripten_notify_memory_growth). A guest importing anything else fails
// to load.
var hostCalls []hostCall

func init() {
	hostCalls = []hostCall{
		{"proxy_log", i32n(3), status, hLog},
		{"proxy_get_log_level", i32n(1), status, hGetLogLevel},
		{"proxy_get_current_time_nanoseconds", i32n(1), status, hGetCurrentTime},
		{"proxy_set_tick_period_milliseconds", i32n(1), status, hSetTickPeriod},
		{"proxy_get_property", i32n(4), status, hGetProperty},
		{"proxy_set_property", i32n(4), status, hSetProperty},
		{"proxy_get_header_map_value", i32n(5), status, hGetHeaderMapValue},
		{"proxy_add_header_map_value", i32n(5), status, hAddHeaderMapValue},
		{"proxy_replace_header_map_value", i32n(5), status, hReplaceHeaderMapValue},
		{"proxy_remove_header_map_value", i32n(3), status, hRemoveHeaderMapValue},
		{"proxy_get_header_map_pairs", i32n(3), status, hGetHeaderMapPairs},
		{"proxy_set_header_map_pairs", i32n(3), status, hSetHeaderMapPairs},
		{"proxy_get_header_map_size", i32n(2), status, hGetHeaderMapSize},
		{"proxy_get_buffer_bytes", i32n(5), status, hGetBufferBytes},
		{"proxy_set_buffer_bytes", i32n(5), status, hSetBufferBytes},
		{"proxy_get_buffer_status", i32n(3), status, hGetBufferStatus},
		{"proxy_send_local_response", i32n(8), status, hSendLocalResponse},
		{"proxy_continue_stream", i32n(1), status, hContinueStream},
		{"proxy_close_stream", i32n(1), status, hCloseStream},
		{"proxy_get_status", i32n(3), status, hGetStatus},
		{"proxy_get_shared_data", i32n(5), status, hGetSharedData},
		{"proxy_set_shared_data", i32n(5), status, hSetSharedData},
		{"proxy_register_shared_queue", i32n(3), status, hRegisterSharedQueue},
		{"proxy_resolve_shared_queue", i32n(5), status, hResolveSharedQueue},
		{"proxy_enqueue_shared_queue", i32n(3), status, hEnqueueSharedQueue},
		{"proxy_dequeue_shared_queue", i32n(3), status, hDequeueSharedQueue},
		{"proxy_define_metric", i32n(4), status, hDefineMetric},
		{"proxy_increment_metric", []api.ValueType{i32, i64}, status, hIncrementMetric},
		{"proxy_record_metric", []api.ValueType{i32, i64}, status, hRecordMetric},
		{"proxy_get_metric", i32n(2), status, hGetMetric},
		{"proxy_http_call", i32n(10), status, hHTTPCall},
		{"proxy_grpc_call", i32n(12), status, hUnimplemented},
		{"proxy_grpc_stream", i32n(9), status, hUnimplemented},
		{"proxy_grpc_send", i32n(4), status, hUnimplemented},
		{"proxy_grpc_cancel", i32n(1), status, hUnimplemented},
		{"proxy_grpc_close", i32n(1), status, hUnimplemented},
		{"proxy_done", nil, status, hDone},
		{"proxy_set_effective_context", i32n(1), status, hSetEffectiveContext},
		{"proxy_call_foreign_function", i32n(6), status, hCallForeignFunction},
		// ABI v0.1.0 names still imported by SDKs built for both.
		{"proxy_get_configuration", i32n(2), status, hGetConfiguration},
		{"proxy_continue_request", nil, status, hContinueRequest},
		{"proxy_continue_response", nil, status, hContinueRequest},
		{"proxy_clear_route_cache", nil, status, hOK},
		// Toolchain shims.
		{"abort", i32n(4), nil, hAbort},
		{"seed", nil, []api.ValueType{api.ValueTypeF64}, hSeed},
		{"emscripten_notify_memory_growth", i32n(1), nil, hNop},
	}
}

// enter returns the VM of a host call, refusing calls made from inside
// the guest's allocator while the host is copying into it, and calls from
// a guest whose VM was stopped.
func enter(ctx context.Context) *vm {
	v := vmFrom(ctx)
	if v.inMalloc {
		panic(errReentrant)
	}
	if v.killed.Load() {
		panic(errStopped)
	}
	return v
}

func u32(x uint64) uint32 { return uint32(x) }

func ret(stack []uint64, st abi.Status) { stack[0] = uint64(st) }

func hOK(_ context.Context, _ api.Module, stack []uint64) { ret(stack, abi.StatusOK) }

func hNop(context.Context, api.Module, []uint64) {}

func hUnimplemented(ctx context.Context, _ api.Module, stack []uint64) {
	enter(ctx)
	ret(stack, abi.StatusUnimplemented)
}

func hAbort(ctx context.Context, _ api.Module, stack []uint64) {
	panic(fmt.Errorf("guest called abort at line %d, column %d", u32(stack[2]), u32(stack[3])))
}

func hSeed(_ context.Context, _ api.Module, stack []uint64) {
	stack[0] = api.EncodeF64(float64(mrand.Uint64()))
}

// --- logging and clocks -----------------------------------------------------

func slogLevel(l uint32) slog.Level {
	switch l {
	case abi.LogTrace:
		return slog.LevelDebug - 4
	case abi.LogDebug:
		return slog.LevelDebug
	case abi.LogInfo:
		return slog.LevelInfo
	case abi.LogWarn:
		return slog.LevelWarn
	case abi.LogError:
		return slog.LevelError
	}
	return slog.LevelError + 4
}

func hLog(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	level, ptr, size := u32(stack[0]), u32(stack[1]), u32(stack[2])
	if level > abi.LogCritical {
		ret(stack, abi.StatusBadArgument)
		return
	}
	msg, ok := v.read(ptr, size)
	if !ok {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	lvl := slogLevel(level)
	if lvl >= slog.LevelError {
		v.lastErr = string(msg)
	}
	if bg := context.Background(); v.log.Enabled(bg, lvl) {
		if sp := v.effSP; sp != nil && sp.s.requestID() != "" {
			v.log.Log(bg, lvl, string(msg), "vm", v.slot, "request", sp.s.requestID())
		} else {
			v.log.Log(bg, lvl, string(msg), "vm", v.slot)
		}
	}
	ret(stack, abi.StatusOK)
}

func hGetLogLevel(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	level := abi.LogCritical
	for l := abi.LogTrace; l < abi.LogCritical; l++ {
		if v.log.Enabled(context.Background(), slogLevel(l)) {
			level = l
			break
		}
	}
	if !v.writeU32(u32(stack[0]), level) {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	ret(stack, abi.StatusOK)
}

func hGetCurrentTime(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	if !v.writeU64(u32(stack[0]), uint64(time.Now().UnixNano())) {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	ret(stack, abi.StatusOK)
}

func hSetTickPeriod(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	d := time.Duration(u32(stack[0])) * time.Millisecond
	if d > 0 && d < minTickPeriod {
		d = minTickPeriod
	}
	v.tick = d
	select {
	case v.kick <- struct{}{}:
	default:
	}
	ret(stack, abi.StatusOK)
}

// --- header maps ------------------------------------------------------------

func hGetHeaderMapValue(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	mapID, kp, ks, rp, rs := u32(stack[0]), u32(stack[1]), u32(stack[2]), u32(stack[3]), u32(stack[4])
	hm, st := v.headerMap(mapID)
	if st != abi.StatusOK {
		ret(stack, st)
		return
	}
	key, ok := v.read(kp, ks)
	if !ok || !v.outPtrs(rp, rs) {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	val, found := hm.get(key)
	if !found {
		ret(stack, abi.StatusNotFound)
		return
	}
	if !v.copyOutString(val, rp, rs) {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	ret(stack, abi.StatusOK)
}

func hAddHeaderMapValue(ctx context.Context, _ api.Module, stack []uint64) {
	setHeader(ctx, stack, headerMap.add)
}

func hReplaceHeaderMapValue(ctx context.Context, _ api.Module, stack []uint64) {
	setHeader(ctx, stack, headerMap.replace)
}

func setHeader(ctx context.Context, stack []uint64, op func(headerMap, []byte, []byte) abi.Status) {
	v := enter(ctx)
	mapID, kp, ks, vp, vs := u32(stack[0]), u32(stack[1]), u32(stack[2]), u32(stack[3]), u32(stack[4])
	hm, st := v.headerMap(mapID)
	if st != abi.StatusOK {
		ret(stack, st)
		return
	}
	key, ok1 := v.read(kp, ks)
	val, ok2 := v.read(vp, vs)
	if !ok1 || !ok2 {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	if mapID != abi.MapHTTPRequestHeaders && mapID != abi.MapHTTPResponseHeaders {
		ret(stack, abi.StatusBadArgument) // call responses and trailers are read-only
		return
	}
	ret(stack, op(hm, key, val))
}

func hRemoveHeaderMapValue(ctx context.Context, _ api.Module, stack []uint64) {
	hm, key, st := enter(ctx).editableMap(u32(stack[0]), u32(stack[1]), u32(stack[2]))
	if st != abi.StatusOK {
		ret(stack, st)
		return
	}
	ret(stack, hm.remove(key))
}

// editableMap is the common start of the calls that change a whole map or
// drop a key: it resolves map mapID, reads n bytes of guest memory at p,
// and refuses maps guests may only read (call responses, trailers).
func (v *vm) editableMap(mapID, p, n uint32) (headerMap, []byte, abi.Status) {
	hm, st := v.headerMap(mapID)
	if st != abi.StatusOK {
		return hm, nil, st
	}
	data, ok := v.read(p, n)
	if !ok {
		return hm, nil, abi.StatusInvalidMemoryAccess
	}
	if mapID != abi.MapHTTPRequestHeaders && mapID != abi.MapHTTPResponseHeaders {
		return hm, nil, abi.StatusBadArgument
	}
	return hm, data, abi.StatusOK
}

func hGetHeaderMapPairs(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	mapID, rp, rs := u32(stack[0]), u32(stack[1]), u32(stack[2])
	hm, st := v.headerMap(mapID)
	if st != abi.StatusOK {
		ret(stack, st)
		return
	}
	if !v.outPtrs(rp, rs) {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	n, size := hm.size()
	if uint64(size) > v.lim.limit {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	ptr, dst, ok := v.allocView(uint32(size))
	if !ok {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	hm.serialize(dst, n)
	if !v.returnPtrSize(rp, rs, ptr, uint32(size)) {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	ret(stack, abi.StatusOK)
}

func hSetHeaderMapPairs(ctx context.Context, _ api.Module, stack []uint64) {
	hm, data, st := enter(ctx).editableMap(u32(stack[0]), u32(stack[1]), u32(stack[2]))
	if st != abi.StatusOK {
		ret(stack, st)
		return
	}
	ret(stack, hm.setAll(data))
}

func hGetHeaderMapSize(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	mapID, rs := u32(stack[0]), u32(stack[1])
	hm, st := v.headerMap(mapID)
	if st != abi.StatusOK {
		ret(stack, st)
		return
	}
	_, size := hm.size()
	if !v.writeU32(rs, uint32(size)) {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	ret(stack, abi.StatusOK)
}

// --- buffers ----------------------------------------------------------------

// buffer returns buffer id for the current callback: a Body for the
// message bodies, bytes for the read-only ones.
func (v *vm) buffer(id uint32) (Body, []byte, abi.Status) {
	if !abi.ValidBuffer(id) {
		return nil, nil, abi.StatusBadArgument
	}
	switch id {
	case abi.BufferHTTPRequestBody:
		if sp := v.streamFor(); sp != nil && sp.s.reqBody != nil {
			return sp.s.reqBody, nil, abi.StatusOK
		}
	case abi.BufferHTTPResponseBody:
		if sp := v.streamFor(); sp != nil && sp.s.respBody != nil {
			return sp.s.respBody, nil, abi.StatusOK
		}
	case abi.BufferHTTPCallResponseBody:
		if v.httpRes != nil {
			return nil, v.httpRes.body, abi.StatusOK
		}
	case abi.BufferVMConfiguration:
		return nil, v.p.spec.VMConfiguration, abi.StatusOK
	case abi.BufferPluginConfiguration:
		return nil, v.p.spec.Configuration, abi.StatusOK
	}
	return nil, nil, abi.StatusNotFound
}

func hGetBufferBytes(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	id, start, maxSize, rp, rs := u32(stack[0]), u32(stack[1]), u32(stack[2]), u32(stack[3]), u32(stack[4])
	body, data, st := v.buffer(id)
	if st != abi.StatusOK {
		ret(stack, st)
		return
	}
	if !v.outPtrs(rp, rs) {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	var l int64
	if body != nil {
		l = body.Len()
	} else {
		l = int64(len(data))
	}
	if int64(start) > l {
		ret(stack, abi.StatusBadArgument)
		return
	}
	n := min(int64(maxSize), l-int64(start))
	if n == 0 {
		ok := v.returnPtrSize(rp, rs, 0, 0)
		ret(stack, okStatus(ok))
		return
	}
	if body == nil {
		ret(stack, okStatus(v.copyOut(data[start:int64(start)+n], rp, rs)))
		return
	}
	if uint64(n) > v.lim.limit {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	ptr, dst, ok := v.allocView(uint32(n))
	if !ok {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	var got int
	for got < len(dst) {
		k, err := body.ReadAt(dst[got:], int64(start)+int64(got))
		got += k
		if err != nil {
			break
		}
	}
	if got < len(dst) {
		ret(stack, abi.StatusInternalFailure)
		return
	}
	ret(stack, okStatus(v.returnPtrSize(rp, rs, ptr, uint32(n))))
}

func okStatus(ok bool) abi.Status {
	if ok {
		return abi.StatusOK
	}
	return abi.StatusInvalidMemoryAccess
}

func hSetBufferBytes(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	id, start, size, p, n := u32(stack[0]), u32(stack[1]), u32(stack[2]), u32(stack[3]), u32(stack[4])
	body, _, st := v.buffer(id)
	if st != abi.StatusOK {
		ret(stack, st)
		return
	}
	data, ok := v.read(p, n)
	if !ok {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	if body == nil {
		ret(stack, abi.StatusBadArgument) // read-only buffer
		return
	}
	l := body.Len()
	s := min(int64(start), l)
	length := min(int64(size), l-s)
	if err := body.Replace(s, length, data); err != nil {
		v.log.Warn("plugin could not edit a body", "vm", v.slot, "error", err)
		ret(stack, abi.StatusInternalFailure)
		return
	}
	ret(stack, abi.StatusOK)
}

func hGetBufferStatus(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	id, rl, rf := u32(stack[0]), u32(stack[1]), u32(stack[2])
	body, data, st := v.buffer(id)
	if st != abi.StatusOK {
		ret(stack, st)
		return
	}
	l := int64(len(data))
	if body != nil {
		l = body.Len()
	}
	if !v.writeU32(rl, clampU32(l)) || !v.writeU32(rf, 0) {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	ret(stack, abi.StatusOK)
}

// --- HTTP streams -----------------------------------------------------------

func hSendLocalResponse(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	code := u32(stack[0])
	det, ok1 := v.read(u32(stack[1]), u32(stack[2]))
	body, ok2 := v.read(u32(stack[3]), u32(stack[4]))
	hdr, ok3 := v.read(u32(stack[5]), u32(stack[6]))
	if !ok1 || !ok2 || !ok3 {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	sp := v.streamFor()
	if sp == nil || sp.s.phase == abi.CbLog {
		ret(stack, abi.StatusNotFound)
		return
	}
	if code == 0 {
		code = 200
	}
	if code < 100 || code > 999 {
		ret(stack, abi.StatusBadArgument)
		return
	}
	lr := &LocalResponse{Status: int(code), Details: string(det)}
	bad := false
	err := abi.DecodeMap(hdr, func(k, val []byte) bool {
		if len(k) > 0 && k[0] == ':' {
			return true // :status and the like: the status code rules
		}
		if !validName(k) || !validValue(val) {
			bad = true
			return false
		}
		lr.Header = append(lr.Header, message.Field{Name: string(k), Value: string(val)})
		return true
	})
	if err != nil || bad {
		ret(stack, abi.StatusBadArgument)
		return
	}
	if len(body) > 0 {
		lr.Body = append([]byte(nil), body...)
	}
	s := sp.s
	s.answer(lr)
	if sp.paused {
		s.signal()
	}
	ret(stack, abi.StatusOK)
}

func resumeStream(v *vm, streamType uint32, closeIt bool) abi.Status {
	switch streamType {
	case abi.StreamHTTPRequest, abi.StreamHTTPResponse:
	case abi.StreamDownstream, abi.StreamUpstream:
		return abi.StatusUnimplemented
	default:
		return abi.StatusBadArgument
	}
	// Like Envoy, resuming a stream that is not paused (or no longer
	// this plugin's to resume) is a no-op that succeeds.
	if sp := v.streamFor(); sp != nil {
		if closeIt {
			sp.s.closeReq = true
		} else {
			sp.resumed = true
		}
		if sp.paused {
			sp.s.signal()
		}
	}
	return abi.StatusOK
}

func hContinueStream(ctx context.Context, _ api.Module, stack []uint64) {
	ret(stack, resumeStream(enter(ctx), u32(stack[0]), false))
}

func hCloseStream(ctx context.Context, _ api.Module, stack []uint64) {
	ret(stack, resumeStream(enter(ctx), u32(stack[0]), true))
}

func hContinueRequest(ctx context.Context, _ api.Module, stack []uint64) {
	ret(stack, resumeStream(enter(ctx), abi.StreamHTTPRequest, false))
}

func hGetStatus(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	rc, rp, rs := u32(stack[0]), u32(stack[1]), u32(stack[2])
	if !v.outPtrs(rp, rs) {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	var code uint32
	var msg string
	if r := v.httpRes; r != nil {
		if r.err != nil {
			msg = r.err.Error()
		} else if r.resp != nil {
			code = uint32(r.resp.Status)
		}
	}
	if !v.writeU32(rc, code) || !v.copyOutString(msg, rp, rs) {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	ret(stack, abi.StatusOK)
}

// --- HTTP calls -------------------------------------------------------------

const defaultHTTPCallTimeout = 60 * time.Second

func hHTTPCall(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	up, ok1 := v.read(u32(stack[0]), u32(stack[1]))
	hdr, ok2 := v.read(u32(stack[2]), u32(stack[3]))
	body, ok3 := v.read(u32(stack[4]), u32(stack[5]))
	_, ok4 := v.read(u32(stack[6]), u32(stack[7])) // trailers: not sent
	timeoutMS, rid := u32(stack[8]), u32(stack[9])
	_, ok5 := v.read(rid, 4)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	c := v.p.c
	d := c.h.dispatcher
	if d == nil {
		ret(stack, abi.StatusInternalFailure)
		return
	}
	upstream := string(up)
	if hu, ok := d.(interface{ HasUpstream(string) bool }); ok && !hu.HasUpstream(upstream) {
		ret(stack, abi.StatusBadArgument)
		return
	}
	req := &message.Request{Proto: "HTTP/1.1", Scheme: "http", ContentLength: int64(len(body))}
	bad := false
	err := abi.DecodeMap(hdr, func(k, val []byte) bool {
		switch string(k) {
		case ":method":
			req.Method = string(val)
			bad = !validName(val)
		case ":path":
			req.Target = string(val)
			bad = !validPseudoValue(val)
		case ":authority":
			req.Host = string(val)
			bad = !validPseudoValue(val)
		case ":scheme":
			req.Scheme = string(val)
			bad = !validName(val)
		default:
			if len(k) > 0 && k[0] == ':' {
				return true
			}
			if equalFoldBytes("host", k) {
				if req.Host == "" {
					req.Host = string(val)
				}
				return true
			}
			bad = !validName(k) || !validValue(val)
			req.Header = append(req.Header, message.Field{Name: string(k), Value: string(val)})
		}
		return !bad
	})
	if err != nil || bad || req.Method == "" || req.Target == "" || req.Host == "" {
		ret(stack, abi.StatusBadArgument)
		return
	}
	if len(v.calls) >= maxHTTPCallsPerVM {
		ret(stack, abi.StatusInternalFailure)
		return
	}
	bodyCopy := append([]byte(nil), body...)
	timeout := time.Duration(timeoutMS) * time.Millisecond
	if timeout == 0 {
		timeout = defaultHTTPCallTimeout
	}
	v.nextCall++
	if v.nextCall == 0 {
		v.nextCall++
	}
	id := v.nextCall
	if v.calls == nil {
		v.calls = make(map[uint32]context.CancelFunc)
	}
	cctx, cancel := context.WithTimeout(c.baseCtx, timeout)
	v.calls[id] = cancel
	v.writeU32(rid, id)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer cancel()
		resp, rbody, err := d.Dispatch(cctx, upstream, req, bodyCopy, timeout)
		if err == nil && resp == nil {
			err = errors.New("dispatcher returned no response")
		}
		v.post(vmEvent{kind: evHTTPResponse, id: id, resp: resp, body: rbody, err: err})
	}()
	ret(stack, abi.StatusOK)
}

// --- shared data and queues ---------------------------------------------------

func hGetSharedData(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	key, ok := v.read(u32(stack[0]), u32(stack[1]))
	rp, rs, rc := u32(stack[2]), u32(stack[3]), u32(stack[4])
	_, ok2 := v.read(rc, 4)
	if !ok || !ok2 || !v.outPtrs(rp, rs) {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	val, cas, found := v.p.c.h.shared.get(key)
	if !found {
		ret(stack, abi.StatusNotFound)
		return
	}
	if !v.copyOut(val, rp, rs) || !v.writeU32(rc, cas) {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	ret(stack, abi.StatusOK)
}

func hSetSharedData(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	key, ok1 := v.read(u32(stack[0]), u32(stack[1]))
	val, ok2 := v.read(u32(stack[2]), u32(stack[3]))
	if !ok1 || !ok2 {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	ret(stack, v.p.c.h.shared.set(key, val, u32(stack[4])))
}

func hRegisterSharedQueue(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	name, ok := v.read(u32(stack[0]), u32(stack[1]))
	rid := u32(stack[2])
	_, ok2 := v.read(rid, 4)
	if !ok || !ok2 {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	id := v.p.c.h.queues.register(v.p.spec.VMID, string(name), queueOwner{p: v.p, slot: v.slot})
	v.writeU32(rid, id)
	ret(stack, abi.StatusOK)
}

func hResolveSharedQueue(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	vmID, ok1 := v.read(u32(stack[0]), u32(stack[1]))
	name, ok2 := v.read(u32(stack[2]), u32(stack[3]))
	rid := u32(stack[4])
	_, ok3 := v.read(rid, 4)
	if !ok1 || !ok2 || !ok3 {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	id, found := v.p.c.h.queues.resolve(vmID, name)
	if !found {
		ret(stack, abi.StatusNotFound)
		return
	}
	v.writeU32(rid, id)
	ret(stack, abi.StatusOK)
}

func hEnqueueSharedQueue(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	id := u32(stack[0])
	val, ok := v.read(u32(stack[1]), u32(stack[2]))
	if !ok {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	owner, st := v.p.c.h.queues.enqueue(id, val)
	if st == abi.StatusOK && owner.p != nil {
		if ov := owner.p.vmAt(owner.slot); ov != nil {
			ov.post(vmEvent{kind: evQueueReady, id: id})
		}
	}
	ret(stack, st)
}

func hDequeueSharedQueue(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	id, rp, rs := u32(stack[0]), u32(stack[1]), u32(stack[2])
	if !v.outPtrs(rp, rs) {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	item, st := v.p.c.h.queues.dequeue(id)
	if st != abi.StatusOK {
		ret(stack, st)
		return
	}
	ret(stack, okStatus(v.copyOut(item, rp, rs)))
}

// --- metrics ------------------------------------------------------------------

func hDefineMetric(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	typ := u32(stack[0])
	name, ok := v.read(u32(stack[1]), u32(stack[2]))
	rid := u32(stack[3])
	_, ok2 := v.read(rid, 4)
	if !ok || !ok2 {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	id, st := v.p.c.h.metrics.define(v.p.name, typ, name)
	if st == abi.StatusOK {
		v.writeU32(rid, id)
	}
	ret(stack, st)
}

func hIncrementMetric(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	ret(stack, v.p.c.h.metrics.increment(v.p.name, u32(stack[0]), int64(stack[1])))
}

func hRecordMetric(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	ret(stack, v.p.c.h.metrics.record(v.p.name, u32(stack[0]), stack[1]))
}

func hGetMetric(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	id, rp := u32(stack[0]), u32(stack[1])
	val, st := v.p.c.h.metrics.get(v.p.name, id)
	if st != abi.StatusOK {
		ret(stack, st)
		return
	}
	if !v.writeU64(rp, val) {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	ret(stack, abi.StatusOK)
}

// --- contexts ---------------------------------------------------------------

func hDone(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	if v.doneWait != nil && v.eff == abi.RootContextID {
		close(v.doneWait)
		v.doneWait = nil
		ret(stack, abi.StatusOK)
		return
	}
	ret(stack, abi.StatusNotFound)
}

func hSetEffectiveContext(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	id := u32(stack[0])
	if id == abi.RootContextID {
		v.eff, v.effSP = id, nil
		ret(stack, abi.StatusOK)
		return
	}
	sp, ok := v.streams[id]
	if !ok {
		ret(stack, abi.StatusBadArgument)
		return
	}
	v.eff, v.effSP = id, sp
	ret(stack, abi.StatusOK)
}

func hCallForeignFunction(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	name, ok1 := v.read(u32(stack[0]), u32(stack[1]))
	args, ok2 := v.read(u32(stack[2]), u32(stack[3]))
	rp, rs := u32(stack[4]), u32(stack[5])
	if !ok1 || !ok2 || !v.outPtrs(rp, rs) {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	fn := v.p.c.h.foreign[string(name)]
	if fn == nil {
		ret(stack, abi.StatusNotFound)
		return
	}
	call := ForeignCall{Plugin: v.p.spec.Name, Attachment: v.p.spec.Attachment}
	if sp := v.streamFor(); sp != nil {
		call.Stream = sp.s
	}
	out, err := fn(&call, args)
	if err != nil {
		v.log.Warn("foreign function failed", "vm", v.slot, "function", string(name), "error", err)
		ret(stack, abi.StatusInternalFailure)
		return
	}
	ret(stack, okStatus(v.copyOut(out, rp, rs)))
}

func hGetConfiguration(ctx context.Context, _ api.Module, stack []uint64) {
	v := enter(ctx)
	rp, rs := u32(stack[0]), u32(stack[1])
	if !v.outPtrs(rp, rs) {
		ret(stack, abi.StatusInvalidMemoryAccess)
		return
	}
	ret(stack, okStatus(v.copyOut(v.p.spec.Configuration, rp, rs)))
}
