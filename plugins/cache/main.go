// Command cache is Wedge's built-in HTTP cache, a proxy-wasm filter written
// with proxy-wasm-go-sdk: a shared cache per RFC 9111 with RFC 5861's
// stale-while-revalidate and stale-if-error and RFC 9211's Cache-Status.
// It holds the policy only (policy.go): what is stored, what is fresh,
// what may be served stale, when to revalidate. The store is the host's
// (bounded in bytes, evicting, optionally on disk), reached through the
// wedge_cache_* host calls (sdk/README.md, "Wedge host calls"), and a hit
// is written from the store without its body passing through the guest.
//
// Request phase (GET and HEAD): the key is the effective URI; the stored
// variants matching the request (Vary, §4.1) come from
// wedge_cache_lookup; Decide picks: a fresh (or allowed stale) entry is
// served (wedge_cache_serve, then proxy_send_local_response with its
// fields, Age and Cache-Status and no body); a stale one with validators is
// revalidated (If-None-Match / If-Modified-Since added, and on a 304
// wedge_cache_freshen serves the updated entry); with stale-if-error the
// host is told to fall back to the entry if the upstream is down
// (wedge_cache_fallback). Misses of one key are collapsed
// (wedge_cache_fill: one request goes upstream, the others pause and are
// answered from what it stores). Unsafe methods invalidate (§4.4).
//
// Response phase: a storable response (Storable) is stored after the
// response phases and compression (wedge_cache_store), so the variant
// compress produced is the one kept; Cache-Status says what happened.
//
// Build:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o plugins/cache/cache.wasm ./plugins/cache
package main

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/wedgeproxy/wedge/sdk/go/wedge"
)

func main() {}

func init() { proxywasm.SetVMContext(&vmContext{}) }

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type pluginContext struct {
	types.DefaultPluginContext
	policy *Policy
}

