package proxy

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wedgeproxy/wedge/server/internal/cachestore"
	"github.com/wedgeproxy/wedge/server/internal/message"
	"github.com/wedgeproxy/wedge/server/pluginhost"
)

// Cache is the host side of the cache plugin (plugins/cache): the store of
// responses and the fills in flight (request collapsing). One Cache serves
// the whole process, across configuration generations: a reload keeps
// what is stored. The plugin decides (RFC 9111 policy); the Cache keeps,
// finds and writes bodies, reached through the wedge_cache_* foreign
// functions documented in sdk/README.md.
type Cache struct {
	store *cachestore.Store

	mu         sync.Mutex
	fills      map[string]*cacheFill // primary key -> the fill in flight
	refreshing map[uint64]bool       // entries being revalidated in the background

	hits, misses, collapsed, refreshes atomic.Int64

	// fastPlugins holds the names of the plugins that stored an entry
	// Wedge may serve itself (cachestore.Fast), copied on write: the
	// request hook looks a request up only at their place in the chain.
	fastPlugins atomic.Pointer[map[string]bool]

	passMu sync.Mutex
	passes *simplelru.LRU[string, cachePass] // primary key -> hit-for-pass (wedge_cache_pass)
}

// cachePass is a key the plugin found uncacheable: until then, plain
// requests for it leave the plugin out (Varnish's hit-for-pass).
type cachePass struct {
	plugin string
	until  time.Time
	status string // the plugin's Cache-Status member for such a request
}

// maxPasses bounds the hit-for-pass keys remembered (least recently used
// forgotten first: a forgotten key only costs the plugin's decision again).
const maxPasses = 64 << 10

// cacheFill is one request fetching a key from the upstream while others
// wait for it (nginx's proxy_cache_lock).
type cacheFill struct {
	waiters []*cacheWaiter
}

// cacheWaiter is a request paused by the cache plugin until a fill ends.
type cacheWaiter struct {
	mu     sync.Mutex
	done   bool // withdrawn by its exchange or woken
	st     *exchangeState
	stream *pluginhost.Stream
	plugin string
	header message.Header // fields the plugin wants on a collapsed hit
	timer  *time.Timer
}

// cacheState is an exchange's dealings with the Cache (part of the pooled
// exchangeState; the zero value is "none").
type cacheState struct {
	// serve: the next local response of the cache plugin gets this
	// entry's body (wedge_cache_serve, wedge_cache_freshen, a collapsed
	// hit); file is the entry's open body file, closed at release.
	serve      bool
	sec        message.Section
	file       *os.File
	storeKey   string            // wedge_cache_store: store the response under this key
	fast       *cachestore.Fast  // ... and let Wedge serve it while fresh
	passStatus string            // a passed request's Cache-Status member (hit-for-pass)
	fillKey    string            // this request leads the fill of this key
	filled     *cachestore.Entry // the entry a 304 freshened, for the fill's waiters
	waiter     *cacheWaiter
	fallback   *cacheFallback
}

// cacheFallback is a stored response to serve if the upstream cannot be
// reached (stale-if-error, RFC 5861 §4).
type cacheFallback struct {
	id     uint64
	header message.Header
}

// NewCache opens a cache store (see cachestore.Options) and registers its
// metrics on reg (nil: none): wedge_cache_hits_total,
// wedge_cache_misses_total, wedge_cache_collapsed_total,
// wedge_cache_background_revalidations_total, wedge_cache_stored_total,
// wedge_cache_evictions_total, wedge_cache_purged_total (counters),
// wedge_cache_entries and wedge_cache_bytes (gauges).
func NewCache(opt cachestore.Options, reg prometheus.Registerer) (*Cache, error) {
	st, err := cachestore.New(opt)
	if err != nil {
		return nil, fmt.Errorf("opening cache: %w", err)
	}
	passes, err := simplelru.NewLRU[string, cachePass](maxPasses, nil)
	if err != nil {
		return nil, err
	}
	c := &Cache{store: st, fills: make(map[string]*cacheFill), refreshing: make(map[uint64]bool), passes: passes}
	if reg != nil {
		if err := reg.Register(cacheCollector{c}); err != nil {
			return nil, fmt.Errorf("registering cache metrics: %w", err)
		}
	}
	return c, nil
}

// Store returns the cache's store.
func (c *Cache) Store() *cachestore.Store { return c.store }

// Close empties the store (removing its body files).
func (c *Cache) Close() error { return c.store.Close() }

type cacheCollector struct{ c *Cache }

