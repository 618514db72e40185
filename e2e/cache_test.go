package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wedgeproxy/wedge/server/config"
)

// cacheChain is the default chain's cache and compress behind the test
// router (pluginConfig puts it first).
var cacheChain = []config.Plugin{{Name: "cache", Builtin: "cache"}, {Name: "compress", Builtin: "compress"}}

// cacheGet sends a request with the given fields ("Name: value"), with
// rawClient (no automatic Accept-Encoding), and returns the response with
// its body read (and gunzipped when Content-Encoding says gzip).
func cacheGet(t *testing.T, method, u string, hdr ...string) (*http.Response, string) {
	t.Helper()
	var pairs []string
	for _, l := range hdr {
		k, v, _ := strings.Cut(l, ": ")
		pairs = append(pairs, k, v)
	}
	resp, b := doClient(t, rawClient, method, u, nil, pairs...)
	if resp.Header.Get("Content-Encoding") == "gzip" {
		b = decodeBody(t, "gzip", b)
	}
	return resp, string(b)
}

// upstreamCount counts Gunicorn's access-log lines for GETs of target.
func upstreamCount(t *testing.T, g *gunicornApp, target string, status int) int {
	t.Helper()
	n := 0
	for _, l := range strings.Split(g.accessLog(t), "\n") {
		if strings.Contains(l, `"GET `+target+` HTTP/1.1" `+fmt.Sprint(status)) {
			n++
		}
	}
	return n
}

// waitCount waits (at most 5 s) for Gunicorn's access log to show want
// lines, since it is written after the response.
func waitCount(t *testing.T, g *gunicornApp, target string, status, want int) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := upstreamCount(t, g, target, status)
		if n >= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func wantCacheStatus(t *testing.T, resp *http.Response, prefix string) {
	t.Helper()
	if cs := resp.Header.Get("Cache-Status"); !strings.HasPrefix(cs, prefix) {
		t.Errorf("Cache-Status %q, want %q...", cs, prefix)
	}
}

