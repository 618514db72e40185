package main

import (
	"net/http"
	"slices"
	"testing"
	"time"
)

// The RFC 9111 (HTTP Caching), RFC 5861 (stale-while-revalidate,
// stale-if-error) and RFC 9211 (Cache-Status) behaviours of a shared
// cache, case by case, with the section each comes from. The policy
// functions run natively here; filter_test.go runs request sequences
// through the filter natively (proxytest) and as cache.wasm in Wedge.

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func date(d time.Duration) string { return t0.Add(d).Format(http.TimeFormat) }

// storeCase: may a shared cache store this response (§3)?
type storeCase struct {
	sec    string
	name   string
	method string
	req    Header
	status int
	resp   Header
	cfg    string
	want   bool
	why    string
}

var storeCases = []storeCase{
	{sec: "§3", name: "GET 200 with max-age", method: "GET", status: 200, resp: Header{{"cache-control", "max-age=60"}}, want: true},
	{sec: "§3", name: "POST is not stored", method: "POST", status: 200, resp: Header{{"cache-control", "max-age=60"}}, want: false, why: "method"},
	{sec: "§3", name: "a status the cache does not understand", method: "GET", status: 299, resp: Header{{"cache-control", "max-age=60"}}, want: false, why: "status"},
	{sec: "§3", name: "206 is not stored (no range combination)", method: "GET", status: 206, resp: Header{{"cache-control", "max-age=60"}}, want: false, why: "status"},
	{sec: "§3", name: "200 without explicit freshness: heuristically cacheable status", method: "GET", status: 200, resp: Header{{"last-modified", date(-time.Hour)}}, want: true},
	{sec: "§3", name: "302 without explicit freshness is not stored", method: "GET", status: 302, resp: Header{{"location", "/x"}}, want: false, why: "no explicit freshness"},
	{sec: "§3", name: "302 with max-age is stored", method: "GET", status: 302, resp: Header{{"location", "/x"}, {"cache-control", "max-age=60"}}, want: true},
	{sec: "§3", name: "302 with Expires is stored", method: "GET", status: 302, resp: Header{{"expires", date(time.Hour)}, {"date", date(0)}}, want: true},
	{sec: "§3", name: "404 is heuristically cacheable", method: "GET", status: 404, resp: Header{{"last-modified", date(-time.Hour)}}, want: true},
	{sec: "§3 (MAY)", name: "never fresh, no validator, no stale-*: not stored", method: "GET", status: 404, want: false, why: "never fresh"},
	{sec: "§3 (MAY)", name: "never fresh but revalidatable (ETag): stored", method: "GET", status: 200, resp: Header{{"cache-control", "max-age=0"}, {"etag", `"a"`}}, want: true},
	{sec: "§3, RFC 5861 §4", name: "never fresh but stale-if-error: stored", method: "GET", status: 200, resp: Header{{"cache-control", "max-age=0, stale-if-error=60"}}, want: true},
	{sec: "§4.2.2 (config)", name: "a lifetime from valid makes it storable", method: "GET", status: 404, cfg: `{"valid":{"404":"1m"}}`, want: true},
	{sec: "§5.2.2.5", name: "response no-store", method: "GET", status: 200, resp: Header{{"cache-control", "no-store, max-age=60"}}, want: false, why: "no-store"},
	{sec: "§5.2.1.5", name: "request no-store", method: "GET", req: Header{{"cache-control", "no-store"}}, status: 200, resp: Header{{"cache-control", "max-age=60"}}, want: false, why: "request no-store"},
	{sec: "§5.2.2.7", name: "private: a shared cache does not store", method: "GET", status: 200, resp: Header{{"cache-control", "private, max-age=60"}}, want: false, why: "private"},
	{sec: "§5.2.2.7", name: "private=\"set-cookie\" treated as unqualified", method: "GET", status: 200, resp: Header{{"cache-control", `private="set-cookie", max-age=60`}}, want: false, why: "private"},
	{sec: "§5.2.2.4", name: "no-cache may be stored (revalidated on each use)", method: "GET", status: 200, resp: Header{{"cache-control", "no-cache"}, {"etag", `"a"`}}, want: true},
	{sec: "§3.5", name: "Authorization: not stored by default", method: "GET", req: Header{{"authorization", "Basic eDp5"}}, status: 200, resp: Header{{"cache-control", "max-age=60"}}, want: false, why: "authorization"},
	{sec: "§3.5", name: "Authorization with public", method: "GET", req: Header{{"authorization", "Basic eDp5"}}, status: 200, resp: Header{{"cache-control", "public, max-age=60"}}, want: true},
	{sec: "§3.5", name: "Authorization with must-revalidate", method: "GET", req: Header{{"authorization", "Basic eDp5"}}, status: 200, resp: Header{{"cache-control", "must-revalidate, max-age=60"}}, want: true},
	{sec: "§3.5", name: "Authorization with s-maxage", method: "GET", req: Header{{"authorization", "Basic eDp5"}}, status: 200, resp: Header{{"cache-control", "s-maxage=60"}}, want: true},
	{sec: "§7.3 (config)", name: "Set-Cookie not stored by default (nginx)", method: "GET", status: 200, resp: Header{{"cache-control", "max-age=60"}, {"set-cookie", "s=1"}}, want: false, why: "set-cookie"},
	{sec: "§7.3 (config)", name: "Set-Cookie stored with store_set_cookie", method: "GET", status: 200, resp: Header{{"cache-control", "max-age=60"}, {"set-cookie", "s=1"}}, cfg: `{"store_set_cookie":true}`, want: true},
	{sec: "§4.1", name: "Vary: * is never stored (never matches)", method: "GET", status: 200, resp: Header{{"cache-control", "max-age=60"}, {"vary", "accept-encoding, *"}}, want: false, why: "vary *"},
	{sec: "nginx", name: "X-Accel-Redirect is not stored", method: "GET", status: 200, resp: Header{{"cache-control", "max-age=60"}, {"x-accel-redirect", "/p/x"}}, want: false, why: "x-accel-redirect"},
	{sec: "§5.2.2.9", name: "public makes a 302 storable", method: "GET", status: 302, resp: Header{{"cache-control", "public"}, {"location", "/"}, {"last-modified", date(-time.Hour)}}, want: true},
}