var (
	descCacheHits      = prometheus.NewDesc("wedge_cache_hits_total", "Responses served from the cache store (hits, collapsed waiters, revalidated and stale responses).", nil, nil)
	descCacheMisses    = prometheus.NewDesc("wedge_cache_misses_total", "Cache lookups that found no stored response for the request.", nil, nil)
	descCacheCollapsed = prometheus.NewDesc("wedge_cache_collapsed_total", "Requests that waited for another request's fill of the same key.", nil, nil)
	descCacheRefresh   = prometheus.NewDesc("wedge_cache_background_revalidations_total", "Background revalidations (stale-while-revalidate) sent upstream.", nil, nil)
	descCacheStored    = prometheus.NewDesc("wedge_cache_stored_total", "Responses stored.", nil, nil)
	descCacheEvicted   = prometheus.NewDesc("wedge_cache_evictions_total", "Entries evicted to stay within the size bound.", nil, nil)
	descCachePurged    = prometheus.NewDesc("wedge_cache_purged_total", "Entries removed by purge or invalidation.", nil, nil)
	descCacheEntries   = prometheus.NewDesc("wedge_cache_entries", "Entries in the cache store.", nil, nil)
	descCacheBytes     = prometheus.NewDesc("wedge_cache_bytes", "Bytes held by the cache store (bodies and header fields).", nil, nil)
)

func (cc cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range [...]*prometheus.Desc{descCacheHits, descCacheMisses, descCacheCollapsed, descCacheRefresh, descCacheStored, descCacheEvicted, descCachePurged, descCacheEntries, descCacheBytes} {
		ch <- d
	}
}

func (cc cacheCollector) Collect(ch chan<- prometheus.Metric) {
	c, s := cc.c, cc.c.store.Stats()
	ch <- prometheus.MustNewConstMetric(descCacheHits, prometheus.CounterValue, float64(c.hits.Load()))
	ch <- prometheus.MustNewConstMetric(descCacheMisses, prometheus.CounterValue, float64(c.misses.Load()))
	ch <- prometheus.MustNewConstMetric(descCacheCollapsed, prometheus.CounterValue, float64(c.collapsed.Load()))
	ch <- prometheus.MustNewConstMetric(descCacheRefresh, prometheus.CounterValue, float64(c.refreshes.Load()))
	ch <- prometheus.MustNewConstMetric(descCacheStored, prometheus.CounterValue, float64(s.Stored))
	ch <- prometheus.MustNewConstMetric(descCacheEvicted, prometheus.CounterValue, float64(s.Evicted))
	ch <- prometheus.MustNewConstMetric(descCachePurged, prometheus.CounterValue, float64(s.Purged))
	ch <- prometheus.MustNewConstMetric(descCacheEntries, prometheus.GaugeValue, float64(s.Entries))
	ch <- prometheus.MustNewConstMetric(descCacheBytes, prometheus.GaugeValue, float64(s.Bytes))
}

// --- the wire format of the wedge_cache_* functions -------------------------

// cacheEntryJSON describes a stored entry to the plugin.
type cacheEntryJSON struct {
	ID       uint64      `json:"id"`
	Status   int         `json:"status"`
	Headers  [][2]string `json:"headers"`
	ReqTime  int64       `json:"request_time_ms"`
	RespTime int64       `json:"response_time_ms"`
	Size     int64       `json:"size"`
}

func entryJSON(e *cachestore.Entry) cacheEntryJSON {
	j := cacheEntryJSON{ID: e.ID, Status: e.Status, ReqTime: e.RequestTime.UnixMilli(), RespTime: e.ResponseTime.UnixMilli(), Size: e.Size}
	j.Headers = make([][2]string, len(e.Header))
	for i, f := range e.Header {
		j.Headers[i] = [2]string{f.Name, f.Value}
	}
	return j
}

// pairsHeader turns [name, value] pairs into fields, refusing a name that
// is not a token or a value with control characters.
func pairsHeader(pairs [][2]string) (message.Header, error) {
	h := make(message.Header, 0, len(pairs))
	for _, p := range pairs {
		if !isToken(p[0]) || !validFieldValue(p[1]) {
			return nil, fmt.Errorf("invalid header field %q", p[0])
		}
		h = append(h, message.Field{Name: p[0], Value: p[1]})
	}
	return h, nil
}

func validFieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

var errNoCache = errors.New("no cache store in this server")

// cacheCall decodes a foreign call's JSON args into v and returns the
// exchange and cache it acts on.
func cacheCall(call *pluginhost.ForeignCall, args []byte, v any) (*exchangeState, *Cache, error) {
	h, err := callHandler(call)
	if err != nil {
		return nil, nil, err
	}
	if h.cache == nil {
		return nil, nil, errNoCache
	}
	if v != nil {
		if err := json.Unmarshal(args, v); err != nil {
			return nil, nil, fmt.Errorf("decoding arguments: %w", err)
		}
	}
	st, err := callExchange(call)
	if err != nil {
		return nil, h.cache, err
	}
	return st, h.cache, nil
}

