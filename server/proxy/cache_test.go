package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wedgeproxy/wedge/server/internal/cachestore"
	"github.com/wedgeproxy/wedge/server/internal/message"
	"github.com/wedgeproxy/wedge/server/pluginhost"
	"github.com/wedgeproxy/wedge/server/upstream"
)

func newTestCache(t testing.TB) *Cache {
	t.Helper()
	c, err := NewCache(cachestore.Options{}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestCache_Freshen(t *testing.T) {
	c := newTestCache(t)
	now := time.Now()
	stored := message.Header{
		{Name: "Content-Type", Value: "text/html"}, {Name: "Content-Encoding", Value: "gzip"},
		{Name: "ETag", Value: `W/"a"`}, {Name: "Vary", Value: "Accept-Encoding"},
		{Name: "Cache-Control", Value: "max-age=0"}, {Name: "X-A", Value: "1"}, {Name: "X-A", Value: "2"},
	}
	e, err := c.store.Put("k", nil, 200, stored, []message.Section{{Data: []byte("zz")}}, now, now)
	if err != nil {
		t.Fatal(err)
	}
	h304 := message.Header{
		{Name: "Cache-Control", Value: "max-age=60"}, {Name: "ETag", Value: `"a"`}, {Name: "Content-Length", Value: "0"},
		{Name: "x-a", Value: "3"}, {Name: "Date", Value: "Thu, 01 Jan 2026 00:00:00 GMT"},
	}
	got, ok := c.freshen(e.ID, h304, now.Add(time.Second), now.Add(2*time.Second))
	if !ok {
		t.Fatal("entry gone")
	}
	h := got.Header
	switch {
	case h.Get("Cache-Control") != "max-age=60":
		t.Errorf("§4.3.4: Cache-Control not updated: %v", h)
	case h.Get("ETag") != `W/"a"`:
		t.Errorf("§3.2: the ETag of a coded body was replaced: %v", h)
	case h.Count("X-A") != 1 || h.Get("X-A") != "3":
		t.Errorf("§4.3.4: every stored X-A must be replaced: %v", h)
	case h.Has("Content-Length") || h.Get("Content-Encoding") != "gzip" || h.Get("Vary") != "Accept-Encoding":
		t.Errorf("§3.2: fields the body depends on changed: %v", h)
	case !got.ResponseTime.Equal(now.Add(2 * time.Second)):
		t.Errorf("response_time not updated: %v", got.ResponseTime)
	}
}

func TestCurrentAge(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := message.Header{{Name: "Date", Value: t0.Format(http.TimeFormat)}, {Name: "Age", Value: "10"}}
	// RFC 9111 §4.2.3: corrected_age_value = 10 + 1 (response delay), apparent 1; plus 5 resident.
	if got := CurrentAge(h, t0, t0.Add(time.Second), t0.Add(6*time.Second)); got != 16*time.Second {
		t.Errorf("CurrentAge = %v, want 16s", got)
	}
}

func TestCachePurgeHandler(t *testing.T) {
	c := newTestCache(t)
	now := time.Now()
	for _, k := range []string{"http://a/x", "http://a/y", "http://b/z"} {
		if _, err := c.store.Put(k, nil, 200, nil, []message.Section{{Data: []byte(k)}}, now, now); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		method, target string
		status         int
		body           string
	}{
		{"GET", "/cache/purge?all=1", 405, ""},
		{"POST", "/cache/purge", 400, ""},
		{"POST", "/cache/purge?url=http%3A%2F%2Fa%2Fx", 200, `{"purged":1}`},
		{"PURGE", "/cache/purge?url=http%3A%2F%2Fa%2Fx", 200, `{"purged":0}`},
		{"POST", "/cache/purge?prefix=http%3A%2F%2Fb%2F", 200, `{"purged":1}`},
		{"POST", "/cache/purge?all=1", 200, `{"purged":1}`},
	}
	for _, tc := range tests {
		rec := httptest.NewRecorder()
		CachePurgeHandler(c).ServeHTTP(rec, httptest.NewRequest(tc.method, tc.target, nil))
		if rec.Code != tc.status || tc.body != "" && strings.TrimSpace(rec.Body.String()) != tc.body {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.target, rec.Code, rec.Body, tc.status, tc.body)
		}
	}
	rec := httptest.NewRecorder()
	CachePurgeHandler(nil).ServeHTTP(rec, httptest.NewRequest("POST", "/cache/purge?all=1", nil))
	if rec.Code != 404 {
		t.Errorf("no cache: %d, want 404", rec.Code)
	}
}

// FuzzCacheFunctions feeds guest bytes to every wedge_cache_* function
// from a root context: none may panic, each must refuse or answer.
func FuzzCacheFunctions(f *testing.F) {
	for _, s := range []string{`{"key":"http://a/"}`, `{"id":1,"headers":[["a","b"]]}`, `{"keys":["x"]}`, `{"id":1,"upstream":"app"}`, `{`, `[]`, `{"headers":[["bad name","x"]]}`, ""} {
		f.Add([]byte(s))
	}
	c := newTestCache(f)
	h := &Handler{cache: c}
	fns := ForeignFunctions()
	f.Fuzz(func(t *testing.T, args []byte) {
		call := &pluginhost.ForeignCall{Plugin: "cache", Attachment: h}
		for name, fn := range fns {
			if strings.HasPrefix(name, "wedge_cache_") {
				fn(call, args)
			}
		}
	})
}

// TestExchangeState_fastHit: Wedge answers for the cache plugin only what
// the plugin marked (wedge_cache_store's fresh_ms), only while fresh, only
// at that plugin's place, and only for plain GET (and HEAD when allowed);
// a key the plugin passed (wedge_cache_pass) leaves it out.
func TestExchangeState_fastHit(t *testing.T) {
	c := newTestCache(t)
	h := &Handler{cache: c}
	now := time.Now()
	put := func(key string, fast *cachestore.Fast, respTime time.Time, fields ...message.Field) {
		t.Helper()
		hdr := append(message.Header{{Name: "Content-Type", Value: "text/plain"}, {Name: "Cache-Status", Value: "up; hit, wedge; fwd=uri-miss; stored"}}, fields...)
		e, err := c.store.Put(key, nil, 200, hdr, []message.Section{{Data: []byte("body")}}, respTime, respTime)
		if err != nil {
			t.Fatal(err)
		}
		c.setFast(e.ID, fast)
	}
	fast := &cachestore.Fast{Plugin: "cache", Lifetime: time.Minute, Head: true, HitStatus: "wedge; hit"}
	noHead := &cachestore.Fast{Plugin: "cache", Lifetime: time.Minute, HitStatus: "wedge; hit"}
	put("http://example.com/fresh", fast, now)
	put("http://example.com/stale", fast, now.Add(-2*time.Minute))
	put("http://example.com/unmarked", nil, now)
	put("http://example.com/nohead", noHead, now)
	put("http://example.com/aged", fast, now, message.Field{Name: "Age", Value: "70"})
	if _, err := cachePassFn(&pluginhost.ForeignCall{Plugin: "cache", Attachment: h}, []byte(`{"key":"http://example.com/passed","for_ms":60000,"status":"wedge; fwd=bypass"}`)); err == nil {
		t.Fatal("wedge_cache_pass outside a stream was accepted")
	}
	c.passes.Add("http://example.com/passed", cachePass{plugin: "cache", until: now.Add(time.Minute), status: "wedge; fwd=bypass"})
	c.passes.Add("http://example.com/expired", cachePass{plugin: "cache", until: now.Add(-time.Second), status: "wedge; fwd=bypass"})

	tests := []struct {
		name, plugin, method, target string
		header                       []string
		hit, skip                    bool
	}{
		{"fresh GET", "cache", "GET", "/fresh", nil, true, false},
		{"fresh HEAD", "cache", "HEAD", "/fresh", nil, true, false},
		{"another plugin's place", "router", "GET", "/fresh", nil, false, false},
		{"POST", "cache", "POST", "/fresh", nil, false, false},
		{"stale: the plugin decides", "cache", "GET", "/stale", nil, false, false},
		{"Age past the lifetime (§4.2.3)", "cache", "GET", "/aged", nil, false, false},
		{"not marked", "cache", "GET", "/unmarked", nil, false, false},
		{"HEAD not allowed", "cache", "HEAD", "/nohead", nil, false, false},
		{"Cache-Control", "cache", "GET", "/fresh", []string{"Cache-Control", "max-age=0"}, false, false},
		{"Pragma", "cache", "GET", "/fresh", []string{"pragma", "no-cache"}, false, false},
		{"Authorization", "cache", "GET", "/fresh", []string{"Authorization", "Bearer x"}, false, false},
		{"If-None-Match", "cache", "GET", "/fresh", []string{"If-None-Match", `"a"`}, false, false},
		{"Range", "cache", "GET", "/fresh", []string{"Range", "bytes=0-1"}, false, false},
		{"another host", "cache", "GET", "/fresh", []string{"Host", "other.example"}, false, false},
		{"passed", "cache", "GET", "/passed", nil, false, true},
		{"pass expired", "cache", "GET", "/expired", nil, false, false},
		{"passed, with Cache-Control", "cache", "GET", "/passed", []string{"Cache-Control", "no-cache"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := message.Request{Method: tt.method, Target: tt.target, Host: "Example.COM", Scheme: "HTTP"}
			for i := 0; i < len(tt.header); i += 2 {
				if tt.header[i] == "Host" {
					req.Host = tt.header[i+1]
					continue
				}
				req.Header = append(req.Header, message.Field{Name: tt.header[i], Value: tt.header[i+1]})
			}
			st := &exchangeState{h: h, ex: &Exchange{Req: req}}
			defer st.cacheRelease()
			lr, skip := st.BeforeRequestHeaders(tt.plugin)
			if (lr != nil) != tt.hit || skip != tt.skip {
				t.Fatalf("answer %v, skip %v; want hit %v, skip %v", lr, skip, tt.hit, tt.skip)
			}
			if tt.skip && st.cache.passStatus != "wedge; fwd=bypass" {
				t.Errorf("pass status %q", st.cache.passStatus)
			}
			if lr == nil {
				return
			}
			if lr.Status != 200 || lr.Header.Has("Content-Length") || lr.Header.Get("Age") != "0" ||
				!strings.HasPrefix(lr.Header.Get("Cache-Status"), "up; hit, wedge; hit; ttl=") || lr.Header.Count("Cache-Status") != 1 {
				t.Errorf("served %d %v", lr.Status, lr.Header)
			}
			if sec, ok := st.takeServe(); !ok || string(sec.Data) != "body" {
				t.Errorf("the stored body is not armed: %v %q", ok, sec.Data)
			}
		})
	}
}

// TestWedgeConstantRoute: a plugin's constant decision is recorded for a
// known pool only.
func TestWedgeConstantRoute(t *testing.T) {
	h := &Handler{pools: map[string]*upstream.Pool{"app": nil}}
	call := &pluginhost.ForeignCall{Plugin: "router", Attachment: h}
	if _, err := wedgeConstantRoute(call, []byte(`{"upstream":"nope"}`)); err == nil {
		t.Error("an unknown pool was accepted")
	}
	if _, ok := h.constRoutes.Load("router"); ok {
		t.Error("a refused call was recorded")
	}
	if _, err := wedgeConstantRoute(call, []byte(`{"upstream":"app"}`)); err != nil {
		t.Fatal(err)
	}
	if pool, ok := h.constRoutes.Load("router"); !ok || pool != "app" {
		t.Errorf("recorded %v %v", pool, ok)
	}
	if _, err := wedgeConstantRoute(&pluginhost.ForeignCall{Plugin: "x"}, []byte(`{"upstream":"app"}`)); err == nil {
		t.Error("a call outside a pipeline was accepted")
	}
}

// FuzzForeignFunctions feeds every wedge_ function arbitrary arguments from
// a root context (no stream), as a plugin's proxy_on_configure or tick
// could: each answers or fails, and none panics.
func FuzzForeignFunctions(f *testing.F) {
	for _, s := range []string{`{"upstream":"app"}`, `{"keys":["http://a/b"]}`, `{"key":"k","for_ms":1000}`, `{"name":"m","root":"/nonexistent"}`, `{`, `null`, `[]`} {
		f.Add(s)
	}
	fns := ForeignFunctions()
	f.Fuzz(func(t *testing.T, args string) {
		h := &Handler{pools: map[string]*upstream.Pool{"app": nil}, cache: nil}
		for name, fn := range fns {
			if name == "wedge_static_mount" {
				continue // opens directories: TestHandler_StaticRoutes covers it
			}
			fn(&pluginhost.ForeignCall{Plugin: "p", Attachment: h}, []byte(args))
		}
	})
}
