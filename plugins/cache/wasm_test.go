package main

import (
	"cmp"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/sdk/wedgetest"
)

// origin is an upstream whose answer per path the test sets, counting
// the requests each path gets and remembering the last one's fields.
type origin struct {
	mu      sync.Mutex
	answers map[string]func(w http.ResponseWriter, r *http.Request, n int)
	hits    map[string]int
	last    map[string]http.Header
}

func newOrigin() *origin {
	return &origin{answers: map[string]func(http.ResponseWriter, *http.Request, int){}, hits: map[string]int{}, last: map[string]http.Header{}}
}

func (o *origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.hits[r.URL.Path]++
	n := o.hits[r.URL.Path]
	o.last[r.URL.Path] = r.Header.Clone()
	f := o.answers[r.URL.Path]
	o.mu.Unlock()
	if f == nil {
		http.Error(w, "no answer", 404)
		return
	}
	f(w, r, n)
}

func (o *origin) count(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hits[path]
}

func (o *origin) lastHeader(path string) http.Header {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.last[path]
}

// fixed answers every request with the fields hdr ("name: value" lines)
// and a body naming the request's number ("v1", "v2", ...).
func fixed(status int, hdr ...string) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		for _, l := range hdr {
			k, v, _ := strings.Cut(l, ": ")
			w.Header().Add(k, v)
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, "v%d", n)
	}
}

// step is one request of a scenario and what must come of it.
type step struct {
	method  string
	header  []string // "name: value"
	status  int      // default 200
	cs      string   // Cache-Status prefix the client gets
	hostCS  string   // ... in Wedge, where the host answers for the filter (hit-for-pass), if it differs
	body    string   // "" skips the check
	origin  int      // requests the origin got for the path so far
	age     bool     // an Age field must be present
	upField string   // "name: value" the origin must have seen on the last request
}

type scenario struct {
	sec, name, path string
	answer          func(http.ResponseWriter, *http.Request, int)
	steps           []step
}

// hostOnly are the scenarios (by path) that need the host's own work (the
// 304 merge of wedge_cache_freshen), which the emulator's fakeStore does
// not do: TestFilter_Wasm runs them, TestFilter_Native does not.
var hostOnly = map[string]bool{"/reval-60": true}