// cacheLookup implements wedge_cache_lookup.
//
//	args:   {"key": "<primary key>"}
//	result: {"entries": [entry...], "now_ms": <host clock>}
//
// entries are the stored responses under key whose variant matches the
// calling request's fields (RFC 9111 §4.1), newest first; each is
// {"id", "status", "headers": [[name, value]...], "request_time_ms",
// "response_time_ms", "size"}.
func cacheLookup(call *pluginhost.ForeignCall, args []byte) ([]byte, error) {
	var a struct {
		Key string `json:"key"`
	}
	st, c, err := cacheCall(call, args, &a)
	if err != nil {
		return nil, err
	}
	es := c.store.Lookup(a.Key, st.ex.Req.Header)
	if len(es) == 0 {
		c.misses.Add(1)
	}
	out := struct {
		Entries []cacheEntryJSON `json:"entries"`
		Now     int64            `json:"now_ms"`
	}{Entries: make([]cacheEntryJSON, len(es)), Now: time.Now().UnixMilli()}
	for i := range es {
		out.Entries[i] = entryJSON(&es[i])
	}
	return json.Marshal(out)
}

// cacheServe implements wedge_cache_serve.
//
//	args:   {"id": <entry id>}
//	result: {"ok": true} or {"ok": false} when the entry is gone
//
// After ok, the plugin's next proxy_send_local_response with an empty body
// (in this request phase, or in a response phase) is answered with the
// entry's stored body, written from memory or the body file without
// passing through the guest; the plugin gives the status and header fields
// (Content-Length is set from the body).
func cacheServe(call *pluginhost.ForeignCall, args []byte) ([]byte, error) {
	var a struct {
		ID uint64 `json:"id"`
	}
	st, c, err := cacheCall(call, args, &a)
	if err != nil {
		return nil, err
	}
	e, ok := c.store.Get(a.ID)
	if ok {
		ok = st.cache.setServe(&e) == nil
	}
	if ok {
		c.hits.Add(1)
	}
	return okJSON(ok), nil
}

func okJSON(ok bool) []byte {
	if ok {
		return []byte(`{"ok":true}`)
	}
	return []byte(`{"ok":false}`)
}

// setServe arms the substitution of e's body.
func (cs *cacheState) setServe(e *cachestore.Entry) error {
	sec, f, err := e.Section()
	if err != nil {
		return err
	}
	if cs.file != nil {
		cs.file.Close()
	}
	cs.serve, cs.sec, cs.file = true, sec, f
	return nil
}

// cacheStore implements wedge_cache_store.
//
//	args:   {"key": "<primary key>"}
//	result: {}
//
// Called in proxy_on_response_headers: once every response phase ran and
// after wedge_compress_response compressed the body, the response as the
// client gets it (status, header fields minus Content-Length, body) is
// stored under key and the variant of the request's fields named by the
// response's Vary, with the times the request was sent upstream and its
// response arrived (RFC 9111 §4.2.3). A response with Vary: * is not
// stored.
//
// With fastArgs' fresh_ms, Wedge serves the entry itself, in the plugin's
// place, while it is fresh (Handler's request hook, fastHit).
func cacheStoreFn(call *pluginhost.ForeignCall, args []byte) ([]byte, error) {
	var a struct {
		Key string `json:"key"`
		fastArgs
	}
	st, _, err := cacheCall(call, args, &a)
	if err != nil {
		return nil, err
	}
	if a.Key == "" {
		return nil, errors.New("empty key")
	}
	st.cache.storeKey, st.cache.fast = a.Key, a.fast(call.Plugin)
	return []byte(`{}`), nil
}

// fastArgs are the optional arguments of wedge_cache_store and
// wedge_cache_freshen that let Wedge answer hits of the entry itself:
//
//	"fresh_ms":   the entry's freshness lifetime (RFC 9111 §4.2.1), ms;
//	              absent or 0: the plugin decides every use
//	"head":       HEAD requests may be answered too
//	"hit_status": the plugin's Cache-Status member for a hit ("wedge; hit")
type fastArgs struct {
	FreshMS   int64  `json:"fresh_ms"`
	Head      bool   `json:"head"`
	HitStatus string `json:"hit_status"`
}

func (a fastArgs) fast(plugin string) *cachestore.Fast {
	if a.FreshMS <= 0 {
		return nil
	}
	return &cachestore.Fast{Plugin: plugin, Lifetime: time.Duration(a.FreshMS) * time.Millisecond, Head: a.Head, HitStatus: a.HitStatus}
}

// setFast marks entry id as servable by Wedge (f non-nil) and remembers
// f's plugin for the request hook.
func (c *Cache) setFast(id uint64, f *cachestore.Fast) {
	if f == nil || !c.store.SetFast(id, f) {
		return
	}
	c.markFastPlugin(f.Plugin)
}

// markFastPlugin remembers that plugin stored entries Wedge may serve.
func (c *Cache) markFastPlugin(plugin string) {
	for {
		old := c.fastPlugins.Load()
		if old != nil && (*old)[plugin] {
			return
		}
		m := map[string]bool{plugin: true}
		if old != nil {
			for k := range *old {
				m[k] = true
			}
		}
		if c.fastPlugins.CompareAndSwap(old, &m) {
			return
		}
	}
}