func (p *pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
		proxywasm.LogErrorf("reading configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	pol, err := ParseConfig(data)
	if err != nil {
		proxywasm.LogError(err.Error())
		return types.OnPluginStartStatusFailed
	}
	p.policy = pol
	return types.OnPluginStartStatusOK
}

func (p *pluginContext) NewHttpContext(uint32) types.HttpContext {
	return &httpContext{policy: p.policy}
}

// entry is a stored response as wedge_cache_lookup describes it.
type entry struct {
	ID       uint64      `json:"id"`
	Status   int         `json:"status"`
	Headers  [][2]string `json:"headers"`
	ReqTime  int64       `json:"request_time_ms"`
	RespTime int64       `json:"response_time_ms"`
	Size     int64       `json:"size"`
}

type httpContext struct {
	types.DefaultHttpContext
	policy *Policy

	method, key string
	req         Header
	invalidate  bool   // an unsafe method: invalidate on a non-error response
	store       bool   // store a storable response
	revalidate  *entry // the stored response a conditional request was sent for
	stale       *entry // the stale entry stale-if-error may serve on a 5xx (RFC 5861 §4)
	fwd         string // Cache-Status fwd= reason
	lead        bool   // this request fetches for the others (wedge_cache_fill)
}

func call(name string, args any, out any) error {
	b, err := json.Marshal(args)
	if err != nil {
		return err
	}
	res, err := proxywasm.CallForeignFunction(name, b)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(res, out)
}

func (c *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	hdr, err := proxywasm.GetHttpRequestHeaders()
	if err != nil {
		proxywasm.LogWarnf("reading request headers: %v", err)
		return types.ActionContinue
	}
	c.req = Header(hdr)
	c.method = c.req.Get(":method")
	// :scheme is what request.scheme answers in Wedge: no host call for it.
	c.key = Key(c.req.Get(":scheme"), c.req.Get(":authority"), c.req.Get(":path"))
	if unsafeMethod(c.method) {
		c.invalidate = true
		return types.ActionContinue
	}
	if !contains(c.policy.Methods, c.method) {
		return types.ActionContinue
	}
	return c.lookup(time.Now())
}

// lookup serves the request from the store, or prepares its way upstream.
func (c *httpContext) lookup(now time.Time) types.Action {
	var res struct {
		Entries []entry `json:"entries"`
	}
	if err := call("wedge_cache_lookup", map[string]string{"key": c.key}, &res); err != nil {
		proxywasm.LogWarnf("wedge_cache_lookup: %v", err)
		return types.ActionContinue
	}
	rcc := c.req.CC()
	c.store = c.method == "GET" && !rcc.Has("no-store")
	c.fwd = "uri-miss"
	if len(res.Entries) > 0 {
		e := &res.Entries[0] // the newest matching variant (§4.1)
		stored := Header(e.Headers)
		d := c.policy.Decide(c.req, e.Status, stored, time.UnixMilli(e.ReqTime), time.UnixMilli(e.RespTime), now)
		switch d.Use {
		case UseFresh:
			return c.serve(e, d.Age, CacheStatus("hit", "ttl="+strconv.FormatInt(int64((d.Lifetime-d.Age)/time.Second), 10)))
		case UseStale:
			return c.serve(e, d.Age, CacheStatus("hit", "detail=stale"))
		case UseStaleRefresh:
			up, _ := wedge.Upstream()
			if up != "" {
				if err := call("wedge_cache_refresh", map[string]any{"id": e.ID, "upstream": up}, nil); err != nil {
					proxywasm.LogWarnf("wedge_cache_refresh: %v", err)
				}
			}
			return c.serve(e, d.Age, CacheStatus("hit", "detail=stale-while-revalidate"))
		}
		// UseRevalidate
		c.fwd = "stale"
		if d.Why == "request no-cache" || d.Why == "request max-age" || d.Why == "request min-fresh" {
			c.fwd = "request"
		}
		if d.StaleIfError {
			c.stale = e
			sieHdr := [][2]string{{"cache-status", CacheStatus("hit", "detail=stale-if-error")}}
			if err := call("wedge_cache_fallback", map[string]any{"id": e.ID, "headers": sieHdr}, nil); err != nil {
				proxywasm.LogWarnf("wedge_cache_fallback: %v", err)
			}
		}
		if cond := Conditional(stored); len(cond) > 0 && c.method == "GET" {
			for _, n := range [...]string{"if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range", "range"} {
				_ = proxywasm.RemoveHttpRequestHeader(n)
			}
			for _, f := range cond {
				if err := proxywasm.AddHttpRequestHeader(f[0], f[1]); err != nil {
					proxywasm.LogWarnf("adding %s: %v", f[0], err)
				}
			}
			c.revalidate = e
		}
	}
	if rcc.Has("only-if-cached") { // §5.2.1.7
		hdr := [][2]string{{"cache-status", CacheStatus("fwd="+c.fwd, "detail=only-if-cached")}}
		_ = proxywasm.SendHttpResponse(504, hdr, nil, -1)
		return types.ActionPause
	}
	if c.method != "GET" || !c.policy.Lock || c.fwd == "request" {
		return types.ActionContinue
	}
	// Collapse: one request per key goes upstream (nginx proxy_cache_lock).
	var fill struct {
		Fill string `json:"fill"`
	}
	args := map[string]any{
		"key":     c.key,
		"wait_ms": c.policy.LockTimeout.Milliseconds(),
		"headers": [][2]string{{"cache-status", CacheStatus("hit", "collapsed")}},
	}
	if err := call("wedge_cache_fill", args, &fill); err != nil {
		proxywasm.LogWarnf("wedge_cache_fill: %v", err)
		return types.ActionContinue
	}
	if fill.Fill == "wait" {
		// The host answers from the fill, or resumes the request to go
		// upstream itself; the VM is not held meanwhile.
		c.fwd = "miss"
		return types.ActionPause
	}
	c.lead = true
	return types.ActionContinue
}

// serve answers from stored entry e: the host writes its body.
func (c *httpContext) serve(e *entry, age time.Duration, status string) types.Action {
	var ok struct {
		OK bool `json:"ok"`
	}
	if err := call("wedge_cache_serve", map[string]uint64{"id": e.ID}, &ok); err != nil || !ok.OK {
		c.fwd = "miss"
		return types.ActionContinue // gone meanwhile: a miss
	}
	hdr := ServedHeader(Header(e.Headers), age, status)
	if err := proxywasm.SendHttpResponse(uint32(e.Status), hdr, nil, -1); err != nil {
		proxywasm.LogWarnf("answering from the cache: %v", err)
		return types.ActionContinue
	}
	return types.ActionPause
}

func (c *httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	hdr, err := proxywasm.GetHttpResponseHeaders()
	if err != nil {
		return types.ActionContinue
	}
	resp := Header(hdr)
	status, _ := strconv.Atoi(resp.Get(":status"))
	if c.invalidate {
		if keys := InvalidationKeys(c.key, status, resp); len(keys) > 0 {
			if err := call("wedge_cache_invalidate", map[string]any{"keys": keys}, nil); err != nil {
				proxywasm.LogWarnf("wedge_cache_invalidate: %v", err)
			}
		}
		return types.ActionContinue
	}
	if c.key == "" || c.fwd == "" {
		return types.ActionContinue // not a cacheable method
	}
	if c.revalidate != nil || c.stale != nil {
		switch {
		case status == 304 && c.revalidate != nil:
			var res struct {
				OK    bool  `json:"ok"`
				Entry entry `json:"entry"`
			}
			args := map[string]any{"id": c.revalidate.ID}
			// The 304's fields replace the stored ones of the same name
			// (§4.3.4): the lifetime of the freshened entry, for Wedge
			// to answer its plain hits again (fresh_ms).
			merged := Freshened(Header(c.revalidate.Headers), resp)
			if fast := c.fastArgs(c.revalidate.Status, merged); fast != nil {
				for k, v := range fast {
					args[k] = v
				}
			}
			if err := call("wedge_cache_freshen", args, &res); err == nil && res.OK {
				e := &res.Entry
				now := time.Now()
				age := CurrentAge(Header(e.Headers), time.UnixMilli(e.ReqTime), time.UnixMilli(e.RespTime), now)
				out := ServedHeader(Header(e.Headers), age, CacheStatus("fwd="+c.fwd, "fwd-status=304"))
				_ = proxywasm.SendHttpResponse(uint32(e.Status), out, nil, -1)
				return types.ActionPause
			}
		case c.stale != nil && (status == 500 || status == 502 || status == 503 || status == 504): // RFC 5861 §4
			var ok struct {
				OK bool `json:"ok"`
			}
			if err := call("wedge_cache_serve", map[string]uint64{"id": c.stale.ID}, &ok); err == nil && ok.OK {
				e := c.stale
				age := CurrentAge(Header(e.Headers), time.UnixMilli(e.ReqTime), time.UnixMilli(e.RespTime), time.Now())
				out := ServedHeader(Header(e.Headers), age, CacheStatus("fwd="+c.fwd, "fwd-status="+strconv.Itoa(status), "detail=stale-if-error"))
				_ = proxywasm.SendHttpResponse(uint32(e.Status), out, nil, -1)
				return types.ActionPause
			}
		}
	}
	params := []string{"fwd=" + c.fwd, "fwd-status=" + strconv.Itoa(status)}
	if c.store {
		if ok, why := c.policy.Storable(c.method, c.req, status, resp); ok {
			if err := call("wedge_cache_store", c.storeArgs(status, resp), nil); err != nil {
				proxywasm.LogWarnf("wedge_cache_store: %v", err)
			} else {
				params = append(params, "stored")
			}
		} else {
			params = append(params, "detail="+sfToken(why))
			if Passable(why, status, c.revalidate != nil || c.stale != nil) && c.policy.HitForPass > 0 {
				args := map[string]any{"key": c.key, "for_ms": c.policy.HitForPass.Milliseconds(), "status": CacheStatus("fwd=bypass", "detail=hit-for-pass")}
				if err := call("wedge_cache_pass", args, nil); err != nil {
					proxywasm.LogWarnf("wedge_cache_pass: %v", err)
				}
			}
		}
	}
	if err := proxywasm.ReplaceHttpResponseHeader("cache-status", AppendCacheStatus(resp.Values("cache-status"), CacheStatus(params...))); err != nil {
		proxywasm.LogWarnf("setting cache-status: %v", err)
	}
	return types.ActionContinue
}

// storeArgs are wedge_cache_store's arguments. When every plain request
// (no Cache-Control, Pragma, Authorization, conditionals or Range) would
// be served the stored response while it is fresh (Decide's UseFresh:
// a freshness lifetime, no response no-cache), they carry that lifetime
// (fresh_ms), so Wedge answers such hits itself without running this
// filter, with the Age and Cache-Status ("wedge; hit; ttl=N") it would
// send.
func (c *httpContext) storeArgs(status int, resp Header) map[string]any {
	args := map[string]any{"key": c.key}
	for k, v := range c.fastArgs(status, resp) {
		args[k] = v
	}
	return args
}

// fastArgs are the fresh_ms, head and hit_status arguments of
// wedge_cache_store and wedge_cache_freshen for a response, nil when
// plain requests may not be answered without the filter.
func (c *httpContext) fastArgs(status int, resp Header) map[string]any {
	cc := resp.CC()
	life, _ := c.policy.lifetime(status, resp, cc, time.Now())
	if life <= 0 || cc.Has("no-cache") {
		return nil
	}
	return map[string]any{"fresh_ms": life.Milliseconds(), "head": contains(c.policy.Methods, "HEAD"), "hit_status": CacheStatus("hit")}
}

// sfToken turns a reason into an RFC 8941 token usable as detail=.
func sfToken(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == ' ' {
			b[i] = '-'
		}
	}
	return string(b)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
