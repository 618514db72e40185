package pluginhost

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wedgeproxy/wedge/server/internal/message"
	"github.com/wedgeproxy/wedge/server/pluginhost/internal/abi"
)

// bad is an address outside abi.wasm's memory.
const bad = 0xfffffff0

// recorder is a slog.Handler keeping records.
type recorder struct {
	mu    sync.Mutex
	level slog.Level
	recs  []slog.Record
}

func (r *recorder) Enabled(_ context.Context, l slog.Level) bool { return l >= r.level }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.recs = append(r.recs, rec)
	r.mu.Unlock()
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) find(msg string) (slog.Record, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.recs {
		if rec.Message == msg {
			return rec, true
		}
	}
	return slog.Record{}, false
}

func TestHostCall_Log(t *testing.T) {
	rec := &recorder{level: slog.LevelDebug}
	e := newABIEnv(t, Config{Logger: slog.New(rec)}, PluginSpec{})
	tests := []struct {
		level uint32
		want  slog.Level
	}{
		{abi.LogTrace, slog.LevelDebug - 4},
		{abi.LogDebug, slog.LevelDebug},
		{abi.LogInfo, slog.LevelInfo},
		{abi.LogWarn, slog.LevelWarn},
		{abi.LogError, slog.LevelError},
		{abi.LogCritical, slog.LevelError + 4},
	}
	for _, tt := range tests {
		msg := "message at " + slog.Level(tt.want).String()
		p, n := e.str(msg)
		e.must(abi.StatusOK, "proxy_log", uint64(tt.level), p, n)
		r, ok := rec.find(msg)
		if tt.level == abi.LogTrace {
			if ok {
				t.Errorf("trace logged at a Debug handler")
			}
			continue
		}
		if !ok || r.Level != tt.want {
			t.Errorf("level %d: record %v, %v; want level %v", tt.level, r, ok, tt.want)
		}
		var reqID string
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "request" {
				reqID = a.Value.String()
			}
			return true
		})
		if reqID != "req-1" {
			t.Errorf("level %d: request attribute %q, want req-1", tt.level, reqID)
		}
	}
	p, n := e.str("x")
	e.must(abi.StatusBadArgument, "proxy_log", 6, p, n)
	e.must(abi.StatusInvalidMemoryAccess, "proxy_log", uint64(abi.LogInfo), bad, 100)
	e.must(abi.StatusInvalidMemoryAccess, "proxy_log", uint64(abi.LogInfo), 0, 0xffffffff)
}

func TestHostCall_GetLogLevel(t *testing.T) {
	e := newABIEnv(t, Config{Logger: slog.New(&recorder{level: slog.LevelWarn})}, PluginSpec{})
	out := e.out(1)
	e.must(abi.StatusOK, "proxy_get_log_level", out)
	if got := e.u32(out); got != abi.LogWarn {
		t.Errorf("log level = %d, want %d (WARN)", got, abi.LogWarn)
	}
	e.must(abi.StatusInvalidMemoryAccess, "proxy_get_log_level", bad)
}

func TestHostCall_GetCurrentTime(t *testing.T) {
	e := newABIEnv(t, Config{}, PluginSpec{})
	out := e.put(make([]byte, 8))
	before := time.Now().UnixNano()
	e.must(abi.StatusOK, "proxy_get_current_time_nanoseconds", out)
	after := time.Now().UnixNano()
	if got := int64(e.u64(out)); got < before || got > after {
		t.Errorf("time = %d, want within [%d, %d]", got, before, after)
	}
	e.must(abi.StatusInvalidMemoryAccess, "proxy_get_current_time_nanoseconds", bad)
}

func TestHostCall_SetTickPeriod(t *testing.T) {
	e := newABIEnv(t, Config{}, PluginSpec{})
	e.must(abi.StatusOK, "proxy_set_tick_period_milliseconds", 250)
	if got := e.vm().tick; got != 250*time.Millisecond {
		t.Errorf("tick = %v, want 250ms", got)
	}
	e.must(abi.StatusOK, "proxy_set_tick_period_milliseconds", 0)
	if got := e.vm().tick; got != 0 {
		t.Errorf("tick = %v, want 0 (off)", got)
	}
}