// fastHit answers a request from the store in plugin's place when an entry
// that plugin marked (wedge_cache_store's fresh_ms) matches it and is
// still fresh, and the request is a plain GET (or HEAD): no field that
// could change the plugin's decision (Cache-Control, Pragma,
// Authorization, conditionals, Range; RFC 9111 §5.2.1, §3.5, §4.3.2). The
// key is the effective URI as the plugin computes it (RFC 9111 §2):
// scheme://host/target with scheme and host in lower case. It arms the
// body as wedge_cache_serve does.
//
// A key the plugin found uncacheable (wedge_cache_pass) is passed instead:
// skip, and the plugin's Cache-Status member is added to the response.
func (st *exchangeState) fastHit(plugin string) (answer *pluginhost.LocalResponse, skip bool) {
	c := st.h.cache
	if c == nil {
		return nil, false
	}
	if m := c.fastPlugins.Load(); m == nil || !(*m)[plugin] {
		return nil, false
	}
	req := &st.ex.Req
	if req.Method != "GET" && req.Method != "HEAD" {
		return nil, false
	}
	for _, f := range req.Header {
		if decisive(f.Name) {
			return nil, false
		}
	}
	key := effectiveURI(req)
	now := time.Now()
	c.passMu.Lock()
	p, ok := c.passes.Get(key)
	c.passMu.Unlock()
	if ok && p.plugin == plugin && now.Before(p.until) {
		st.cache.passStatus = p.status
		return nil, true
	}
	es := c.store.Lookup(key, req.Header)
	if len(es) == 0 {
		return nil, false
	}
	e := &es[0]
	f := e.Fast
	if f == nil || f.Plugin != plugin || req.Method == "HEAD" && !f.Head {
		return nil, false
	}
	age := CurrentAge(e.Header, e.RequestTime, e.ResponseTime, now)
	if age >= f.Lifetime {
		return nil, false // stale: the plugin decides (revalidation, stale-*)
	}
	if st.cache.setServe(e) != nil {
		return nil, false
	}
	c.hits.Add(1)
	var extra message.Header
	if f.HitStatus != "" {
		ttl := strconv.FormatInt(int64((f.Lifetime-age)/time.Second), 10)
		extra = message.Header{{Name: "Cache-Status", Value: appendCacheStatus(e.Header.Values("Cache-Status"), f.HitStatus+"; ttl="+ttl)}}
	}
	return &pluginhost.LocalResponse{Status: e.Status, Header: servedHeader(e, extra, now)}, false
}

// decisiveFields are the request fields that may change the cache
// plugin's decision about a stored response (RFC 9111 §5.2.1, §3.5,
// §4.3.2, RFC 9110 §14.2): a request carrying one is left to the plugin.
var decisiveFields = [...]string{"range", "pragma", "if-match", "if-range", "cache-control", "authorization", "if-none-match", "if-modified-since", "if-unmodified-since"}

// decisive reports whether name is one of decisiveFields, without
// allocating (it runs for every field of every request at the cache's
// place in the chain).
func decisive(name string) bool {
	for _, d := range decisiveFields {
		if len(name) == len(d) && strings.EqualFold(name, d) {
			return true
		}
	}
	return false
}

// effectiveURI is a request's primary cache key as the cache plugin makes
// it (RFC 9111 §2): scheme://host/target, scheme and host in lower case.
func effectiveURI(req *message.Request) string {
	target := req.Target
	if target == "" {
		target = "/"
	}
	return strings.ToLower(cmp.Or(req.Scheme, "http")) + "://" + strings.ToLower(req.Host) + target
}

// cachePassFn implements wedge_cache_pass (Varnish's hit-for-pass).
//
//	args:   {"key": "<primary key>", "for_ms": <duration>, "status": "<Cache-Status member>"}
//	result: {}
//
// For for_ms, Wedge leaves the calling plugin out of plain GET and HEAD
// requests for key (those fastHit would consider: no Cache-Control,
// Pragma, Authorization, conditionals or Range): none of its callbacks
// runs for them, and status, if given, is added to their response's
// Cache-Status with fwd-status=<the status code>. Storing an entry under
// key, invalidating or purging it ends the pass.
func cachePassFn(call *pluginhost.ForeignCall, args []byte) ([]byte, error) {
	var a struct {
		Key    string `json:"key"`
		ForMS  int64  `json:"for_ms"`
		Status string `json:"status"`
	}
	_, c, err := cacheCall(call, args, &a)
	if err != nil {
		return nil, err
	}
	if a.Key == "" || a.ForMS <= 0 {
		return nil, errors.New("wedge_cache_pass needs a key and for_ms > 0")
	}
	c.passMu.Lock()
	c.passes.Add(a.Key, cachePass{plugin: call.Plugin, until: time.Now().Add(time.Duration(a.ForMS) * time.Millisecond), status: a.Status})
	c.passMu.Unlock()
	c.markFastPlugin(call.Plugin)
	return []byte(`{}`), nil
}

