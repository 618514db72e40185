package main

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// fakeStore stands in for Wedge's wedge_cache_* host calls in the
// emulator: the same wire format (sdk/README.md), a map for a store.
type fakeStore struct {
	entries []*fakeEntry
	nextID  uint64
	// per request, set by the calls:
	req       [][2]string
	serving   *fakeEntry
	storeKey  string
	refreshes int
	passes    []string // keys given to wedge_cache_pass
}

type fakeEntry struct {
	entry
	key     string
	vary    []string
	variant string
	body    string
}

func (f *fakeStore) variant(vary []string, req [][2]string) string {
	var parts []string
	for _, n := range vary {
		parts = append(parts, strings.Join(Header(req).Values(n), ", "))
	}
	return strings.Join(parts, "\x00")
}

func varyOf(h [][2]string) []string {
	var out []string
	for _, v := range Header(h).Values("vary") {
		for _, n := range strings.Split(v, ",") {
			out = append(out, strings.ToLower(strings.TrimSpace(n)))
		}
	}
	return out
}

func (f *fakeStore) register(host proxytest.HostEmulator) {
	js := func(v any) []byte { b, _ := json.Marshal(v); return b }
	host.RegisterForeignFunction("wedge_cache_lookup", func(args []byte) []byte {
		var a struct{ Key string }
		json.Unmarshal(args, &a)
		out := struct {
			Entries []entry `json:"entries"`
		}{Entries: []entry{}}
		for i := len(f.entries) - 1; i >= 0; i-- {
			e := f.entries[i]
			if e.key == a.Key && e.variant == f.variant(e.vary, f.req) {
				out.Entries = append(out.Entries, e.entry)
			}
		}
		return js(out)
	})
	find := func(id uint64) *fakeEntry {
		for _, e := range f.entries {
			if e.ID == id {
				return e
			}
		}
		return nil
	}
	host.RegisterForeignFunction("wedge_cache_serve", func(args []byte) []byte {
		var a struct{ ID uint64 }
		json.Unmarshal(args, &a)
		f.serving = find(a.ID)
		return js(map[string]bool{"ok": f.serving != nil})
	})
	host.RegisterForeignFunction("wedge_cache_store", func(args []byte) []byte {
		var a struct{ Key string }
		json.Unmarshal(args, &a)
		f.storeKey = a.Key
		return []byte(`{}`)
	})
	host.RegisterForeignFunction("wedge_cache_invalidate", func(args []byte) []byte {
		var a struct{ Keys []string }
		json.Unmarshal(args, &a)
		f.entries = slices.DeleteFunc(f.entries, func(e *fakeEntry) bool { return slices.Contains(a.Keys, e.key) })
		return []byte(`{"purged":0}`)
	})
	host.RegisterForeignFunction("wedge_cache_freshen", func(args []byte) []byte {
		var a struct{ ID uint64 }
		json.Unmarshal(args, &a)
		f.serving = find(a.ID) // the host merges the 304's fields (proxy tests check that)
		if f.serving == nil {
			return []byte(`{"ok":false}`)
		}
		return js(map[string]any{"ok": true, "entry": f.serving.entry})
	})
	host.RegisterForeignFunction("wedge_cache_fill", func([]byte) []byte { return []byte(`{"fill":"lead"}`) })
	host.RegisterForeignFunction("wedge_cache_fallback", func([]byte) []byte { return []byte(`{"ok":true}`) })
	host.RegisterForeignFunction("wedge_cache_refresh", func([]byte) []byte { f.refreshes++; return []byte(`{"started":true}`) })
	host.RegisterForeignFunction("wedge_cache_pass", func(args []byte) []byte {
		var a struct {
			Key   string `json:"key"`
			ForMS int64  `json:"for_ms"`
		}
		json.Unmarshal(args, &a)
		f.passes = append(f.passes, a.Key)
		return []byte(`{}`)
	})
}

// put stores what the emulated response phases produced, as the host does
// after them.
func (f *fakeStore) put(key string, status int, hdr [][2]string, body string) {
	f.nextID++
	now := time.Now().UnixMilli()
	e := &fakeEntry{key: key, vary: varyOf(hdr), body: body}
	e.variant = f.variant(e.vary, f.req)
	f.entries = slices.DeleteFunc(f.entries, func(o *fakeEntry) bool { return o.key == key && o.variant == e.variant })
	e.entry = entry{ID: f.nextID, Status: status, Headers: withoutPseudoFields(hdr), ReqTime: now, RespTime: now, Size: int64(len(body))}
	f.entries = append(f.entries, e)
}

func withoutPseudoFields(h [][2]string) [][2]string {
	var out [][2]string
	for _, p := range h {
		if !strings.HasPrefix(p[0], ":") {
			out = append(out, p)
		}
	}
	return out
}