// TestCache_Gunicorn runs the cache plugin (with compress) in front of
// Gunicorn: misses and hits, revalidation with a 304 from the app,
// variants per content coding, collapsing of 100 concurrent misses into one
// request to the app, purge through the admin address, invalidation by a
// POST, and the metrics.
func TestCache_Gunicorn(t *testing.T) {
	g := startGunicorn(t, 2)
	w := startPluginWedge(t, g.Addr, nil, cacheChain, nil)

	t.Run("miss then hit (RFC 9111 §3, §4, §5.1)", func(t *testing.T) {
		target := "/cacheable?k=hit&cc=max-age=60"
		r1, b1 := cacheGet(t, "GET", w.URL(target))
		wantCacheStatus(t, r1, "wedge; fwd=uri-miss; fwd-status=200; stored")
		r2, b2 := cacheGet(t, "GET", w.URL(target))
		wantCacheStatus(t, r2, "wedge; hit")
		if b1 != b2 || !strings.HasPrefix(b2, "<!-- fetched") || r2.Header.Get("Age") == "" {
			t.Errorf("hit: body equal %v, Age %q", b1 == b2, r2.Header.Get("Age"))
		}
		if n := waitCount(t, g, target, 200, 1); n != 1 {
			t.Errorf("the app got %d requests, want 1", n)
		}
		// purge through the admin address
		key := "http://" + w.Addr + target
		resp, err := http.Post("http://"+w.Admin+"/cache/purge?url="+url.QueryEscape(key), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		pb, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || strings.TrimSpace(string(pb)) != `{"purged":1}` {
			t.Errorf("purge: %d %s", resp.StatusCode, pb)
		}
		r3, b3 := cacheGet(t, "GET", w.URL(target))
		wantCacheStatus(t, r3, "wedge; fwd=uri-miss")
		if b3 == b2 {
			t.Error("served the purged body")
		}
	})

	t.Run("revalidation with a 304 from the app (§4.3)", func(t *testing.T) {
		target := "/cacheable?k=reval&cc=max-age=0&etag=r1"
		_, b1 := cacheGet(t, "GET", w.URL(target))
		r2, b2 := cacheGet(t, "GET", w.URL(target))
		wantCacheStatus(t, r2, "wedge; fwd=stale; fwd-status=304")
		if r2.StatusCode != 200 || b1 != b2 {
			t.Errorf("revalidated: %d, body equal %v", r2.StatusCode, b1 == b2)
		}
		if n := waitCount(t, g, target, 304, 1); n != 1 {
			t.Errorf("the app answered 304 %d times, want 1", n)
		}
	})

	t.Run("a variant per content coding (§4.1, compress)", func(t *testing.T) {
		target := "/cacheable?k=vary&cc=max-age=60"
		rz, bz := cacheGet(t, "GET", w.URL(target), "Accept-Encoding: gzip")
		if rz.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("the first response is not gzip: %v", rz.Header)
		}
		ri, bi := cacheGet(t, "GET", w.URL(target))
		wantCacheStatus(t, ri, "wedge; fwd=uri-miss")
		if ri.Header.Get("Content-Encoding") != "" {
			t.Errorf("identity request got %q", ri.Header.Get("Content-Encoding"))
		}
		rz2, bz2 := cacheGet(t, "GET", w.URL(target), "Accept-Encoding: gzip")
		wantCacheStatus(t, rz2, "wedge; hit")
		ri2, bi2 := cacheGet(t, "GET", w.URL(target))
		wantCacheStatus(t, ri2, "wedge; hit")
		if rz2.Header.Get("Content-Encoding") != "gzip" || bz2 != bz || bi2 != bi || ri2.Header.Get("Content-Encoding") != "" {
			t.Errorf("variants mixed up: gzip %q equal %v, identity %q equal %v",
				rz2.Header.Get("Content-Encoding"), bz2 == bz, ri2.Header.Get("Content-Encoding"), bi2 == bi)
		}
		if n := waitCount(t, g, target, 200, 2); n != 2 {
			t.Errorf("the app got %d requests, want 2 (one per variant)", n)
		}
	})

	t.Run("100 concurrent misses make 1 request to the app", func(t *testing.T) {
		target := "/cacheable?k=collapse&cc=max-age=60&sleep=0.5"
		var wg sync.WaitGroup
		var mu sync.Mutex
		bodies := map[string]int{}
		for range 100 {
			wg.Add(1)
			go func() { // no t.Fatal off the test goroutine: an error is an answer of its own
				defer wg.Done()
				answer := ""
				if resp, err := rawClient.Get(w.URL(target)); err != nil {
					answer = "error: " + err.Error()
				} else {
					b, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					answer = fmt.Sprintf("%d %d %v %s", resp.StatusCode, len(b), err, b[:min(40, len(b))])
				}
				mu.Lock()
				bodies[answer]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if n := waitCount(t, g, target, 200, 1); n != 1 {
			t.Errorf("the app got %d requests, want 1", n)
		}
		if len(bodies) != 1 {
			t.Errorf("%d different answers: %v", len(bodies), bodies)
		}
	})

	t.Run("POST invalidates (§4.4)", func(t *testing.T) {
		target := "/cacheable?k=inv&cc=max-age=60"
		cacheGet(t, "GET", w.URL(target))
		r, _ := cacheGet(t, "GET", w.URL(target))
		wantCacheStatus(t, r, "wedge; hit")
		if r, b := cacheGet(t, "POST", w.URL(target)); r.StatusCode != 200 || b != "changed" {
			t.Fatalf("POST: %d %q", r.StatusCode, b)
		}
		r, _ = cacheGet(t, "GET", w.URL(target))
		wantCacheStatus(t, r, "wedge; fwd=uri-miss")
	})

	resp, err := http.Get("http://" + w.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"wedge_cache_hits_total", "wedge_cache_misses_total", "wedge_cache_bytes", "wedge_cache_entries", "wedge_cache_evictions_total", "wedge_cache_collapsed_total"} {
		if !bytes.Contains(mb, []byte("\n"+m+" ")) {
			t.Errorf("/metrics has no %s", m)
		}
	}
}

// TestCache_StaleUpstream uses a Go upstream that the test can stop:
// stale-if-error serves the stored response while the upstream is down
// (RFC 5861 §4), and stale-while-revalidate answers at once and
// revalidates in the background (RFC 5861 §3).
func TestCache_StaleUpstream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conditional atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("ETag", `"s1"`)
		rw.Header().Set("Age", "5") // already past max-age=1
		switch r.URL.Path {
		case "/sie":
			rw.Header().Set("Cache-Control", "max-age=1, stale-if-error=600")
		case "/swr":
			rw.Header().Set("Cache-Control", "max-age=1, stale-while-revalidate=600")
			if r.Header.Get("If-None-Match") == `"s1"` {
				conditional.Add(1)
				rw.WriteHeader(304)
				return
			}
		}
		fmt.Fprintf(rw, "%s body", r.URL.Path)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	w := startPluginWedge(t, ln.Addr().String(), nil, cacheChain, nil)

	_, b := cacheGet(t, "GET", w.URL("/swr"))
	r, b2 := cacheGet(t, "GET", w.URL("/swr"))
	wantCacheStatus(t, r, "wedge; hit; detail=stale-while-revalidate")
	if b2 != b || r.Header.Get("Age") == "" {
		t.Errorf("stale-while-revalidate: body %q, Age %q", b2, r.Header.Get("Age"))
	}
	deadline := time.Now().Add(5 * time.Second)
	for conditional.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if conditional.Load() != 1 {
		t.Errorf("background revalidations: %d, want 1", conditional.Load())
	}

	cacheGet(t, "GET", w.URL("/sie"))
	srv.Close() // the upstream is down: connections are refused
	r, b = cacheGet(t, "GET", w.URL("/sie"))
	if r.StatusCode != 200 || b != "/sie body" {
		t.Fatalf("stale-if-error with the upstream down: %d %q", r.StatusCode, b)
	}
	wantCacheStatus(t, r, "wedge; hit; detail=stale-if-error")
	if r, _ := cacheGet(t, "GET", w.URL("/nothing-stored")); r.StatusCode != 502 {
		t.Errorf("nothing stored, upstream down: %d, want 502", r.StatusCode)
	}
}

// TestCache_GunicornDown: in front of Gunicorn, a stored response past its
// max-age is revalidated in the background with stale-while-revalidate
// (RFC 5861 §3: the app answers the conditional request 304), and served
// with stale-if-error once Gunicorn is stopped (RFC 5861 §4); a key with
// nothing stored then gets 502.
func TestCache_GunicornDown(t *testing.T) {
	g := startGunicorn(t, 2)
	w := startPluginWedge(t, g.Addr, nil, cacheChain, nil)

	swr := "/cacheable?k=swr&etag=s1&cc=" + url.QueryEscape("max-age=1, stale-while-revalidate=600")
	_, b1 := cacheGet(t, "GET", w.URL(swr))
	time.Sleep(1100 * time.Millisecond) // past max-age=1
	r, b2 := cacheGet(t, "GET", w.URL(swr))
	wantCacheStatus(t, r, "wedge; hit; detail=stale-while-revalidate")
	if b2 != b1 {
		t.Errorf("stale-while-revalidate served another body")
	}
	if n := waitCount(t, g, swr, 304, 1); n != 1 {
		t.Errorf("Gunicorn answered %d background revalidations with 304, want 1", n)
	}

	sie := "/cacheable?k=sie&cc=" + url.QueryEscape("max-age=1, stale-if-error=600")
	_, b1 = cacheGet(t, "GET", w.URL(sie))
	time.Sleep(1100 * time.Millisecond)
	g.Stop()
	r, b2 = cacheGet(t, "GET", w.URL(sie))
	if r.StatusCode != 200 || b2 != b1 {
		t.Fatalf("stale-if-error with Gunicorn stopped: %d, body equal %v", r.StatusCode, b2 == b1)
	}
	wantCacheStatus(t, r, "wedge; hit; detail=stale-if-error")
	if r, _ := cacheGet(t, "GET", w.URL("/cacheable?k=never-stored")); r.StatusCode != 502 {
		t.Errorf("nothing stored, Gunicorn stopped: %d, want 502", r.StatusCode)
	}
}