func TestHostCall_HeaderMapValue(t *testing.T) {
	e := newABIEnv(t, Config{}, PluginSpec{})
	get := func(mapID uint32, key string) (string, abi.Status) {
		kp, kn := e.str(key)
		ret := e.out(2)
		st, err := e.call("proxy_get_header_map_value", uint64(mapID), kp, kn, ret, ret+4)
		if err != nil {
			t.Fatal(err)
		}
		if st != abi.StatusOK {
			return "", st
		}
		return string(e.result(ret)), st
	}
	set := func(op string, mapID uint32, key, val string) abi.Status {
		kp, kn := e.str(key)
		vp, vn := e.str(val)
		st, err := e.call(op, uint64(mapID), kp, kn, vp, vn)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	req := abi.MapHTTPRequestHeaders
	for key, want := range map[string]string{
		":method": "GET", ":path": "/a/b?x=1", ":authority": "example.com", ":scheme": "https",
		"host": "example.com", "user-agent": "test", "ACCEPT": "*/*",
	} {
		if got, st := get(req, key); st != abi.StatusOK || got != want {
			t.Errorf("get %q = %q, %v; want %q", key, got, st, want)
		}
	}
	if _, st := get(req, "missing"); st != abi.StatusNotFound {
		t.Errorf("get missing = %v, want NOT_FOUND", st)
	}
	if got, st := get(abi.MapHTTPResponseHeaders, ":status"); got != "200" || st != abi.StatusOK {
		t.Errorf("get :status = %q, %v", got, st)
	}

	if st := set("proxy_add_header_map_value", req, "x-a", "1"); st != abi.StatusOK {
		t.Fatalf("add = %v", st)
	}
	set("proxy_add_header_map_value", req, "x-a", "2")
	if got := e.s.req.Header.Values("x-a"); !slices.Equal(got, []string{"1", "2"}) {
		t.Errorf("after two adds x-a = %q", got)
	}
	set("proxy_replace_header_map_value", req, "X-A", "3")
	if got := e.s.req.Header.Values("x-a"); !slices.Equal(got, []string{"3"}) {
		t.Errorf("after replace x-a = %q", got)
	}
	set("proxy_replace_header_map_value", req, "x-new", "n")
	if got := e.s.req.Header.Get("x-new"); got != "n" {
		t.Errorf("replace of a new field: %q", got)
	}
	for key, check := range map[string]func() string{
		":path":      func() string { return e.s.req.Target },
		":method":    func() string { return e.s.req.Method },
		":authority": func() string { return e.s.req.Host },
		":scheme":    func() string { return e.s.req.Scheme },
	} {
		if st := set("proxy_replace_header_map_value", req, key, "v"+strings.TrimPrefix(key, ":")); st != abi.StatusOK {
			t.Errorf("replace %s = %v", key, st)
		}
		if got := check(); got != "v"+strings.TrimPrefix(key, ":") {
			t.Errorf("after replace %s: %q", key, got)
		}
	}
	if st := set("proxy_replace_header_map_value", abi.MapHTTPResponseHeaders, ":status", "404"); st != abi.StatusOK || e.s.resp.Status != 404 {
		t.Errorf("replace :status = %v, status %d", st, e.s.resp.Status)
	}

	for _, tt := range []struct{ key, val string }{
		{"x-bad", "a\r\nInjected: yes"},
		{"bad name", "v"},
		{"", "v"},
		{":unknown", "v"},
		{":path", "/a b"},
		{":method", "G\nET"},
	} {
		if st := set("proxy_add_header_map_value", req, tt.key, tt.val); st != abi.StatusBadArgument {
			t.Errorf("add %q: %q = %v, want BAD_ARGUMENT", tt.key, tt.val, st)
		}
	}
	if st := set("proxy_replace_header_map_value", abi.MapHTTPResponseHeaders, ":status", "abc"); st != abi.StatusBadArgument {
		t.Errorf("replace :status abc = %v", st)
	}

	kp, kn := e.str("x-a")
	e.must(abi.StatusOK, "proxy_remove_header_map_value", uint64(req), kp, kn)
	if e.s.req.Header.Has("x-a") {
		t.Error("x-a still there after remove")
	}
	e.must(abi.StatusOK, "proxy_remove_header_map_value", uint64(req), kp, kn) // absent: still OK

	// Maps that are not there, and ids that do not exist.
	if _, st := get(abi.MapHTTPCallResponseHeaders, ":status"); st != abi.StatusNotFound {
		t.Errorf("call response map outside its callback = %v, want NOT_FOUND", st)
	}
	if _, st := get(42, "x"); st != abi.StatusBadArgument {
		t.Errorf("map 42 = %v, want BAD_ARGUMENT", st)
	}
	if _, st := get(abi.MapHTTPRequestTrailers, "x"); st != abi.StatusNotFound {
		t.Errorf("trailer lookup = %v, want NOT_FOUND", st)
	}
	if st := set("proxy_add_header_map_value", abi.MapHTTPRequestTrailers, "x", "y"); st != abi.StatusBadArgument {
		t.Errorf("trailer add = %v, want BAD_ARGUMENT", st)
	}
	ret := e.out(2)
	e.must(abi.StatusInvalidMemoryAccess, "proxy_get_header_map_value", uint64(req), bad, 4, ret, ret+4)
	e.must(abi.StatusInvalidMemoryAccess, "proxy_get_header_map_value", uint64(req), kp, kn, bad, ret+4)
	e.must(abi.StatusInvalidMemoryAccess, "proxy_add_header_map_value", uint64(req), kp, kn, bad, 10)
	e.must(abi.StatusInvalidMemoryAccess, "proxy_remove_header_map_value", uint64(req), bad, 10)

	// A stream that is not this plugin's to touch sees no maps.
	e.s.active.Store(-1)
	v := e.vm()
	v.mu.Lock()
	v.effSP = e.sp
	if sp := v.streamFor(); sp != nil {
		t.Error("streamFor answered a stream whose plugin is not active")
	}
	v.effSP = nil
	v.mu.Unlock()
}

func TestHostCall_HeaderMapPairs(t *testing.T) {
	e := newABIEnv(t, Config{}, PluginSpec{})
	e.s.req.Header.Add("Host", "example.com") // shown as :authority only
	ret := e.out(2)
	e.must(abi.StatusOK, "proxy_get_header_map_pairs", uint64(abi.MapHTTPRequestHeaders), ret, ret+4)
	got := deserialize(t, e.result(ret))
	want := []string{":authority", "example.com", ":path", "/a/b?x=1", ":method", "GET", ":scheme", "https",
		"user-agent", "test", "accept", "*/*"}
	if !slices.Equal(got, want) {
		t.Errorf("pairs = %q\nwant    %q", got, want)
	}
	size := e.out(1)
	e.must(abi.StatusOK, "proxy_get_header_map_size", uint64(abi.MapHTTPRequestHeaders), size)
	if e.u32(size) != e.u32(ret+4) {
		t.Errorf("size = %d, pairs were %d bytes", e.u32(size), e.u32(ret+4))
	}

	m := serialize(":method", "POST", ":path", "/new", "x-one", "1", "x-two", "2", "host", "other.example")
	p := e.put(m)
	e.must(abi.StatusOK, "proxy_set_header_map_pairs", uint64(abi.MapHTTPRequestHeaders), p, uint64(len(m)))
	r := e.s.req
	if r.Method != "POST" || r.Target != "/new" || r.Host != "other.example" || r.Scheme != "https" {
		t.Errorf("after set pairs: %s %s %s %s", r.Method, r.Target, r.Host, r.Scheme)
	}
	wantH := message.Header{{Name: "x-one", Value: "1"}, {Name: "x-two", Value: "2"}, {Name: "Host", Value: "other.example"}}
	if !slices.Equal(r.Header, wantH) {
		t.Errorf("header = %v, want %v", r.Header, wantH)
	}

	for _, b := range [][]byte{
		serialize("x", "a\nb"),
		serialize(":bogus", "1"),
		{9, 0, 0, 0, 1},
		{1, 0, 0, 0, 200, 0, 0, 0, 1, 0, 0, 0, 'a', 0},
	} {
		p := e.put(b)
		e.must(abi.StatusBadArgument, "proxy_set_header_map_pairs", uint64(abi.MapHTTPRequestHeaders), p, uint64(len(b)))
	}
	if !slices.Equal(r.Header, wantH) {
		t.Errorf("a refused set changed the header: %v", r.Header)
	}

	e.must(abi.StatusOK, "proxy_get_header_map_pairs", uint64(abi.MapHTTPResponseHeaders), ret, ret+4)
	if got := deserialize(t, e.result(ret)); !slices.Equal(got, []string{":status", "200", "content-type", "text/plain"}) {
		t.Errorf("response pairs = %q", got)
	}
	e.must(abi.StatusOK, "proxy_get_header_map_pairs", uint64(abi.MapHTTPResponseTrailers), ret, ret+4)
	if got := e.result(ret); !bytes.Equal(got, []byte{0, 0, 0, 0}) {
		t.Errorf("empty trailers serialized as %v", got)
	}
	e.must(abi.StatusInvalidMemoryAccess, "proxy_get_header_map_pairs", uint64(abi.MapHTTPRequestHeaders), bad, ret)
	e.must(abi.StatusInvalidMemoryAccess, "proxy_set_header_map_pairs", uint64(abi.MapHTTPRequestHeaders), bad, 100)
	e.must(abi.StatusInvalidMemoryAccess, "proxy_get_header_map_size", uint64(abi.MapHTTPRequestHeaders), bad)
	e.must(abi.StatusBadArgument, "proxy_get_header_map_size", 99, size)
}

func TestHostCall_Buffers(t *testing.T) {
	e := newABIEnv(t, Config{}, PluginSpec{Configuration: []byte(`{"a":1}`), VMConfiguration: []byte("vm")})
	get := func(id, start, max uint32) ([]byte, abi.Status) {
		ret := e.out(2)
		st, err := e.call("proxy_get_buffer_bytes", uint64(id), uint64(start), uint64(max), ret, ret+4)
		if err != nil {
			t.Fatal(err)
		}
		return e.result(ret), st
	}
	tests := []struct {
		name       string
		id         uint32
		start, max uint32
		want       string
		st         abi.Status
	}{
		{"whole", abi.BufferHTTPRequestBody, 0, 100, "hello world", abi.StatusOK},
		{"range", abi.BufferHTTPRequestBody, 6, 3, "wor", abi.StatusOK},
		{"to end", abi.BufferHTTPRequestBody, 6, 0xffffffff, "world", abi.StatusOK},
		{"at end", abi.BufferHTTPRequestBody, 11, 5, "", abi.StatusOK},
		{"past end", abi.BufferHTTPRequestBody, 12, 5, "", abi.StatusBadArgument},
		{"response", abi.BufferHTTPResponseBody, 0, 8, "response", abi.StatusOK},
		{"plugin config", abi.BufferPluginConfiguration, 0, 100, `{"a":1}`, abi.StatusOK},
		{"vm config", abi.BufferVMConfiguration, 0, 100, "vm", abi.StatusOK},
		{"call body outside its callback", abi.BufferHTTPCallResponseBody, 0, 1, "", abi.StatusNotFound},
		{"downstream data", abi.BufferDownstreamData, 0, 1, "", abi.StatusNotFound},
		{"unknown", 9, 0, 1, "", abi.StatusBadArgument},
	}
	for _, tt := range tests {
		got, st := get(tt.id, tt.start, tt.max)
		if st != tt.st || string(got) != tt.want {
			t.Errorf("%s: %q, %v; want %q, %v", tt.name, got, st, tt.want, tt.st)
		}
	}

	set := func(start, size uint32, data string) {
		p, n := e.str(data)
		e.must(abi.StatusOK, "proxy_set_buffer_bytes", uint64(abi.BufferHTTPRequestBody), uint64(start), uint64(size), p, n)
	}
	body := e.s.reqBody.(*memBody)
	set(0, 0, ">")          // prepend
	set(0xffffffff, 0, "<") // append
	set(1, 5, "HELLO")      // replace
	set(100, 100, "!")      // past the end: append
	if got := string(body.b); got != ">HELLO world<!" {
		t.Errorf("body = %q", got)
	}
	p, n := e.str("all")
	e.must(abi.StatusOK, "proxy_set_buffer_bytes", uint64(abi.BufferHTTPRequestBody), 0, 0x7fffffff, p, n) // replace all
	if got := string(body.b); got != "all" {
		t.Errorf("body after replacing all = %q", got)
	}
	e.must(abi.StatusBadArgument, "proxy_set_buffer_bytes", uint64(abi.BufferPluginConfiguration), 0, 0, p, n)
	e.must(abi.StatusInvalidMemoryAccess, "proxy_set_buffer_bytes", uint64(abi.BufferHTTPRequestBody), 0, 0, bad, 64)

	st := e.out(2)
	e.must(abi.StatusOK, "proxy_get_buffer_status", uint64(abi.BufferHTTPResponseBody), st, st+4)
	if e.u32(st) != 13 {
		t.Errorf("response body status size = %d, want 13", e.u32(st))
	}
	e.must(abi.StatusNotFound, "proxy_get_buffer_status", uint64(abi.BufferUpstreamData), st, st+4)
	e.must(abi.StatusInvalidMemoryAccess, "proxy_get_buffer_status", uint64(abi.BufferHTTPResponseBody), bad, st)
	ret := e.out(2)
	e.must(abi.StatusInvalidMemoryAccess, "proxy_get_buffer_bytes", uint64(abi.BufferHTTPRequestBody), 0, 1, bad, ret)
}

func TestHostCall_SendLocalResponse(t *testing.T) {
	e := newABIEnv(t, Config{}, PluginSpec{})
	dp, dn := e.str("blocked")
	bp, bn := e.str("go away")
	h := serialize("x-reason", "test", ":status", "999")
	hp := e.put(h)
	e.must(abi.StatusOK, "proxy_send_local_response", 451, dp, dn, bp, bn, hp, uint64(len(h)), 0xffffffff)
	lr := e.s.local
	if lr == nil || lr.Status != 451 || string(lr.Body) != "go away" || lr.Details != "blocked" ||
		!slices.Equal(lr.Header, message.Header{{Name: "x-reason", Value: "test"}}) {
		t.Errorf("local response = %+v", lr)
	}
	e.must(abi.StatusBadArgument, "proxy_send_local_response", 42, dp, dn, bp, bn, hp, uint64(len(h)), 0)
	badH := serialize("x", "a\r\nb")
	bhp := e.put(badH)
	e.must(abi.StatusBadArgument, "proxy_send_local_response", 200, dp, dn, bp, bn, bhp, uint64(len(badH)), 0)
	e.must(abi.StatusInvalidMemoryAccess, "proxy_send_local_response", 200, dp, dn, bad, 100, hp, uint64(len(h)), 0)
	e.must(abi.StatusOK, "proxy_send_local_response", 0, 0, 0, 0, 0, 0, 0, 0)
	if e.s.local.Status != 200 || e.s.localN != 2 {
		t.Errorf("status 0 gave %d (%d sent)", e.s.local.Status, e.s.localN)
	}
}

func TestHostCall_ContinueCloseStream(t *testing.T) {
	e := newABIEnv(t, Config{}, PluginSpec{})
	e.must(abi.StatusOK, "proxy_continue_stream", uint64(abi.StreamHTTPRequest))
	if !e.sp.resumed {
		t.Error("continue did not mark the stream resumed")
	}
	e.must(abi.StatusUnimplemented, "proxy_continue_stream", uint64(abi.StreamDownstream))
	e.must(abi.StatusUnimplemented, "proxy_close_stream", uint64(abi.StreamUpstream))
	e.must(abi.StatusBadArgument, "proxy_continue_stream", 7)
	e.must(abi.StatusOK, "proxy_continue_request")
	e.must(abi.StatusOK, "proxy_continue_response")
	e.must(abi.StatusOK, "proxy_clear_route_cache")
	e.must(abi.StatusOK, "proxy_close_stream", uint64(abi.StreamHTTPResponse))
	if !e.s.closeReq {
		t.Error("close did not mark the stream closed")
	}
}

func TestHostCall_Properties(t *testing.T) {
	e := newABIEnv(t, Config{}, PluginSpec{Name: "props", RootID: "root-x", VMID: "vm-x"})
	e.s.info.Source = mustAddrPort("192.0.2.7:5555")
	e.s.info.Destination = mustAddrPort("[2001:db8::1]:443")
	e.s.info.TLSVersion = "TLSv1.3"
	e.s.info.SNI = "example.com"
	e.s.info.ConnectionID = 77
	e.s.req.Proto = "HTTP/2.0"
	e.s.req.Header.Add("X-Request-Id", "abc")
	e.s.upAddr = "10.0.0.2:8000"
	get := func(path string) ([]byte, abi.Status) {
		p, n := e.str(path)
		ret := e.out(2)
		st, err := e.call("proxy_get_property", p, n, ret, ret+4)
		if err != nil {
			t.Fatal(err)
		}
		return e.result(ret), st
	}
	strs := map[string]string{
		"plugin_name":                         "props",
		"plugin_root_id":                      "root-x",
		"plugin_vm_id":                        "vm-x",
		"request.path":                        "/a/b?x=1",
		"request\x00url_path":                 "/a/b",
		"request.host":                        "example.com",
		"request.scheme":                      "https",
		"request.method":                      "GET",
		"request.id":                          "abc",
		"request.protocol":                    "HTTP/2",
		"request.query":                       "x=1",
		"request.useragent":                   "test",
		"request\x00headers\x00accept":        "*/*",
		"response\x00headers\x00content-type": "text/plain",
		"source.address":                      "192.0.2.7:5555",
		"destination.address":                 "[2001:db8::1]:443",
		"connection.tls_version":              "TLSv1.3",
		"connection.requested_server_name":    "example.com",
		"upstream.address":                    "10.0.0.2:8000",
		"wedge.upstream":                      "app",
		"wedge.static":                        "",
		"response.code_details":               "via_upstream",
	}
	for path, want := range strs {
		if got, st := get(path); st != abi.StatusOK || string(got) != want {
			t.Errorf("%q = %q, %v; want %q", path, got, st, want)
		}
	}
	ints := map[string]int64{
		"source.port":      5555,
		"destination.port": 443,
		"connection.id":    77,
		"response.code":    200,
		"upstream.port":    8000,
		"request.size":     11,
		"response.size":    13,
		"request.time":     e.s.info.Start.UnixNano(),
	}
	for path, want := range ints {
		got, st := get(path)
		if st != abi.StatusOK || len(got) != 8 || le64(got) != want {
			t.Errorf("%q = %v, %v; want 8-byte %d", path, got, st, want)
		}
	}
	if got, _ := get("connection.mtls"); !bytes.Equal(got, []byte{0}) {
		t.Errorf("connection.mtls = %v", got)
	}
	hs, st := get("request.headers")
	if st != abi.StatusOK || !slices.Contains(deserialize(t, hs), "x-request-id") {
		t.Errorf("request.headers = %q, %v", deserialize(t, hs), st)
	}
	for _, path := range []string{"no.such", "request.headers.missing", "node.id"} {
		if _, st := get(path); st != abi.StatusNotFound {
			t.Errorf("%q: %v, want NOT_FOUND", path, st)
		}
	}

	set := func(path, val string) abi.Status {
		p, n := e.str(path)
		vp, vn := e.str(val)
		st, err := e.call("proxy_set_property", p, n, vp, vn)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := set("wedge.upstream", "api"); st != abi.StatusOK || e.s.Upstream() != "api" {
		t.Errorf("set wedge.upstream: %v, Upstream() = %q", st, e.s.Upstream())
	}
	if st := set("wedge\x00static", "assets"); st != abi.StatusOK || e.s.StaticMount() != "assets" {
		t.Errorf("set wedge.static: %v, StaticMount() = %q", st, e.s.StaticMount())
	}
	if st := set("my.key", "v1"); st != abi.StatusOK {
		t.Errorf("set my.key: %v", st)
	}
	if got, st := get("my\x00key"); st != abi.StatusOK || string(got) != "v1" {
		t.Errorf("get my.key = %q, %v", got, st)
	}
	for _, path := range []string{"request.path", "source.address", "plugin_name", "request.other"} {
		if st := set(path, "x"); st != abi.StatusBadArgument {
			t.Errorf("set %q = %v, want BAD_ARGUMENT", path, st)
		}
	}
	ret := e.out(2)
	e.must(abi.StatusInvalidMemoryAccess, "proxy_get_property", bad, 12, ret, ret+4)
	p, n := e.str("request.path")
	e.must(abi.StatusInvalidMemoryAccess, "proxy_get_property", p, n, bad, ret)
	e.must(abi.StatusInvalidMemoryAccess, "proxy_set_property", p, n, bad, 3)
}

func TestHostCall_SharedData(t *testing.T) {
	e := newABIEnv(t, Config{}, PluginSpec{})
	kp, kn := e.str("k")
	ret := e.out(3)
	e.must(abi.StatusNotFound, "proxy_get_shared_data", kp, kn, ret, ret+4, ret+8)
	vp, vn := e.str("v1")
	e.must(abi.StatusOK, "proxy_set_shared_data", kp, kn, vp, vn, 12345) // a new key takes any cas
	e.must(abi.StatusOK, "proxy_get_shared_data", kp, kn, ret, ret+4, ret+8)
	cas := e.u32(ret + 8)
	if got := string(e.result(ret)); got != "v1" || cas == 0 {
		t.Fatalf("get = %q cas %d", got, cas)
	}
	v2p, v2n := e.str("v2")
	e.must(abi.StatusCASMismatch, "proxy_set_shared_data", kp, kn, v2p, v2n, uint64(cas+1))
	e.must(abi.StatusOK, "proxy_set_shared_data", kp, kn, v2p, v2n, uint64(cas))
	e.must(abi.StatusCASMismatch, "proxy_set_shared_data", kp, kn, vp, vn, uint64(cas)) // stale now
	e.must(abi.StatusOK, "proxy_set_shared_data", kp, kn, vp, vn, 0)                    // 0: unconditional
	e.must(abi.StatusOK, "proxy_get_shared_data", kp, kn, ret, ret+4, ret+8)
	if got := string(e.result(ret)); got != "v1" {
		t.Errorf("after unconditional set: %q", got)
	}
	e.must(abi.StatusInvalidMemoryAccess, "proxy_get_shared_data", kp, kn, ret, ret+4, bad)
	e.must(abi.StatusInvalidMemoryAccess, "proxy_set_shared_data", kp, kn, bad, 10, 0)
}

func TestHostCall_SharedQueue(t *testing.T) {
	e := newABIEnv(t, Config{}, PluginSpec{VMID: "vm-q"})
	np, nn := e.str("q")
	id := e.out(1)
	e.must(abi.StatusOK, "proxy_register_shared_queue", np, nn, id)
	qid := e.u32(id)
	id2 := e.out(1)
	e.must(abi.StatusOK, "proxy_register_shared_queue", np, nn, id2)
	if e.u32(id2) != qid {
		t.Errorf("registering again gave %d, want %d", e.u32(id2), qid)
	}
	vp, vn := e.str("vm-q")
	e.must(abi.StatusOK, "proxy_resolve_shared_queue", vp, vn, np, nn, id2)
	if e.u32(id2) != qid {
		t.Errorf("resolve gave %d, want %d", e.u32(id2), qid)
	}
	op, on := e.str("other-vm")
	e.must(abi.StatusNotFound, "proxy_resolve_shared_queue", op, on, np, nn, id2)

	ret := e.out(2)
	e.must(abi.StatusEmpty, "proxy_dequeue_shared_queue", uint64(qid), ret, ret+4)
	for _, item := range []string{"one", "two"} {
		ip, in := e.str(item)
		e.must(abi.StatusOK, "proxy_enqueue_shared_queue", uint64(qid), ip, in)
	}
	for _, want := range []string{"one", "two"} {
		e.must(abi.StatusOK, "proxy_dequeue_shared_queue", uint64(qid), ret, ret+4)
		if got := string(e.result(ret)); got != want {
			t.Errorf("dequeued %q, want %q", got, want)
		}
	}
	e.must(abi.StatusNotFound, "proxy_enqueue_shared_queue", 9999, np, nn)
	e.must(abi.StatusNotFound, "proxy_dequeue_shared_queue", 9999, ret, ret+4)
	e.must(abi.StatusInvalidMemoryAccess, "proxy_enqueue_shared_queue", uint64(qid), bad, 10)
	e.must(abi.StatusInvalidMemoryAccess, "proxy_register_shared_queue", np, nn, bad)
	e.must(abi.StatusInvalidMemoryAccess, "proxy_resolve_shared_queue", bad, 3, np, nn, id2)
}

func TestHostCall_Metrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newABIEnv(t, Config{Registerer: reg}, PluginSpec{Name: "m"})
	define := func(typ uint32, name string) uint32 {
		p, n := e.str(name)
		id := e.out(1)
		e.must(abi.StatusOK, "proxy_define_metric", uint64(typ), p, n, id)
		return e.u32(id)
	}
	counter := define(abi.MetricCounter, "hits.total")
	gauge := define(abi.MetricGauge, "in_flight")
	hist := define(abi.MetricHistogram, "latency_ms")
	if again := define(abi.MetricCounter, "hits.total"); again != counter {
		t.Errorf("defining again gave id %d, want %d", again, counter)
	}
	p, n := e.str("hits.total")
	id := e.out(1)
	e.must(abi.StatusBadArgument, "proxy_define_metric", uint64(abi.MetricGauge), p, n, id) // other type
	e.must(abi.StatusBadArgument, "proxy_define_metric", 3, p, n, id)

	e.must(abi.StatusOK, "proxy_increment_metric", uint64(counter), 5)
	e.must(abi.StatusBadArgument, "proxy_increment_metric", uint64(counter), uint64(1<<64-1)) // -1
	e.must(abi.StatusOK, "proxy_record_metric", uint64(counter), 9)
	e.must(abi.StatusBadArgument, "proxy_record_metric", uint64(counter), 3)
	e.must(abi.StatusOK, "proxy_increment_metric", uint64(gauge), 10)
	e.must(abi.StatusOK, "proxy_increment_metric", uint64(gauge), uint64(1<<64-3)) // -3
	e.must(abi.StatusOK, "proxy_record_metric", uint64(hist), 7)
	e.must(abi.StatusOK, "proxy_record_metric", uint64(hist), 70)
	e.must(abi.StatusBadArgument, "proxy_increment_metric", uint64(hist), 1)
	e.must(abi.StatusNotFound, "proxy_increment_metric", 9999, 1)

	val := e.put(make([]byte, 8))
	e.must(abi.StatusOK, "proxy_get_metric", uint64(counter), val)
	if e.u64(val) != 9 {
		t.Errorf("counter = %d, want 9", e.u64(val))
	}
	e.must(abi.StatusOK, "proxy_get_metric", uint64(gauge), val)
	if e.u64(val) != 7 {
		t.Errorf("gauge = %d, want 7", e.u64(val))
	}
	e.must(abi.StatusBadArgument, "proxy_get_metric", uint64(hist), val)
	e.must(abi.StatusInvalidMemoryAccess, "proxy_get_metric", uint64(counter), bad)

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	got := map[string]string{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var plugin string
			for _, l := range m.GetLabel() {
				if l.GetName() == "plugin" {
					plugin = l.GetValue()
				}
			}
			switch {
			case m.GetCounter() != nil:
				got[mf.GetName()] = plugin + " " + ftoa(m.GetCounter().GetValue())
			case m.GetGauge() != nil:
				got[mf.GetName()] = plugin + " " + ftoa(m.GetGauge().GetValue())
			case m.GetHistogram() != nil:
				got[mf.GetName()] = plugin + " " + ftoa(float64(m.GetHistogram().GetSampleCount())) + " " + ftoa(m.GetHistogram().GetSampleSum())
			}
		}
	}
	for name, want := range map[string]string{
		"wedge_hits_total": "m 9",
		"wedge_in_flight":  "m 7",
		"wedge_latency_ms": "m 2 77",
		"wedge_plugin_vms": "m 1",
	} {
		if got[name] != want {
			t.Errorf("%s = %q, want %q", name, got[name], want)
		}
	}
}