// unpass ends the hit-for-pass of keys ("" ends every one).
func (c *Cache) unpass(keys ...string) {
	c.passMu.Lock()
	defer c.passMu.Unlock()
	for _, k := range keys {
		if k == "" {
			c.passes.Purge()
			return
		}
		c.passes.Remove(k)
	}
}

// appendCacheStatus adds a cache's member to the Cache-Status values a
// response carries (RFC 9211 §2), dropping the members of the same cache
// (the name before the first ";") already there.
func appendCacheStatus(existing []string, ours string) string {
	name, _, _ := strings.Cut(ours, ";")
	name = strings.TrimSpace(name)
	var b strings.Builder
	for _, v := range existing {
		for m := range strings.SplitSeq(v, ",") {
			m = strings.TrimSpace(m)
			n, _, _ := strings.Cut(m, ";")
			if m == "" || strings.TrimSpace(n) == name {
				continue
			}
			b.WriteString(m)
			b.WriteString(", ")
		}
	}
	b.WriteString(ours)
	return b.String()
}

// cacheInvalidate implements wedge_cache_invalidate (RFC 9111 §4.4).
//
//	args:   {"keys": ["<primary key>"...]}
//	result: {"purged": <entries removed>}
func cacheInvalidate(call *pluginhost.ForeignCall, args []byte) ([]byte, error) {
	var a struct {
		Keys []string `json:"keys"`
	}
	_, c, err := cacheCall(call, args, &a)
	if c == nil {
		return nil, err
	}
	n := 0
	for _, k := range a.Keys {
		n += c.store.Purge(k)
		c.unpass(k)
	}
	return json.Marshal(struct {
		Purged int `json:"purged"`
	}{n})
}

// cacheFillFn implements wedge_cache_fill: request collapsing (nginx
// proxy_cache_lock).
//
//	args:   {"key": "<primary key>", "wait_ms": <lock timeout, default 5000>,
//	         "headers": [[name, value]...]}
//	result: {"fill": "lead"} or {"fill": "wait"}
//
// "lead": no other request is fetching key; this one does, and requests
// for key that call wedge_cache_fill before its response is stored wait.
// "wait": another request is fetching key; the plugin must return Pause.
// When the fill ends, Wedge answers the waiting request itself if the fill
// stored a response whose variant matches it (status and fields as
// stored, minus Content-Length, plus Age (RFC 9111 §4.2.3) and the
// "headers" the plugin gave, typically Cache-Status), as if the plugin had
// served that entry; otherwise (nothing stored, the fill failed, or
// wait_ms passed) the request is resumed and goes upstream itself.
func cacheFillFn(call *pluginhost.ForeignCall, args []byte) ([]byte, error) {
	var a struct {
		Key     string      `json:"key"`
		WaitMS  int64       `json:"wait_ms"`
		Headers [][2]string `json:"headers"`
	}
	st, c, err := cacheCall(call, args, &a)
	if err != nil {
		return nil, err
	}
	hdr, err := pairsHeader(a.Headers)
	if err != nil {
		return nil, err
	}
	if a.Key == "" {
		return nil, errors.New("empty key")
	}
	if a.WaitMS <= 0 {
		a.WaitMS = 5000
	}
	if st.cache.fillKey != "" || st.cache.waiter != nil {
		return nil, errors.New("wedge_cache_fill called twice for one request")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.fills[a.Key]
	if f == nil {
		c.fills[a.Key] = &cacheFill{}
		st.cache.fillKey = a.Key
		return []byte(`{"fill":"lead"}`), nil
	}
	w := &cacheWaiter{st: st, stream: call.Stream, plugin: call.Plugin, header: hdr}
	f.waiters = append(f.waiters, w)
	st.cache.waiter = w
	c.collapsed.Add(1)
	w.timer = time.AfterFunc(time.Duration(a.WaitMS)*time.Millisecond, func() { c.wake(w, nil) })
	return []byte(`{"fill":"wait"}`), nil
}

// wake ends w's wait: served from e when e is not nil and matches its
// request, else resumed. It never runs inside a foreign function (it locks
// the waiting plugin's VM).
func (c *Cache) wake(w *cacheWaiter, e *cachestore.Entry) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	w.done = true
	w.timer.Stop()
	if e != nil {
		if v, ok := cachestore.Variant(e.Vary, w.st.ex.Req.Header); ok && v == e.Variant && w.st.cache.setServe(e) == nil {
			lr := &pluginhost.LocalResponse{Status: e.Status, Header: servedHeader(e, w.header, time.Now())}
			if w.stream.Respond(w.plugin, lr) {
				c.hits.Add(1)
				return
			}
			w.st.cache.serve = false
		}
	}
	w.stream.Resume(w.plugin)
}