func TestPolicy_Storable(t *testing.T) {
	for _, tc := range storeCases {
		p, err := ParseConfig([]byte(tc.cfg))
		if err != nil {
			t.Fatal(err)
		}
		ok, why := p.Storable(tc.method, tc.req, tc.status, tc.resp)
		if ok != tc.want || why != tc.why {
			t.Errorf("%s %s: Storable = %v %q, want %v %q", tc.sec, tc.name, ok, why, tc.want, tc.why)
		}
	}
}

// lifetimeCase: the freshness lifetime (§4.2.1, §4.2.2).
type lifetimeCase struct {
	sec       string
	name      string
	status    int
	resp      Header
	cfg       string
	want      time.Duration
	heuristic bool
}

var lifetimeCases = []lifetimeCase{
	{sec: "§4.2.1", name: "s-maxage wins over max-age", status: 200, resp: Header{{"cache-control", "max-age=10, s-maxage=20"}}, want: 20 * time.Second},
	{sec: "§4.2.1", name: "max-age wins over Expires", status: 200, resp: Header{{"cache-control", "max-age=10"}, {"date", date(0)}, {"expires", date(time.Hour)}}, want: 10 * time.Second},
	{sec: "§4.2.1", name: "Expires - Date", status: 200, resp: Header{{"date", date(0)}, {"expires", date(time.Hour)}}, want: time.Hour},
	{sec: "§4.2.1", name: "Expires in the past", status: 200, resp: Header{{"date", date(0)}, {"expires", date(-time.Hour)}}, want: 0},
	{sec: "§5.3", name: "an invalid Expires means already expired", status: 200, resp: Header{{"date", date(0)}, {"expires", "0"}}, want: 0},
	{sec: "§1.2.2", name: "max-age past 2^31 is 2^31", status: 200, resp: Header{{"cache-control", "max-age=99999999999"}}, want: (1 << 31) * time.Second},
	{sec: "§1.2.2", name: "max-age not an integer is ignored", status: 200, resp: Header{{"cache-control", "max-age=1.5"}, {"date", date(0)}, {"expires", date(time.Minute)}}, want: time.Minute},
	{sec: "§5.2", name: "quoted max-age argument", status: 200, resp: Header{{"cache-control", `max-age="30"`}}, want: 30 * time.Second},
	{sec: "§4.2.2", name: "heuristic: 10% of Date - Last-Modified", status: 200, resp: Header{{"date", date(0)}, {"last-modified", date(-10 * time.Hour)}}, want: time.Hour, heuristic: true},
	{sec: "§4.2.2", name: "heuristic capped by heuristic_max", status: 200, resp: Header{{"date", date(0)}, {"last-modified", date(-1000 * time.Hour)}}, cfg: `{"heuristic_max":"2h"}`, want: 2 * time.Hour, heuristic: true},
	{sec: "§4.2.2", name: "no heuristic for a status not heuristically cacheable", status: 302, resp: Header{{"date", date(0)}, {"last-modified", date(-10 * time.Hour)}}, want: 0},
	{sec: "§4.2.2", name: "heuristic for any status marked public", status: 302, resp: Header{{"cache-control", "public"}, {"date", date(0)}, {"last-modified", date(-10 * time.Hour)}}, want: time.Hour, heuristic: true},
	{sec: "§4.2.2", name: "no heuristic when explicit expiry exists", status: 200, resp: Header{{"cache-control", "max-age=0"}, {"last-modified", date(-10 * time.Hour)}}, want: 0},
	{sec: "§4.2.2", name: "heuristics off", status: 200, resp: Header{{"date", date(0)}, {"last-modified", date(-10 * time.Hour)}}, cfg: `{"heuristics":"off"}`, want: 0},
	{sec: "§4.2.2", name: "no Last-Modified: no heuristic lifetime", status: 200, resp: Header{{"date", date(0)}}, want: 0},
	{sec: "§4.2.2 (config)", name: "valid gives a lifetime to a 200 without one (nginx proxy_cache_valid)", status: 200, resp: Header{{"date", date(0)}}, cfg: `{"valid":{"200 404":"10m","any":"1m"}}`, want: 10 * time.Minute, heuristic: true},
	{sec: "§4.2.2 (config)", name: "valid any for another heuristically cacheable status", status: 410, resp: Header{{"date", date(0)}}, cfg: `{"valid":{"200":"10m","any":"1m"}}`, want: time.Minute, heuristic: true},
	{sec: "§4.2.2 (config)", name: "valid wins over the Last-Modified heuristic", status: 200, resp: Header{{"date", date(0)}, {"last-modified", date(-10 * time.Hour)}}, cfg: `{"valid":{"any":"5m"}}`, want: 5 * time.Minute, heuristic: true},
	{sec: "§4.2.2 (config)", name: "valid any never covers a status not heuristically cacheable", status: 302, resp: Header{{"date", date(0)}}, cfg: `{"valid":{"any":"5m"}}`, want: 0},
	{sec: "§4.2.1 (config)", name: "an explicit max-age wins over valid", status: 200, resp: Header{{"cache-control", "max-age=7"}}, cfg: `{"valid":{"any":"5m"}}`, want: 7 * time.Second},
	{sec: "§4.2.2 (config)", name: "valid still applies with heuristics off", status: 200, resp: Header{{"date", date(0)}}, cfg: `{"heuristics":"off","valid":{"200":"2m"}}`, want: 2 * time.Minute, heuristic: true},
}