// TestFilter_Native runs the scenarios of wasm_test.go through the filter
// in proxy-wasm-go-sdk's emulator, with fakeStore for the host's store and
// the origin handler called in between the phases. The two that need the
// host's own work (the background revalidation of stale-while-revalidate,
// the 304 merge) are checked for the calls the filter makes.
func TestFilter_Native(t *testing.T) {
	log.SetOutput(io.Discard) // the emulator logs every foreign call
	defer log.SetOutput(os.Stderr)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	o := newOrigin()
	for _, sc := range scenarios() {
		o.answers[sc.path] = sc.answer
	}
	fs := &fakeStore{}
	opt := proxytest.NewEmulatorOption().WithVMContext(&vmContext{}).
		WithProperty([]string{"wedge", "upstream"}, []byte("app"))
	host, reset := proxytest.NewHostEmulator(opt)
	defer reset()
	fs.register(host)
	if host.StartPlugin() != types.OnPluginStartStatusOK {
		t.Fatal("the plugin did not start")
	}
	for _, sc := range scenarios() {
		t.Run(sc.sec+" "+sc.name, func(t *testing.T) {
			if hostOnly[sc.path] {
				t.Skip("needs the host's 304 merge (TestFilter_Wasm runs it)")
			}
			for i, st := range sc.steps {
				method := st.method
				if method == "" {
					method = "GET"
				}
				req := [][2]string{{":method", method}, {":path", sc.path}, {":authority", "example.com"}, {":scheme", "http"}}
				for _, l := range st.header {
					k, v, _ := strings.Cut(l, ": ")
					req = append(req, [2]string{strings.ToLower(k), v})
				}
				fs.req, fs.serving, fs.storeKey = req, nil, ""
				id := host.InitializeHttpContext()
				host.CallOnRequestHeaders(id, req, method != "POST")
				status, body, cs, age := 0, "", "", ""
				if lr := host.GetSentLocalResponse(id); lr != nil {
					status, cs = int(lr.StatusCode), Header(lr.Headers).Get("cache-status")
					age = Header(lr.Headers).Get("age")
					if fs.serving != nil {
						body = fs.serving.body
					}
				} else {
					// the origin, with the request as the filter left it
					hr := httptest.NewRequest(method, sc.path, nil)
					for _, p := range host.GetCurrentRequestHeaders(id) {
						if !strings.HasPrefix(p[0], ":") {
							hr.Header.Add(p[0], p[1])
						}
					}
					rec := httptest.NewRecorder()
					o.ServeHTTP(rec, hr)
					resp := [][2]string{{":status", strconv.Itoa(rec.Code)}, {"date", time.Now().UTC().Format(http.TimeFormat)}}
					for k, vs := range rec.Header() {
						for _, v := range vs {
							resp = append(resp, [2]string{strings.ToLower(k), v})
						}
					}
					host.CallOnResponseHeaders(id, resp, true)
					if lr := host.GetSentLocalResponse(id); lr != nil { // revalidated, or stale-if-error
						status, cs = int(lr.StatusCode), Header(lr.Headers).Get("cache-status")
						age = Header(lr.Headers).Get("age")
						if fs.serving != nil {
							body = fs.serving.body
						}
					} else {
						out := host.GetCurrentResponseHeaders(id)
						status, body, cs = rec.Code, rec.Body.String(), Header(out).Get("cache-status")
						if fs.storeKey != "" {
							fs.put(fs.storeKey, rec.Code, out, body)
						}
					}
				}
				host.CompleteHttpContext(id)
				want := st.status
				if want == 0 {
					want = 200
				}
				if status != want {
					t.Fatalf("step %d: status %d, want %d", i, status, want)
				}
				if !strings.HasPrefix(cs, st.cs) {
					t.Errorf("step %d: Cache-Status %q, want %q...", i, cs, st.cs)
				}
				if st.body != "" && method != "HEAD" && body != st.body {
					t.Errorf("step %d: body %q, want %q", i, body, st.body)
				}
				if st.origin >= 0 && o.count(sc.path) != st.origin {
					t.Errorf("step %d: the origin got %d requests, want %d", i, o.count(sc.path), st.origin)
				}
				if st.age && age == "" {
					t.Errorf("step %d: no Age field", i)
				}
				if st.upField != "" {
					k, v, _ := strings.Cut(st.upField, ": ")
					if got := o.lastHeader(sc.path).Get(k); got != v {
						t.Errorf("step %d: the origin saw %s: %q, want %q", i, k, got, v)
					}
				}
			}
		})
	}
	if fs.refreshes != 1 {
		t.Errorf("wedge_cache_refresh called %d times, want once (the stale-while-revalidate hit)", fs.refreshes)
	}
}