// servedHeader returns a stored entry's fields as served: without
// Content-Length, with Age set to its current age, plus extra.
func servedHeader(e *cachestore.Entry, extra message.Header, now time.Time) message.Header {
	h := e.Header.Clone()
	h.Del("Content-Length")
	h.Set("Age", strconv.FormatInt(int64(CurrentAge(e.Header, e.RequestTime, e.ResponseTime, now)/time.Second), 10))
	for _, f := range extra {
		h.Set(f.Name, f.Value)
	}
	return h
}

// CurrentAge computes a stored response's current_age (RFC 9111 §4.2.3):
// the larger of its apparent age (response_time - Date) and its Age field
// plus the response delay, plus the time it has been resident since
// response_time.
func CurrentAge(h message.Header, reqTime, respTime, now time.Time) time.Duration {
	var apparent, ageValue time.Duration
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		apparent = max(0, respTime.Sub(d))
	}
	if n, err := strconv.ParseInt(strings.TrimSpace(h.Get("Age")), 10, 64); err == nil && n > 0 {
		ageValue = time.Duration(min(n, 1<<31)) * time.Second
	}
	corrected := ageValue + respTime.Sub(reqTime)
	return max(apparent, corrected) + now.Sub(respTime)
}

// endFill ends the fill this exchange leads, if any: its waiters are
// served from e (nil: resumed to go upstream themselves). It locks the
// waiters' VMs, so it never runs inside a foreign function (the caller's
// VM may be a waiter's too).
func (st *exchangeState) endFill(e *cachestore.Entry) {
	key := st.cache.fillKey
	if key == "" || st.h.cache == nil {
		return
	}
	st.cache.fillKey = ""
	c := st.h.cache
	c.mu.Lock()
	f := c.fills[key]
	delete(c.fills, key)
	c.mu.Unlock()
	if f == nil {
		return
	}
	for _, w := range f.waiters {
		c.wake(w, e)
	}
}

// withdrawWait takes the exchange's wait off its fill once its request
// phase is over (woken or not), so nothing touches its stream afterwards.
func (st *exchangeState) withdrawWait() {
	w := st.cache.waiter
	if w == nil {
		return
	}
	st.cache.waiter = nil
	w.mu.Lock()
	w.done = true
	if w.timer != nil {
		w.timer.Stop()
	}
	w.mu.Unlock()
}

// cacheFreshen implements wedge_cache_freshen: the end of a revalidation
// (RFC 9111 §4.3.3, §4.3.4).
//
//	args:   {"id": <entry id>}
//	result: {"ok": true, "entry": entry} or {"ok": false}
//
// Called in proxy_on_response_headers of a 304 Not Modified answering the
// conditional request the plugin made from entry id: the stored fields are
// updated with the 304's (every field the 304 carries replaces the stored
// ones of that name, except Content-Length, Content-Encoding, Vary and,
// for a stored response with a content coding, ETag: the stored body
// depends on them; RFC 9111 §3.2), the request and response times become
// this exchange's, and the entry's body is armed to be served as with
// wedge_cache_serve: the plugin then answers with
// proxy_send_local_response(entry status, fields, empty body).
func cacheFreshen(call *pluginhost.ForeignCall, args []byte) ([]byte, error) {
	var a struct {
		ID uint64 `json:"id"`
		fastArgs
	}
	st, c, err := cacheCall(call, args, &a)
	if err != nil {
		return nil, err
	}
	if st.plugins == nil || st.resp.Status != 304 {
		return nil, errors.New("wedge_cache_freshen outside the response phase of a 304")
	}
	e, ok := c.freshen(a.ID, st.resp.Header, st.upstreamStart, st.upstreamDone)
	if ok && st.cache.setServe(&e) != nil {
		ok = false
	}
	if !ok {
		return okJSON(false), nil
	}
	c.hits.Add(1)
	c.setFast(e.ID, a.fast(call.Plugin))
	st.cache.filled = &e // the waiters are woken once the phase is over (never inside a foreign function)
	return json.Marshal(struct {
		OK    bool           `json:"ok"`
		Entry cacheEntryJSON `json:"entry"`
	}{true, entryJSON(&e)})
}