func TestPolicy_Lifetime(t *testing.T) {
	for _, tc := range lifetimeCases {
		p, err := ParseConfig([]byte(tc.cfg))
		if err != nil {
			t.Fatal(err)
		}
		got, h := p.Lifetime(tc.status, tc.resp, t0)
		if got != tc.want || h != tc.heuristic {
			t.Errorf("%s %s: Lifetime = %v (heuristic %v), want %v (%v)", tc.sec, tc.name, got, h, tc.want, tc.heuristic)
		}
	}
}

// TestCurrentAge checks §4.2.3's age calculation.
func TestCurrentAge(t *testing.T) {
	tests := []struct {
		sec, name             string
		resp                  Header
		reqTime, respTime, at time.Duration // offsets from t0
		want                  time.Duration
	}{
		{"§4.2.3", "resident time only", Header{{"date", date(0)}}, 0, 0, 30 * time.Second, 30 * time.Second},
		{"§4.2.3", "Age field plus response delay", Header{{"date", date(0)}, {"age", "100"}}, 0, 2 * time.Second, 2 * time.Second, 102 * time.Second},
		{"§4.2.3", "apparent age from a Date in the past", Header{{"date", date(-50 * time.Second)}}, 0, 0, 0, 50 * time.Second},
		{"§4.2.3", "a Date in the future gives no negative age", Header{{"date", date(time.Hour)}}, 0, 0, 10 * time.Second, 10 * time.Second},
		{"§4.2.3", "the larger of apparent and corrected age", Header{{"date", date(-50 * time.Second)}, {"age", "10"}}, 0, 0, 0, 50 * time.Second},
		{"§5.1", "an invalid Age is ignored", Header{{"date", date(0)}, {"age", "x"}}, 0, 0, 5 * time.Second, 5 * time.Second},
	}
	for _, tc := range tests {
		got := CurrentAge(tc.resp, t0.Add(tc.reqTime), t0.Add(tc.respTime), t0.Add(tc.at))
		if got != tc.want {
			t.Errorf("%s %s: CurrentAge = %v, want %v", tc.sec, tc.name, got, tc.want)
		}
	}
}