func TestHostCall_HTTPCall(t *testing.T) {
	d := &fakeDispatcher{status: 204, body: "ok", known: map[string]bool{"auth": true}}
	e := newABIEnv(t, Config{Dispatcher: d}, PluginSpec{})
	call := func(upstream string, headers []byte, body string, timeout uint32) (abi.Status, uint32) {
		up, un := e.str(upstream)
		hp := e.put(headers)
		bp, bn := e.str(body)
		id := e.out(1)
		st, err := e.call("proxy_http_call", up, un, hp, uint64(len(headers)), bp, bn, 0, 0, uint64(timeout), id)
		if err != nil {
			t.Fatal(err)
		}
		return st, e.u32(id)
	}
	h := serialize(":method", "POST", ":path", "/check?q=1", ":authority", "auth.local", "x-key", "k")
	st, id := call("auth", h, "payload", 1500)
	if st != abi.StatusOK || id == 0 {
		t.Fatalf("http call = %v, id %d", st, id)
	}
	deadline := time.Now().Add(5 * time.Second)
	for d.n.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	d.mu.Lock()
	got := d.calls[0]
	d.mu.Unlock()
	if got.upstream != "auth" || got.req.Method != "POST" || got.req.Target != "/check?q=1" || got.req.Host != "auth.local" ||
		got.req.Header.Get("x-key") != "k" || string(got.body) != "payload" || got.timeout != 1500*time.Millisecond {
		t.Errorf("dispatched %+v %+v", got, got.req)
	}
	if st, _ := call("nowhere", h, "", 0); st != abi.StatusBadArgument {
		t.Errorf("unknown upstream = %v, want BAD_ARGUMENT", st)
	}
	if st, _ := call("auth", serialize(":method", "GET", ":authority", "a"), "", 0); st != abi.StatusBadArgument {
		t.Errorf("missing :path = %v, want BAD_ARGUMENT", st)
	}
	if st, _ := call("auth", []byte{1, 2}, "", 0); st != abi.StatusBadArgument {
		t.Errorf("malformed headers = %v, want BAD_ARGUMENT", st)
	}
	id1 := e.out(1)
	e.must(abi.StatusInvalidMemoryAccess, "proxy_http_call", bad, 4, 0, 0, 0, 0, 0, 0, 0, id1)

	e2 := newABIEnv(t, Config{}, PluginSpec{})
	up, un := e2.str("auth")
	hp := e2.put(h)
	id2 := e2.out(1)
	e2.must(abi.StatusInternalFailure, "proxy_http_call", up, un, hp, uint64(len(h)), 0, 0, 0, 0, 0, id2)
}