func scenarios() []scenario {
	old := time.Now().Add(-240 * time.Hour).UTC().Format(http.TimeFormat)
	return []scenario{
		{"§3, §4", "miss stored, then hit with Age", "/fresh", fixed(200, "Cache-Control: max-age=60"), []step{
			{cs: "wedge; fwd=uri-miss; fwd-status=200; stored", body: "v1", origin: 1},
			{cs: "wedge; hit; ttl=", body: "v1", origin: 1, age: true},
			{method: "HEAD", cs: "wedge; hit", origin: 1, age: true},
		}},
		{"§5.2.2.5", "no-store is not stored", "/nostore", fixed(200, "Cache-Control: no-store"), []step{
			{cs: "wedge; fwd=uri-miss; fwd-status=200; detail=no-store", body: "v1", origin: 1},
			{cs: "wedge; fwd=uri-miss", hostCS: "wedge; fwd=bypass; detail=hit-for-pass; fwd-status=200", body: "v2", origin: 2},
			{header: []string{"Cache-Control: max-age=5"}, cs: "wedge; fwd=uri-miss; fwd-status=200; detail=no-store", body: "v3", origin: 3},
		}},
		{"§5.2.2.7", "private is not stored by a shared cache", "/private", fixed(200, "Cache-Control: private, max-age=60"), []step{
			{cs: "wedge; fwd=uri-miss; fwd-status=200; detail=private", origin: 1},
			{body: "v2", origin: 2},
		}},
		{"§3.5", "a request with Authorization is not stored", "/auth", fixed(200, "Cache-Control: max-age=60"), []step{
			{header: []string{"Authorization: Bearer x"}, cs: "wedge; fwd=uri-miss; fwd-status=200; detail=authorization", origin: 1},
			{body: "v2", origin: 2, cs: "wedge; fwd=uri-miss; fwd-status=200; stored"},
			{header: []string{"Authorization: Bearer x"}, body: "v2", cs: "wedge; hit", origin: 2},
		}},
		{"§3.5", "Authorization with public is stored", "/authpub", fixed(200, "Cache-Control: public, max-age=60"), []step{
			{header: []string{"Authorization: Bearer x"}, cs: "wedge; fwd=uri-miss; fwd-status=200; stored", origin: 1},
			{header: []string{"Authorization: Bearer x"}, cs: "wedge; hit", body: "v1", origin: 1},
		}},
		{"§7.3", "Set-Cookie is not stored (configuration default)", "/cookie", fixed(200, "Cache-Control: max-age=60", "Set-Cookie: s=1"), []step{
			{cs: "wedge; fwd=uri-miss; fwd-status=200; detail=set-cookie", origin: 1},
			{origin: 2},
		}},
		{"§4.1", "Vary: one variant per Accept-Language", "/vary", fixed(200, "Cache-Control: max-age=60", "Vary: Accept-Language"), []step{
			{header: []string{"Accept-Language: en"}, cs: "wedge; fwd=uri-miss; fwd-status=200; stored", body: "v1", origin: 1},
			{header: []string{"Accept-Language: fr"}, cs: "wedge; fwd=uri-miss; fwd-status=200; stored", body: "v2", origin: 2},
			{header: []string{"Accept-Language: en"}, cs: "wedge; hit", body: "v1", origin: 2},
			{header: []string{"Accept-Language: fr"}, cs: "wedge; hit", body: "v2", origin: 2},
			{cs: "wedge; fwd=uri-miss", body: "v3", origin: 3},
		}},
		{"§4.3.1, §4.3.3, §4.3.4", "stale: revalidated with If-None-Match, 304 freshens", "/reval", func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Cache-Control", "max-age=0")
			w.Header().Set("ETag", `"e1"`)
			if r.Header.Get("If-None-Match") == `"e1"` {
				w.Header().Set("X-Fresh", fmt.Sprint(n))
				w.WriteHeader(304)
				return
			}
			fmt.Fprintf(w, "v%d", n)
		}, []step{
			{cs: "wedge; fwd=uri-miss; fwd-status=200; stored", body: "v1", origin: 1},
			{cs: "wedge; fwd=stale; fwd-status=304", body: "v1", origin: 2, upField: `If-None-Match: "e1"`, age: true},
			{cs: "wedge; fwd=stale; fwd-status=304", body: "v1", origin: 3},
		}},
		{"§4.3.4", "a 304 that gives a lifetime makes the entry fresh again", "/reval-60", func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("ETag", `"f1"`)
			if r.Header.Get("If-None-Match") == `"f1"` {
				w.Header().Set("Cache-Control", "max-age=60")
				w.WriteHeader(304)
				return
			}
			w.Header().Set("Cache-Control", "max-age=0")
			fmt.Fprintf(w, "v%d", n)
		}, []step{
			{cs: "wedge; fwd=uri-miss; fwd-status=200; stored", body: "v1", origin: 1},
			{cs: "wedge; fwd=stale; fwd-status=304", body: "v1", origin: 2},
			{cs: "wedge; hit; ttl=", body: "v1", origin: 2, age: true},
			{method: "HEAD", cs: "wedge; hit; ttl=", origin: 2},
		}},
		{"§4.3.1", "revalidation with If-Modified-Since; a 200 replaces the entry", "/reval-lm", func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Cache-Control", "max-age=0")
			w.Header().Set("Last-Modified", old)
			if n == 2 && r.Header.Get("If-Modified-Since") == old {
				w.WriteHeader(304)
				return
			}
			fmt.Fprintf(w, "v%d", n)
		}, []step{
			{body: "v1", origin: 1},
			{cs: "wedge; fwd=stale; fwd-status=304", body: "v1", origin: 2, upField: "If-Modified-Since: " + old},
			{cs: "wedge; fwd=stale; fwd-status=200; stored", body: "v3", origin: 3},
		}},
		{"§5.2.1.4", "request no-cache goes upstream (conditionally)", "/reqnocache", fixed(200, "Cache-Control: max-age=60", `ETag: "x"`), []step{
			{body: "v1", origin: 1},
			{header: []string{"Cache-Control: no-cache"}, cs: "wedge; fwd=request; fwd-status=200; stored", body: "v2", origin: 2, upField: `If-None-Match: "x"`},
			{cs: "wedge; hit", body: "v2", origin: 2},
		}},
		{"§5.2.1.7", "only-if-cached without a stored response: 504", "/onlyif", fixed(200, "Cache-Control: max-age=60"), []step{
			{header: []string{"Cache-Control: only-if-cached"}, status: 504, cs: "wedge; fwd=uri-miss; detail=only-if-cached", origin: 0},
		}},
		{"§4.4", "POST invalidates the target URI", "/inv", func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Cache-Control", "max-age=60")
			fmt.Fprintf(w, "%s v%d", r.Method, n)
		}, []step{
			{body: "GET v1", origin: 1},
			{cs: "wedge; hit", body: "GET v1", origin: 1},
			{method: "POST", body: "POST v2", origin: 2},
			{cs: "wedge; fwd=uri-miss", body: "GET v3", origin: 3},
		}},
		{"§4.4", "a POST with an error status invalidates nothing", "/inv-err", func(w http.ResponseWriter, r *http.Request, n int) {
			if r.Method == "POST" {
				w.WriteHeader(500)
				return
			}
			w.Header().Set("Cache-Control", "max-age=60")
			fmt.Fprintf(w, "v%d", n)
		}, []step{
			{body: "v1", origin: 1},
			{method: "POST", status: 500, origin: 2},
			{cs: "wedge; hit", body: "v1", origin: 2},
		}},
		{"§4.2.2", "heuristic freshness from Last-Modified", "/heur", fixed(200, "Last-Modified: "+old), []step{
			{cs: "wedge; fwd=uri-miss; fwd-status=200; stored", body: "v1", origin: 1},
			{cs: "wedge; hit", body: "v1", origin: 1},
		}},
		{"§4.2.3, §4.2", "an upstream Age past max-age: stored stale, revalidated", "/aged", fixed(200, "Cache-Control: max-age=60", "Age: 100", `ETag: "a"`), []step{
			{body: "v1", origin: 1},
			{cs: "wedge; fwd=stale", body: "v2", origin: 2},
		}},
		{"RFC 5861 §4", "stale-if-error: a 503 from the upstream serves the stale response", "/sie", func(w http.ResponseWriter, r *http.Request, n int) {
			if n > 1 {
				w.WriteHeader(503)
				return
			}
			w.Header().Set("Cache-Control", "max-age=1, stale-if-error=600")
			w.Header().Set("Age", "5")
			fmt.Fprintf(w, "v%d", n)
		}, []step{
			{body: "v1", origin: 1},
			{cs: "wedge; fwd=stale; fwd-status=503; detail=stale-if-error", body: "v1", origin: 2, age: true},
		}},
		{"RFC 5861 §4, §4.2.4", "must-revalidate: no stale-if-error", "/sie-mr", func(w http.ResponseWriter, r *http.Request, n int) {
			if n > 1 {
				w.WriteHeader(503)
				return
			}
			w.Header().Set("Cache-Control", "max-age=1, must-revalidate, stale-if-error=600")
			w.Header().Set("Age", "5")
			fmt.Fprintf(w, "v%d", n)
		}, []step{
			{body: "v1", origin: 1},
			{status: 503, origin: 2},
		}},
		{"RFC 5861 §3", "stale-while-revalidate: stale served at once, revalidated in the background", "/swr", func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Cache-Control", "max-age=1, stale-while-revalidate=600")
			w.Header().Set("Age", "5")
			w.Header().Set("ETag", `"s"`)
			if r.Header.Get("If-None-Match") == `"s"` {
				w.WriteHeader(304)
				return
			}
			fmt.Fprintf(w, "v%d", n)
		}, []step{
			{body: "v1", origin: 1},
			{cs: "wedge; hit; detail=stale-while-revalidate", body: "v1", origin: -1},
		}},
	}
}