// decideCase: how a stored response (stored at t0) serves a request at
// t0+at (§4, §4.2.4, §4.3, §5.2.1, RFC 5861).
type decideCase struct {
	sec  string
	name string
	req  Header
	resp Header
	at   time.Duration
	cfg  string
	want Use
	sie  bool
}

var (
	fresh60   = Header{{"date", date(0)}, {"cache-control", "max-age=60"}, {"etag", `"v1"`}}
	mustReval = Header{{"date", date(0)}, {"cache-control", "max-age=60, must-revalidate, stale-while-revalidate=600, stale-if-error=600"}}
	swr       = Header{{"date", date(0)}, {"cache-control", "max-age=60, stale-while-revalidate=30"}}
	sie       = Header{{"date", date(0)}, {"cache-control", "max-age=60, stale-if-error=300"}, {"etag", `"v1"`}}
)

var decideCases = []decideCase{
	{sec: "§4.2", name: "fresh: served", resp: fresh60, at: 10 * time.Second, want: UseFresh},
	{sec: "§4.2", name: "stale: revalidated", resp: fresh60, at: 61 * time.Second, want: UseRevalidate},
	{sec: "§4.2", name: "age equal to lifetime is stale", resp: fresh60, at: 60 * time.Second, want: UseRevalidate},
	{sec: "§4.2.3", name: "an upstream Age counts toward staleness", resp: Header{{"date", date(0)}, {"age", "59"}, {"cache-control", "max-age=60"}}, at: 2 * time.Second, want: UseRevalidate},
	{sec: "§5.2.2.4", name: "response no-cache: always revalidated", resp: Header{{"date", date(0)}, {"cache-control", "no-cache, max-age=60"}}, at: 0, want: UseRevalidate},
	{sec: "§5.2.1.4", name: "request no-cache: revalidated even when fresh", req: Header{{"cache-control", "no-cache"}}, resp: fresh60, at: 0, want: UseRevalidate},
	{sec: "§5.4", name: "Pragma: no-cache without Cache-Control", req: Header{{"pragma", "no-cache"}}, resp: fresh60, at: 0, want: UseRevalidate},
	{sec: "§5.4", name: "Pragma ignored when Cache-Control is present", req: Header{{"pragma", "no-cache"}, {"cache-control", "max-stale=0"}}, resp: fresh60, at: 0, want: UseFresh},
	{sec: "§5.2.1.1", name: "request max-age smaller than the age", req: Header{{"cache-control", "max-age=5"}}, resp: fresh60, at: 10 * time.Second, want: UseRevalidate},
	{sec: "§5.2.1.1", name: "request max-age=0", req: Header{{"cache-control", "max-age=0"}}, resp: fresh60, at: time.Second, want: UseRevalidate},
	{sec: "§5.2.1.1", name: "request max-age larger than the age", req: Header{{"cache-control", "max-age=30"}}, resp: fresh60, at: 10 * time.Second, want: UseFresh},
	{sec: "§5.2.1.3", name: "request min-fresh not met", req: Header{{"cache-control", "min-fresh=55"}}, resp: fresh60, at: 10 * time.Second, want: UseRevalidate},
	{sec: "§5.2.1.3", name: "request min-fresh met", req: Header{{"cache-control", "min-fresh=20"}}, resp: fresh60, at: 10 * time.Second, want: UseFresh},
	{sec: "§5.2.1.2", name: "request max-stale without a value: any staleness", req: Header{{"cache-control", "max-stale"}}, resp: fresh60, at: time.Hour, want: UseStale},
	{sec: "§5.2.1.2", name: "request max-stale within its limit", req: Header{{"cache-control", "max-stale=30"}}, resp: fresh60, at: 80 * time.Second, want: UseStale},
	{sec: "§5.2.1.2", name: "request max-stale past its limit", req: Header{{"cache-control", "max-stale=10"}}, resp: fresh60, at: 80 * time.Second, want: UseRevalidate},
	{sec: "§4.2.4, §5.2.2.2", name: "must-revalidate forbids max-stale", req: Header{{"cache-control", "max-stale"}}, resp: mustReval, at: 70 * time.Second, want: UseRevalidate},
	{sec: "§4.2.4, §5.2.2.2", name: "must-revalidate forbids stale-while-revalidate and stale-if-error", resp: mustReval, at: 70 * time.Second, want: UseRevalidate, sie: false},
	{sec: "§4.2.4, §5.2.2.8", name: "proxy-revalidate forbids stale serving in a shared cache", req: Header{{"cache-control", "max-stale"}}, resp: Header{{"date", date(0)}, {"cache-control", "max-age=60, proxy-revalidate"}}, at: 70 * time.Second, want: UseRevalidate},
	{sec: "§4.2.4, §5.2.2.10", name: "s-maxage implies proxy-revalidate", req: Header{{"cache-control", "max-stale"}}, resp: Header{{"date", date(0)}, {"cache-control", "s-maxage=60"}}, at: 70 * time.Second, want: UseRevalidate},
	{sec: "RFC 5861 §3", name: "stale-while-revalidate within the window", resp: swr, at: 80 * time.Second, want: UseStaleRefresh},
	{sec: "RFC 5861 §3", name: "stale-while-revalidate past the window", resp: swr, at: 100 * time.Second, want: UseRevalidate},
	{sec: "RFC 5861 §3", name: "stale-while-revalidate does not apply while fresh", resp: swr, at: 10 * time.Second, want: UseFresh},
	{sec: "RFC 5861 §4", name: "stale-if-error within the window", resp: sie, at: 100 * time.Second, want: UseRevalidate, sie: true},
	{sec: "RFC 5861 §4", name: "stale-if-error past the window", resp: sie, at: 400 * time.Second, want: UseRevalidate, sie: false},
	{sec: "RFC 5861 §4", name: "stale-if-error asked by the request", req: Header{{"cache-control", "stale-if-error=1000"}}, resp: fresh60, at: 400 * time.Second, want: UseRevalidate, sie: true},
	{sec: "RFC 5861 §4", name: "stale-if-error from the configuration", resp: fresh60, cfg: `{"stale_if_error":"10m"}`, at: 400 * time.Second, want: UseRevalidate, sie: true},
	{sec: "§4.2.2", name: "heuristically fresh", resp: Header{{"date", date(0)}, {"last-modified", date(-100 * time.Hour)}}, at: time.Hour, want: UseFresh},
	{sec: "§4.2.2", name: "heuristically fresh, but heuristics off", resp: Header{{"date", date(0)}, {"last-modified", date(-100 * time.Hour)}}, cfg: `{"heuristics":"off"}`, at: time.Hour, want: UseRevalidate},
}