// freshen merges a 304's fields into entry id (RFC 9111 §4.3.4, §3.2).
func (c *Cache) freshen(id uint64, h304 message.Header, reqTime, respTime time.Time) (cachestore.Entry, bool) {
	old, ok := c.store.Get(id)
	if !ok {
		return old, false
	}
	if reqTime.IsZero() {
		reqTime = time.Now()
	}
	if respTime.IsZero() {
		respTime = time.Now()
	}
	coded := old.Header.Has("Content-Encoding")
	h := old.Header.Clone()
	seen := map[string]bool{}
	for _, f := range h304 {
		name := http.CanonicalHeaderKey(f.Name)
		switch name {
		case "Content-Length", "Content-Encoding", "Vary", "Transfer-Encoding", "Connection", "Keep-Alive", "Via":
			continue
		case "Etag":
			if coded {
				continue
			}
		}
		if !seen[name] {
			seen[name] = true
			h.Del(name)
		}
		h.Add(f.Name, f.Value)
	}
	return c.store.Freshen(id, h, reqTime, respTime)
}

// cacheFallbackFn implements wedge_cache_fallback (RFC 5861 §4,
// stale-if-error).
//
//	args:   {"id": <entry id>, "headers": [[name, value]...]}
//	result: {"ok": true} or {"ok": false}
//
// If this request's upstream cannot be reached (no connection, a timeout,
// no server up: what would be Wedge's own 502 or 504), Wedge answers with
// the entry instead, with its stored status and fields minus
// Content-Length, Age set to its current age, plus "headers". An error
// status the upstream sends is the plugin's to handle in
// proxy_on_response_headers (wedge_cache_serve then a local response).
func cacheFallbackFn(call *pluginhost.ForeignCall, args []byte) ([]byte, error) {
	var a struct {
		ID      uint64      `json:"id"`
		Headers [][2]string `json:"headers"`
	}
	st, c, err := cacheCall(call, args, &a)
	if err != nil {
		return nil, err
	}
	hdr, err := pairsHeader(a.Headers)
	if err != nil {
		return nil, err
	}
	e, ok := c.store.Get(a.ID)
	if !ok {
		return okJSON(false), nil
	}
	st.cache.fallback = &cacheFallback{id: e.ID, header: hdr}
	return okJSON(true), nil
}

// serveFallback answers from the stale-if-error entry instead of a 502 or
// 504, and reports whether it did.
func (st *exchangeState) serveFallback() bool {
	fb, c := st.cache.fallback, st.h.cache
	if fb == nil || c == nil {
		return false
	}
	st.cache.fallback = nil
	e, ok := c.store.Get(fb.id)
	if !ok || st.cache.setServe(&e) != nil {
		return false
	}
	st.cache.serve = false
	c.hits.Add(1)
	st.endFill(nil)
	resp := &st.resp
	*resp = message.Response{Status: e.Status, Proto: "HTTP/1.1", Header: servedHeader(&e, fb.header, time.Now()), ContentLength: e.Size}
	if !resp.Header.Has("Date") {
		resp.Header.Add("Date", httpDate())
	}
	st.secs = append(st.secs[:0], st.cache.sec)
	st.writeResponse(resp, st.secs)
	return true
}

// cacheRefresh implements wedge_cache_refresh: the background
// revalidation of stale-while-revalidate (RFC 5861 §3).
//
//	args:   {"id": <entry id>, "upstream": "<pool>", "timeout_ms": <default 60000>}
//	result: {"started": true} or {"started": false} (gone, or already running)
//
// Wedge sends, from its own goroutine and without holding the request, a
// GET for the calling request's target and host to the pool, with the
// request's fields (hop-by-hop ones removed) and the entry's validators
// (If-None-Match from its ETag, If-Modified-Since from its
// Last-Modified). A 304 freshens the entry as wedge_cache_freshen does;
// any other answer removes the entry, so the next request misses and the
// plugin's policy decides whether to store the new response. Only one
// refresh per entry runs at a time.
func cacheRefresh(call *pluginhost.ForeignCall, args []byte) ([]byte, error) {
	var a struct {
		ID        uint64 `json:"id"`
		Upstream  string `json:"upstream"`
		TimeoutMS int64  `json:"timeout_ms"`
	}
	st, c, err := cacheCall(call, args, &a)
	if err != nil {
		return nil, err
	}
	h := st.h
	if !h.HasUpstream(a.Upstream) {
		return nil, fmt.Errorf("no upstream named %q", a.Upstream)
	}
	e, ok := c.store.Get(a.ID)
	if !ok {
		return []byte(`{"started":false}`), nil
	}
	c.mu.Lock()
	busy := c.refreshing[a.ID]
	c.refreshing[a.ID] = true
	c.mu.Unlock()
	if busy {
		return []byte(`{"started":false}`), nil
	}
	req := &message.Request{Method: "GET", Target: st.ex.Req.Target, Host: st.ex.Req.Host, Proto: "HTTP/1.1", Header: st.ex.Req.Header.Clone()}
	removeHopByHop(&req.Header, false)
	for _, n := range [...]string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range", "Range", "Content-Length", "Expect"} {
		req.Header.Del(n)
	}
	if req.Header.Get("Host") == "" {
		req.Header.Add("Host", req.Host)
	}
	if et := e.Header.Get("ETag"); et != "" {
		req.Header.Add("If-None-Match", et)
	}
	if lm := e.Header.Get("Last-Modified"); lm != "" {
		req.Header.Add("If-Modified-Since", lm)
	}
	c.refreshes.Add(1)
	timeout := time.Duration(a.TimeoutMS) * time.Millisecond
	go c.refresh(h, a.Upstream, e.ID, req, timeout)
	return []byte(`{"started":true}`), nil
}