func TestHostCall_Unimplemented(t *testing.T) {
	e := newABIEnv(t, Config{}, PluginSpec{})
	e.must(abi.StatusUnimplemented, "proxy_grpc_call", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	e.must(abi.StatusUnimplemented, "proxy_grpc_stream", 0, 0, 0, 0, 0, 0, 0, 0, 0)
	e.must(abi.StatusUnimplemented, "proxy_grpc_send", 1, 0, 0, 0)
	e.must(abi.StatusUnimplemented, "proxy_grpc_cancel", 1)
	e.must(abi.StatusUnimplemented, "proxy_grpc_close", 1)
}

func TestHostCall_Contexts(t *testing.T) {
	e := newABIEnv(t, Config{}, PluginSpec{})
	e.must(abi.StatusOK, "proxy_set_effective_context", uint64(abi.RootContextID))
	e.must(abi.StatusOK, "proxy_set_effective_context", uint64(e.sp.id))
	e.must(abi.StatusBadArgument, "proxy_set_effective_context", 999)
	e.must(abi.StatusNotFound, "proxy_done") // nothing pending
	ret := e.out(3)
	e.must(abi.StatusOK, "proxy_get_status", ret, ret+4, ret+8)
	e.must(abi.StatusInvalidMemoryAccess, "proxy_get_status", ret, bad, ret+8)
}

func TestHostCall_ForeignFunction(t *testing.T) {
	var gotStream *Stream
	e := newABIEnv(t, Config{ForeignFunctions: map[string]ForeignFunction{
		"wedge_echo": func(c *ForeignCall, args []byte) ([]byte, error) {
			gotStream = c.Stream
			return append([]byte("echo:"), args...), nil
		},
		"wedge_fail": func(*ForeignCall, []byte) ([]byte, error) { return nil, errBoom },
	}}, PluginSpec{})
	np, nn := e.str("wedge_echo")
	ap, an := e.str("hi")
	ret := e.out(2)
	e.must(abi.StatusOK, "proxy_call_foreign_function", np, nn, ap, an, ret, ret+4)
	if got := string(e.result(ret)); got != "echo:hi" || gotStream != e.s {
		t.Errorf("wedge_echo = %q (stream %p, want %p)", got, gotStream, e.s)
	}
	fp, fn := e.str("wedge_fail")
	e.must(abi.StatusInternalFailure, "proxy_call_foreign_function", fp, fn, ap, an, ret, ret+4)
	up, un := e.str("declare_property")
	e.must(abi.StatusNotFound, "proxy_call_foreign_function", up, un, ap, an, ret, ret+4)
	e.must(abi.StatusInvalidMemoryAccess, "proxy_call_foreign_function", np, nn, bad, 10, ret, ret+4)

	if _, err := New(context.Background(), Config{ForeignFunctions: map[string]ForeignFunction{"echo": nil}}); err == nil {
		t.Error("New accepted a foreign function not named wedge_*")
	}
}

func TestHostCall_GetConfiguration(t *testing.T) {
	e := newABIEnv(t, Config{}, PluginSpec{Configuration: []byte("cfg")})
	ret := e.out(2)
	e.must(abi.StatusOK, "proxy_get_configuration", ret, ret+4)
	if got := string(e.result(ret)); got != "cfg" {
		t.Errorf("configuration = %q", got)
	}
}

// TestHostCall_AllocatorFailure checks that an allocator returning 0 makes
// the host call answer INVALID_MEMORY_ACCESS instead of writing at 0.
func TestHostCall_AllocatorFailure(t *testing.T) {
	e := newABIEnv(t, Config{}, PluginSpec{MemoryLimitBytes: 192 << 10})
	body := make([]byte, 150<<10)
	e.s.reqBody = &memBody{b: body}
	ret := e.out(2)
	e.must(abi.StatusInvalidMemoryAccess, "proxy_get_buffer_bytes", uint64(abi.BufferHTTPRequestBody), 0, uint64(len(body)), ret, ret+4)
	if !e.vm().lim.refused.Load() {
		t.Error("the memory cap did not refuse the growth")
	}
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// TestHostCall_WASI checks the WASI calls the spec lists: real clocks,
// randomness from the host, and stdout turned into log records.
func TestHostCall_WASI(t *testing.T) {
	rec := &recorder{level: slog.LevelInfo}
	e := newABIEnv(t, Config{Logger: slog.New(rec)}, PluginSpec{})
	ts := e.put(make([]byte, 8))
	before := time.Now().UnixNano()
	e.must(abi.Status(abi.ErrnoSuccess), "wasi_clock_time_get", 0, 1, ts) // REALTIME
	if got := int64(e.u64(ts)); got < before || got > time.Now().UnixNano() {
		t.Errorf("realtime clock = %d, want about %d", got, before)
	}
	e.must(abi.Status(abi.ErrnoSuccess), "wasi_clock_time_get", 1, 1, ts) // MONOTONIC
	e.must(abi.Status(abi.ErrnoFault), "wasi_clock_time_get", 0, 1, bad)

	r1, r2 := e.put(make([]byte, 32)), e.put(make([]byte, 32))
	e.must(abi.Status(abi.ErrnoSuccess), "wasi_random_get", r1, 32)
	e.must(abi.Status(abi.ErrnoSuccess), "wasi_random_get", r2, 32)
	b1, _ := e.vm().mem.Read(uint32(r1), 32)
	b2, _ := e.vm().mem.Read(uint32(r2), 32)
	if bytes.Equal(b1, b2) || bytes.Equal(b1, make([]byte, 32)) {
		t.Errorf("random_get gave %x and %x", b1, b2)
	}

	msg := e.put([]byte("line one\nline two\n"))
	iov := e.put([]byte{byte(msg), byte(msg >> 8), byte(msg >> 16), byte(msg >> 24), 18, 0, 0, 0})
	n := e.out(1)
	e.must(abi.Status(abi.ErrnoSuccess), "wasi_fd_write", 1, iov, 1, n)
	for _, line := range []string{"line one", "line two"} {
		if r, ok := rec.find(line); !ok || r.Level != slog.LevelInfo {
			t.Errorf("stdout line %q: %v, %v", line, r, ok)
		}
	}
}