func TestPolicy_Decide(t *testing.T) {
	for _, tc := range decideCases {
		p, err := ParseConfig([]byte(tc.cfg))
		if err != nil {
			t.Fatal(err)
		}
		d := p.Decide(tc.req, 200, tc.resp, t0, t0, t0.Add(tc.at))
		if d.Use != tc.want || d.StaleIfError != tc.sie {
			t.Errorf("%s %s: Decide = %v (stale-if-error %v, %s), want %v (%v)", tc.sec, tc.name, d.Use, d.StaleIfError, d.Why, tc.want, tc.sie)
		}
	}
}

func TestConditional(t *testing.T) {
	// §4.3.1: validators from the stored response.
	got := Conditional(Header{{"etag", `W/"a"`}, {"last-modified", date(0)}})
	want := Header{{"if-none-match", `W/"a"`}, {"if-modified-since", date(0)}}
	if !slices.Equal(got, want) {
		t.Errorf("§4.3.1 Conditional = %v, want %v", got, want)
	}
	if got := Conditional(Header{{"cache-control", "max-age=1"}}); got != nil {
		t.Errorf("§4.3.1 without validators: %v, want none (unconditional request)", got)
	}
}

func TestInvalidationKeys(t *testing.T) {
	tests := []struct {
		sec, name string
		status    int
		resp      Header
		want      []string
	}{
		{"§4.4", "target URI", 200, nil, []string{"http://a.example/x"}},
		{"§4.4", "Location and Content-Location of the same origin", 201, Header{{"location", "/items/7"}, {"content-location", "http://a.example/items/7?v=1"}}, []string{"http://a.example/x", "http://a.example/items/7", "http://a.example/items/7?v=1"}},
		{"§4.4", "another origin is not invalidated", 303, Header{{"location", "http://b.example/y"}}, []string{"http://a.example/x"}},
		{"§4.4", "an error status invalidates nothing", 500, Header{{"location", "/z"}}, nil},
		{"§4.4", "a 404 is an error status", 404, nil, nil},
	}
	for _, tc := range tests {
		got := InvalidationKeys("http://a.example/x", tc.status, tc.resp)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s %s: %v, want %v", tc.sec, tc.name, got, tc.want)
		}
	}
}