func (c *Cache) refresh(h *Handler, pool string, id uint64, req *message.Request, timeout time.Duration) {
	defer func() {
		c.mu.Lock()
		delete(c.refreshing, id)
		c.mu.Unlock()
	}()
	if !h.enter() {
		return
	}
	defer h.leave()
	sent := time.Now()
	resp, _, err := h.Dispatch(context.Background(), pool, req, nil, timeout)
	if err != nil {
		return // stale stays stale; the next request tries again
	}
	if resp.Status == 304 {
		c.freshen(id, resp.Header, sent, time.Now())
		return
	}
	if e, ok := c.store.Get(id); ok {
		c.store.Purge(e.Key)
	}
}

// cacheAfterResponse stores the response when the plugin asked for it,
// and ends the fill this exchange leads. Called by afterResponsePhases
// after compression.
func (st *exchangeState) cacheAfterResponse(resp *message.Response) {
	c := st.h.cache
	if c == nil {
		return
	}
	if ps := st.cache.passStatus; ps != "" {
		st.cache.passStatus = ""
		resp.Header.Set("Cache-Status", appendCacheStatus(resp.Header.Values("Cache-Status"), ps+"; fwd-status="+strconv.Itoa(resp.Status)))
	}
	st.endFreshenedFill()
	if key := st.cache.storeKey; key != "" && !st.cache.serve {
		st.cache.storeKey = ""
		hdr := resp.Header.Clone()
		hdr.Del("Content-Length")
		var arr [8]message.Section
		reqT, respT := st.upstreamStart, st.upstreamDone
		if reqT.IsZero() {
			reqT = time.Now()
		}
		if respT.IsZero() {
			respT = reqT
		}
		e, err := c.store.Put(key, st.ex.Req.Header, resp.Status, hdr, st.rbody.Sections(arr[:0]), reqT, respT)
		if err == nil {
			c.unpass(key)
			c.setFast(e.ID, st.cache.fast)
			st.endFill(&e)
			return
		}
		if !errors.Is(err, cachestore.ErrTooLarge) {
			st.h.log.Warn("storing response in cache", "key", key, "error", err)
		}
	}
	st.endFill(nil)
}

// endFreshenedFill ends the fill this exchange leads with the entry a 304
// freshened (wedge_cache_freshen), once the phase that freshened it is
// over.
func (st *exchangeState) endFreshenedFill() {
	if e := st.cache.filled; e != nil {
		st.cache.filled = nil
		st.endFill(e)
	}
}

// cacheRelease ends what the exchange still holds of the cache: its wait,
// the fill it leads (its waiters go upstream), the body file it served.
func (st *exchangeState) cacheRelease() {
	st.withdrawWait()
	st.endFreshenedFill()
	st.endFill(nil)
	if st.cache.file != nil {
		st.cache.file.Close()
	}
	st.cache = cacheState{}
}

// takeServe returns the armed stored body, once. It is called as a local
// response begins, outside any plugin callback, so it also ends a fill a
// 304 completed.
func (st *exchangeState) takeServe() (message.Section, bool) {
	st.endFreshenedFill()
	if !st.cache.serve {
		return message.Section{}, false
	}
	st.cache.serve = false
	return st.cache.sec, true
}

// CachePurgeHandler serves the admin address's purge endpoint (POST or
// PURGE on /cache/purge):
//
//	/cache/purge?url=<absolute URL>   removes every variant of that key
//	/cache/purge?prefix=<prefix>      every key starting with prefix
//	/cache/purge?all=1                everything
//
// The answer is JSON: {"purged": <entries removed>}. Keys are what the
// cache plugin stores: the effective request URI of a GET, e.g.
// "http://example.com/a?b=c".
func CachePurgeHandler(c *Cache) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c == nil {
			http.Error(w, "no cache", http.StatusNotFound)
			return
		}
		if r.Method != http.MethodPost && r.Method != "PURGE" {
			w.Header().Set("Allow", "POST, PURGE")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		var n int
		q := r.URL.Query()
		switch {
		case q.Get("url") != "":
			n = c.store.Purge(q.Get("url"))
			c.unpass(q.Get("url"))
		case q.Has("prefix"):
			n = c.store.PurgePrefix(q.Get("prefix"))
			c.unpass("") // passes are few and cheap to learn again
		case q.Get("all") == "1":
			n = c.store.PurgePrefix("")
			c.unpass("")
		default:
			http.Error(w, "give url=, prefix= or all=1", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, "{\"purged\":%d}\n", n)
	})
}