func loadCache(t *testing.T, o *origin, config string) *wedgetest.Harness {
	t.Helper()
	wasm, err := os.ReadFile("cache.wasm")
	if err != nil {
		t.Fatalf("cache.wasm is built from this directory (see main.go): %v", err)
	}
	h, err := wedgetest.New(t, wasm, wedgetest.Options{
		Name:      "cache",
		Config:    []byte(config),
		Upstreams: map[string]http.Handler{"app": o},
	})
	if err != nil {
		t.Fatalf("loading cache.wasm: %v", err)
	}
	return h
}

// TestFilter_Wasm runs the scenarios through cache.wasm in the real Wedge,
// with the host's store.
func TestFilter_Wasm(t *testing.T) {
	o := newOrigin()
	h := loadCache(t, o, "")
	for _, sc := range scenarios() {
		o.answers[sc.path] = sc.answer
	}
	for _, sc := range scenarios() {
		t.Run(sc.sec+" "+sc.name, func(t *testing.T) {
			for i, st := range sc.steps {
				req := wedgetest.Request{Method: st.method, Path: sc.path, Header: http.Header{}}
				if req.Method == "POST" {
					req.Body = []byte("x")
				}
				for _, l := range st.header {
					k, v, _ := strings.Cut(l, ": ")
					req.Header.Add(k, v)
				}
				res := h.Do(req)
				want := st.status
				if want == 0 {
					want = 200
				}
				if res.Status != want {
					t.Fatalf("step %d: status %d (%s), want %d; logs %v", i, res.Status, res.Failure, want, res.Logs)
				}
				if cs, want := res.Header.Get("Cache-Status"), cmp.Or(st.hostCS, st.cs); !strings.HasPrefix(cs, want) {
					t.Errorf("step %d: Cache-Status %q, want %q...", i, cs, want)
				}
				if st.body != "" && string(res.Body) != st.body {
					t.Errorf("step %d: body %q, want %q", i, res.Body, st.body)
				}
				if st.origin >= 0 {
					if n := o.count(sc.path); n != st.origin {
						t.Errorf("step %d: the origin got %d requests, want %d", i, n, st.origin)
					}
				}
				if st.age && res.Header.Get("Age") == "" {
					t.Errorf("step %d: no Age field (RFC 9111 §5.1) in %v", i, res.Header)
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
	// RFC 5861 §3: the background revalidation reached the origin.
	deadline := time.Now().Add(5 * time.Second)
	for o.count("/swr") < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := o.count("/swr"); n != 2 {
		t.Errorf("stale-while-revalidate: the origin got %d requests, want 2 (one background revalidation)", n)
	} else if got := o.lastHeader("/swr").Get("If-None-Match"); got != `"s"` {
		t.Errorf("the background revalidation sent If-None-Match %q", got)
	}
	if n := h.Metric("wedge_cache_hits_total"); n < 10 {
		t.Errorf("wedge_cache_hits_total = %v, want the hits above counted", n)
	}
}

// TestFilter_WasmCollapse: 100 concurrent misses of one key make one
// upstream request; the others wait without holding a VM (the pool has 2)
// and are answered from what it stored.
func TestFilter_WasmCollapse(t *testing.T) {
	o := newOrigin()
	o.answers["/slow"] = func(w http.ResponseWriter, r *http.Request, n int) {
		time.Sleep(300 * time.Millisecond)
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprintf(w, "v%d", n)
	}
	o.answers["/slow-private"] = func(w http.ResponseWriter, r *http.Request, n int) {
		time.Sleep(200 * time.Millisecond)
		w.Header().Set("Cache-Control", "private")
		fmt.Fprintf(w, "v%d", n)
	}
	h := loadCache(t, o, "")
	run := func(path string, n int) map[string]int {
		var wg sync.WaitGroup
		var mu sync.Mutex
		seen := map[string]int{}
		client := &http.Client{Timeout: 30 * time.Second}
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := client.Get(h.URL() + path)
				if err != nil {
					t.Error(err)
					return
				}
				defer resp.Body.Close()
				b := make([]byte, 16)
				k, _ := resp.Body.Read(b)
				cs := resp.Header.Get("Cache-Status")
				if i := strings.Index(cs, "; ttl="); i > 0 {
					cs = cs[:i]
				}
				mu.Lock()
				seen[fmt.Sprintf("%d %s %s", resp.StatusCode, b[:k], cs)]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		return seen
	}
	seen := run("/slow", 100)
	if n := o.count("/slow"); n != 1 {
		t.Errorf("100 concurrent misses made %d upstream requests, want 1 (%v)", n, seen)
	}
	if seen["200 v1 wedge; fwd=uri-miss; fwd-status=200; stored"] != 1 || seen["200 v1 wedge; hit; collapsed"] != 99 {
		t.Errorf("answers: %v", seen)
	}
	// A fill that is not storable resumes the waiters: each goes upstream.
	seen = run("/slow-private", 5)
	if n := o.count("/slow-private"); n < 2 {
		t.Errorf("the waiters of an unstorable fill made %d upstream requests in all, want them to go upstream (%v)", n, seen)
	}
	for k := range seen {
		if !strings.HasPrefix(k, "200 v") {
			t.Errorf("answer %q", k)
		}
	}
	if n := h.Metric("wedge_cache_collapsed_total"); n < 99 {
		t.Errorf("wedge_cache_collapsed_total = %v", n)
	}
}

// TestFilter_WasmUpstreamDown: with stale-if-error, an upstream that
// cannot answer (Wedge's own 502) is replaced by the stored response
// (RFC 5861 §4); without it the client gets the 502.
func TestFilter_WasmUpstreamDown(t *testing.T) {
	o := newOrigin()
	var down sync.Mutex
	isDown := false
	answer := func(cc string) func(http.ResponseWriter, *http.Request, int) {
		return func(w http.ResponseWriter, r *http.Request, n int) {
			down.Lock()
			d := isDown
			down.Unlock()
			if d {
				panic(http.ErrAbortHandler) // the connection closes without a response
			}
			w.Header().Set("Cache-Control", cc)
			w.Header().Set("Age", "10")
			fmt.Fprintf(w, "v%d", n)
		}
	}
	o.answers["/sie"] = answer("max-age=1, stale-if-error=600")
	o.answers["/nosie"] = answer("max-age=1")
	h := loadCache(t, o, "")
	for _, p := range []string{"/sie", "/nosie"} {
		if res := h.Do(wedgetest.Request{Path: p}); res.Status != 200 {
			t.Fatalf("%s: %d", p, res.Status)
		}
	}
	down.Lock()
	isDown = true
	down.Unlock()
	res := h.Do(wedgetest.Request{Path: "/sie"})
	if res.Status != 200 || string(res.Body) != "v1" || res.Header.Get("Cache-Status") != "wedge; hit; detail=stale-if-error" || res.Header.Get("Age") == "" {
		t.Errorf("stale-if-error with the upstream down: %d %q %v (%s)", res.Status, res.Body, res.Header, res.Failure)
	}
	if res := h.Do(wedgetest.Request{Path: "/nosie"}); res.Status != 502 {
		t.Errorf("without stale-if-error: %d, want 502", res.Status)
	}
}

// TestFilter_WasmFreshen: a 304 updates the stored fields (RFC 9111
// §4.3.4) except those the stored body depends on (§3.2).
func TestFilter_WasmFreshen(t *testing.T) {
	o := newOrigin()
	o.answers["/f"] = func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "max-age=0")
		w.Header().Set("ETag", `"f"`)
		w.Header().Set("X-Version", strconv.Itoa(n))
		if r.Header.Get("If-None-Match") == `"f"` {
			w.Header().Set("Content-Length", "999") // must not replace the stored body's length
			w.WriteHeader(304)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "body")
	}
	h := loadCache(t, o, "")
	h.Do(wedgetest.Request{Path: "/f"})
	res := h.Do(wedgetest.Request{Path: "/f"})
	if res.Status != 200 || string(res.Body) != "body" || res.Header.Get("X-Version") != "2" || res.Header.Get("Content-Type") != "text/plain" || res.Header.Get("Content-Length") != "4" {
		t.Errorf("after a 304: %d %q %v", res.Status, res.Body, res.Header)
	}
}

// TestFilter_WasmCollapseRevalidation: concurrent requests for a stale
// entry make one conditional request; its 304 answers them all.
func TestFilter_WasmCollapseRevalidation(t *testing.T) {
	o := newOrigin()
	o.answers["/stale"] = func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Cache-Control", "max-age=0")
		w.Header().Set("ETag", `"z"`)
		if r.Header.Get("If-None-Match") == `"z"` {
			time.Sleep(300 * time.Millisecond)
			w.WriteHeader(304)
			return
		}
		fmt.Fprintf(w, "v%d", n)
	}
	h := loadCache(t, o, "")
	h.Do(wedgetest.Request{Path: "/stale"})
	var wg sync.WaitGroup
	var bad atomic.Int64
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", h.URL()+"/stale", nil)
			req.Host = "example.com" // the key h.Do stored under
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				bad.Add(1)
				return
			}
			b := make([]byte, 8)
			k, _ := resp.Body.Read(b)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b[:k]) != "v1" {
				if bad.Add(1) == 1 {
					t.Logf("got %d %q %v", resp.StatusCode, b[:k], resp.Header)
				}
			}
		}()
	}
	wg.Wait()
	if n := o.count("/stale"); n != 2 {
		t.Errorf("30 concurrent revalidations made %d upstream requests in all, want 2 (the fill and one revalidation)", n)
	}
	if bad.Load() != 0 {
		t.Errorf("%d requests did not get the stored body", bad.Load())
	}
}