func TestParseCacheControl(t *testing.T) {
	d := ParseCacheControl([]string{`Max-Age=60, no-cache="set-cookie, x", private`, "max-age=5, s-maxage=x"})
	if d["max-age"] != "60" || d["no-cache"] != "set-cookie, x" || !d.Has("private") || d["s-maxage"] != "x" {
		t.Errorf("§5.2 directives = %v", d)
	}
	if _, ok := d.Seconds("s-maxage"); ok {
		t.Error("§1.2.2 a non-numeric delta-seconds was accepted")
	}
}

func FuzzParseCacheControl(f *testing.F) {
	for _, s := range []string{"max-age=60", `no-cache="a,b", private`, `"`, `a="\`, ",,=,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := ParseCacheControl([]string{s})
		for name := range d {
			d.Seconds(name)
		}
	})
}

func TestCacheStatus(t *testing.T) {
	// RFC 9211 §2: the cache's name, then its parameters.
	if got := CacheStatus("fwd=miss", "stored"); got != "wedge; fwd=miss; stored" {
		t.Errorf("RFC 9211 Cache-Status = %q", got)
	}
	if got := AppendCacheStatus([]string{"origin; hit", "wedge; fwd=miss; stored, cdn; fwd=uri-miss"}, "wedge; hit"); got != "origin; hit, cdn; fwd=uri-miss, wedge; hit" {
		t.Errorf("RFC 9211 §2: appended = %q", got)
	}
	h := ServedHeader(Header{{"content-length", "5"}, {"age", "3"}, {"etag", `"a"`}, {"cache-status", "up; hit, wedge; fwd=miss; stored"}}, 42*time.Second, CacheStatus("hit"))
	want := Header{{"etag", `"a"`}, {"age", "42"}, {"cache-status", "up; hit, wedge; hit"}}
	if !slices.Equal(h, want) {
		t.Errorf("§5.1 served fields = %v, want %v", h, want)
	}
}

func TestParseConfig(t *testing.T) {
	for _, bad := range []string{`{"heuristics":"maybe"}`, `{"methods":["POST"]}`, `{"lock_timeout":"x"}`, `{"heuristic_fraction":2}`, `{"nope":1}`,
		`{"valid":{"302":"1m"}}`, `{"valid":{"200":"0s"}}`, `{"valid":{"ok":"1m"}}`, `{"valid":{"":"1m"}}`, `{"valid":{"200":"1m","any 200":"2m"}}`} {
		if _, err := ParseConfig([]byte(bad)); err == nil {
			t.Errorf("ParseConfig(%s) accepted", bad)
		}
	}
	p, err := ParseConfig([]byte(`{"lock":false,"lock_timeout":"2s","methods":["GET"]}`))
	if err != nil || p.Lock || p.LockTimeout != 2*time.Second || !slices.Equal(p.Methods, []string{"GET"}) {
		t.Errorf("ParseConfig = %+v, %v", p, err)
	}
}

// TestFreshened: §4.3.4, a 304's fields replace the stored ones of the
// same name, except those the stored body depends on (§3.2).
func TestFreshened(t *testing.T) {
	stored := Header{{"content-type", "text/html"}, {"cache-control", "max-age=0"}, {"x-a", "1"}, {"x-a", "2"}, {"content-encoding", "gzip"}, {"vary", "accept-encoding"}}
	h304 := Header{{":status", "304"}, {"cache-control", "max-age=60"}, {"X-A", "3"}, {"content-length", "0"}, {"vary", "*"}, {"date", date(0)}}
	got := Freshened(stored, h304)
	want := Header{{"content-type", "text/html"}, {"content-encoding", "gzip"}, {"vary", "accept-encoding"}, {"cache-control", "max-age=60"}, {"X-A", "3"}, {"date", date(0)}}
	if !slices.Equal(got, want) {
		t.Errorf("Freshened = %v, want %v", got, want)
	}
	p, _ := ParseConfig(nil)
	if life, _ := p.Lifetime(200, got, t0); life != time.Minute {
		t.Errorf("lifetime after the 304: %v, want 1m", life)
	}
}

// TestPassable: which responses that are not stored let Wedge pass later
// plain requests without the filter (hit-for-pass).
func TestPassable(t *testing.T) {
	tests := []struct {
		why          string
		status       int
		revalidating bool
		want         bool
	}{
		{"no-store", 200, false, true},
		{"private", 200, false, true},
		{"never fresh", 404, false, true},
		{"no explicit freshness", 302, false, true},
		{"set-cookie", 200, false, true},
		{"authorization", 200, false, false},    // the request's, not the response's
		{"request no-store", 200, false, false}, // idem
		{"method", 200, false, false},
		{"no explicit freshness", 503, false, false}, // transient
		{"no-store", 500, false, false},
		{"no-store", 200, true, false}, // an entry is there (stale-if-error, revalidation)
	}
	for _, tt := range tests {
		if got := Passable(tt.why, tt.status, tt.revalidating); got != tt.want {
			t.Errorf("Passable(%q, %d, %v) = %v, want %v", tt.why, tt.status, tt.revalidating, got, tt.want)
		}
	}
}
