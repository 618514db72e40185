package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is the plugin's configuration (JSON). The zero value of each
// field is its default.
type Config struct {
	// Heuristics: "on" (default) gives responses without explicit
	// freshness a heuristic lifetime where RFC 9111 §4.2.2 allows (a
	// heuristically cacheable status, a Last-Modified, no explicit
	// expiry); "off" never does.
	Heuristics string `json:"heuristics"`
	// HeuristicFraction is the share of the Last-Modified age used as the
	// heuristic lifetime (RFC 9111 §4.2.2 suggests 10%). Default 0.1.
	HeuristicFraction float64 `json:"heuristic_fraction"`
	// HeuristicMax caps a heuristic lifetime. Default "24h".
	HeuristicMax string `json:"heuristic_max"`
	// StaleIfError is how long past expiry a stored response may be
	// served when the upstream fails and the response carries no
	// stale-if-error of its own (RFC 5861 §4 lets a cache be configured
	// so). Default "0s": only the response's own directive counts.
	StaleIfError string `json:"stale_if_error"`
	// StoreSetCookie stores responses that carry Set-Cookie (RFC 9111
	// §7.3 allows it; the default false follows nginx, which does not
	// cache them unless told to, because a session cookie served to
	// another user is a leak).
	StoreSetCookie bool `json:"store_set_cookie"`
	// Lock collapses concurrent misses of one key into one upstream
	// request (nginx proxy_cache_lock). Default true.
	Lock *bool `json:"lock"`
	// LockTimeout bounds how long a request waits for another's fetch
	// before going upstream itself (nginx proxy_cache_lock_timeout).
	// Default "5s".
	LockTimeout string `json:"lock_timeout"`
	// Methods served from the cache: GET (stored) and HEAD (answered from
	// a stored GET). Default ["GET", "HEAD"]; only these two are allowed.
	Methods []string `json:"methods"`
	// HitForPass is how long plain GET and HEAD requests for a key whose
	// response could not be stored for a reason of the response's own
	// (no-store, private, Set-Cookie, never fresh, ...) skip this filter
	// entirely, as Varnish's hit-for-pass does: they go to the upstream
	// without a lookup, a fill or a decision, and get Cache-Status
	// "wedge; fwd=bypass; detail=hit-for-pass". Storing, invalidating or
	// purging the key ends it, so does a request with Cache-Control,
	// Pragma, Authorization, a conditional or Range (the filter decides
	// those). Default "2m"; "0s" turns it off.
	HitForPass string `json:"hit_for_pass"`
	// Valid gives a freshness lifetime to responses that carry none
	// (no s-maxage, max-age or Expires), by status, like nginx's
	// proxy_cache_valid: keys are status codes separated by spaces, or
	// "any"; values are durations, e.g. {"200 404": "10m", "any": "1m"}.
	// It is a heuristic lifetime in RFC 9111 §4.2.2's sense, so it
	// applies only to heuristically cacheable statuses (RFC 9110 §15.1:
	// 200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501) or to
	// responses marked public; naming another status is refused. It
	// takes precedence over the Last-Modified heuristic. Default: none.
	Valid map[string]string `json:"valid"`
}

// Policy is a parsed Config.
type Policy struct {
	Heuristics        bool
	HeuristicFraction float64
	HeuristicMax      time.Duration
	StaleIfError      time.Duration
	StoreSetCookie    bool
	Lock              bool
	LockTimeout       time.Duration
	Methods           []string
	Valid             map[int]time.Duration // status -> lifetime; 0 stands for "any"
	HitForPass        time.Duration
}

// ParseConfig checks a configuration and returns its policy. Empty data
// means the defaults. Errors name the field.
func ParseConfig(data []byte) (*Policy, error) {
	var c Config
	if len(strings.TrimSpace(string(data))) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("cache: reading configuration: %w", err)
		}
	}
	p := &Policy{Heuristics: true, HeuristicFraction: 0.1, HeuristicMax: 24 * time.Hour, Lock: true, LockTimeout: 5 * time.Second,
		Methods: []string{"GET", "HEAD"}, HitForPass: 2 * time.Minute}
	switch c.Heuristics {
	case "", "on":
	case "off":
		p.Heuristics = false
	default:
		return nil, fmt.Errorf("cache: heuristics: %q is neither on nor off", c.Heuristics)
	}
	if c.HeuristicFraction < 0 || c.HeuristicFraction > 1 {
		return nil, fmt.Errorf("cache: heuristic_fraction: %v is outside [0, 1]", c.HeuristicFraction)
	} else if c.HeuristicFraction > 0 {
		p.HeuristicFraction = c.HeuristicFraction
	}
	for _, d := range []struct {
		name string
		s    string
		dst  *time.Duration
	}{{"heuristic_max", c.HeuristicMax, &p.HeuristicMax}, {"stale_if_error", c.StaleIfError, &p.StaleIfError}, {"lock_timeout", c.LockTimeout, &p.LockTimeout},
		{"hit_for_pass", c.HitForPass, &p.HitForPass}} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("cache: %s: %q is not a duration", d.name, d.s)
		}
		*d.dst = v
	}
	p.StoreSetCookie = c.StoreSetCookie
	if c.Lock != nil {
		p.Lock = *c.Lock
	}
	if c.Methods != nil {
		p.Methods = nil
		for _, m := range c.Methods {
			if m != "GET" && m != "HEAD" {
				return nil, fmt.Errorf("cache: methods: %q cannot be cached (GET and HEAD only)", m)
			}
			p.Methods = append(p.Methods, m)
		}
	}
	for codes, ttl := range c.Valid {
		v, err := time.ParseDuration(ttl)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("cache: valid: %q: %q is not a positive duration", codes, ttl)
		}
		fields := strings.Fields(codes)
		if len(fields) == 0 {
			return nil, fmt.Errorf("cache: valid: an empty key (want status codes or \"any\")")
		}
		for _, f := range fields {
			code := 0
			if f != "any" {
				n, err := strconv.Atoi(f)
				if err != nil || n < 100 || n > 599 {
					return nil, fmt.Errorf("cache: valid: %q is neither a status code nor \"any\"", f)
				}
				if !slices.Contains(heuristicStatuses, n) {
					return nil, fmt.Errorf("cache: valid: %d is not heuristically cacheable (RFC 9111 §4.2.2, RFC 9110 §15.1): "+
						"the upstream must send Cache-Control or Expires for it", n)
				}
				code = n
			}
			if p.Valid == nil {
				p.Valid = map[int]time.Duration{}
			}
			if _, dup := p.Valid[code]; dup {
				return nil, fmt.Errorf("cache: valid: %s is given twice", f)
			}
			p.Valid[code] = v
		}
	}
	return p, nil
}

// Directives are the parsed Cache-Control directives of a message (RFC
// 9111 §5.2), names in lower case. A directive without an argument maps
// to "". Duplicate directives keep the first.
type Directives map[string]string

// ParseCacheControl parses Cache-Control field values (RFC 9111 §5.2:
// comma-separated token [ "=" ( token / quoted-string ) ]).
func ParseCacheControl(values []string) Directives {
	d := Directives{}
	for _, v := range values {
		for len(v) > 0 {
			var part string
			// split at a comma outside quotes
			inQ := false
			i := 0
			for ; i < len(v); i++ {
				c := v[i]
				if c == '"' {
					inQ = !inQ
				} else if c == '\\' && inQ && i+1 < len(v) {
					i++
				} else if c == ',' && !inQ {
					break
				}
			}
			part, v = v[:i], v[min(i+1, len(v)):]
			name, arg, _ := strings.Cut(strings.TrimSpace(part), "=")
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" {
				continue
			}
			arg = strings.TrimSpace(arg)
			if len(arg) >= 2 && arg[0] == '"' && arg[len(arg)-1] == '"' {
				arg = strings.ReplaceAll(arg[1:len(arg)-1], `\`, "")
			}
			if _, dup := d[name]; !dup {
				d[name] = arg
			}
		}
	}
	return d
}

// Has reports whether directive name is present.
func (d Directives) Has(name string) bool { _, ok := d[name]; return ok }

// Seconds returns a delta-seconds argument (RFC 9111 §1.2.2): false when
// the directive is absent or its argument is not a non-negative integer;
// values past 2^31 are taken as 2^31.
func (d Directives) Seconds(name string) (time.Duration, bool) {
	v, ok := d[name]
	if !ok || v == "" {
		return 0, false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n > 1<<31 {
		n = 1 << 31
	}
	return time.Duration(n) * time.Second, true
}

// Header is a message's fields as the SDK gives them: [name, value]
// pairs, names in lower case.
type Header [][2]string

// Get returns the first value of name (case-insensitive).
func (h Header) Get(name string) string {
	for _, f := range h {
		if strings.EqualFold(f[0], name) {
			return f[1]
		}
	}
	return ""
}

// Values returns every value of name.
func (h Header) Values(name string) []string {
	var out []string
	for _, f := range h {
		if strings.EqualFold(f[0], name) {
			out = append(out, f[1])
		}
	}
	return out
}

// Has reports whether name is present.
func (h Header) Has(name string) bool {
	for _, f := range h {
		if strings.EqualFold(f[0], name) {
			return true
		}
	}
	return false
}

// CC returns the message's Cache-Control directives.
func (h Header) CC() Directives { return ParseCacheControl(h.Values("cache-control")) }

// Key returns the primary cache key of a request (RFC 9111 §2): its
// effective URI, scheme://authority/path?query, with the scheme and host
// in lower case.
func Key(scheme, authority, path string) string {
	if scheme == "" {
		scheme = "http"
	}
	if path == "" {
		path = "/"
	}
	return strings.ToLower(scheme) + "://" + strings.ToLower(authority) + path
}

// heuristicStatuses are the status codes RFC 9110 §15.1 defines as
// heuristically cacheable (RFC 9111 §4.2.2).
var heuristicStatuses = []int{200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501}

// understoodStatuses are the final statuses this cache understands (RFC
// 9111 §3: a cache must not store a response with a status it does not
// understand unless Cache-Control says so; 206 and 304 are never stored,
// since this cache neither combines ranges nor stores validations).
var understoodStatuses = []int{200, 203, 204, 300, 301, 302, 303, 307, 308, 400, 403, 404, 405, 410, 414, 421, 451, 500, 501, 502, 503, 504}

// Storable decides whether a response to a request may be stored by a
// shared cache (RFC 9111 §3, §3.5, §5.2) and says why not.
func (p *Policy) Storable(method string, req Header, status int, resp Header) (ok bool, why string) {
	rcc, cc := req.CC(), resp.CC()
	switch {
	case method != "GET":
		return false, "method" // §3: the request method is understood by the cache (GET only here)
	case !slices.Contains(understoodStatuses, status):
		return false, "status" // §3: the response status code is final and understood
	case rcc.Has("no-store"):
		return false, "request no-store" // §5.2.1.5
	case cc.Has("no-store"):
		return false, "no-store" // §5.2.2.5
	case cc.Has("private"):
		return false, "private" // §5.2.2.7: a shared cache; the qualified form is treated as unqualified
	case req.Has("authorization") && !cc.Has("public") && !cc.Has("must-revalidate") && !cc.Has("s-maxage"):
		return false, "authorization" // §3.5
	case resp.Has("x-accel-redirect"):
		return false, "x-accel-redirect" // an internal redirect is not the response the client gets
	case resp.Has("set-cookie") && !p.StoreSetCookie:
		return false, "set-cookie" // configuration (nginx's default); §7.3 would allow it
	}
	for _, v := range resp.Values("vary") {
		for _, n := range strings.Split(v, ",") {
			if strings.TrimSpace(n) == "*" {
				return false, "vary *" // §4.1: never matches
			}
		}
	}
	// §3: at least one of public, Expires, max-age, s-maxage, or a
	// heuristically cacheable status.
	if !cc.Has("public") && !resp.Has("expires") && !cc.Has("max-age") && !cc.Has("s-maxage") && !slices.Contains(heuristicStatuses, status) {
		return false, "no explicit freshness"
	}
	// A response that would never be fresh, could not be revalidated and
	// may not be served stale would only cost every later request a
	// lookup: not stored (storing is a MAY, §3).
	if life, _ := p.lifetime(status, resp, cc, time.Now()); life <= 0 && !resp.Has("etag") && !resp.Has("last-modified") &&
		!cc.Has("stale-while-revalidate") && !cc.Has("stale-if-error") && p.StaleIfError <= 0 {
		return false, "never fresh"
	}
	return true, ""
}

// Passable reports whether a response's reason for not being stored
// (Storable's why) comes from the response alone, so that later requests
// for the same key without request directives would not be stored either:
// then Wedge may pass them without the filter for HitForPass (Varnish's
// hit-for-pass). Reasons tied to the request (method, request no-store,
// authorization) are not, nor are server errors (5xx: often transient,
// and a stored entry may still serve stale-if-error), nor a key that has
// an entry (revalidating).
func Passable(why string, status int, revalidating bool) bool {
	if status >= 500 || revalidating {
		return false
	}
	switch why {
	case "status", "no-store", "private", "set-cookie", "vary *", "x-accel-redirect", "no explicit freshness", "never fresh":
		return true
	}
	return false
}

// Freshness is what the cache knows about a stored response's age.
type Freshness struct {
	Lifetime  time.Duration // freshness_lifetime (§4.2.1, §4.2.2)
	Heuristic bool          // the lifetime is heuristic
	Age       time.Duration // current_age (§4.2.3)
}

// Fresh reports whether the response is fresh (§4.2: lifetime > age).
func (f Freshness) Fresh() bool { return f.Lifetime > f.Age }

// Staleness is how long past its lifetime the response is (0 when fresh).
func (f Freshness) Staleness() time.Duration { return max(0, f.Age-f.Lifetime) }

// Lifetime computes a response's freshness lifetime for a shared cache
// (RFC 9111 §4.2.1: s-maxage, then max-age, then Expires - Date; an
// invalid Expires means already expired), or a heuristic one (§4.2.2)
// when none is given and the status is heuristically cacheable (or the
// response is marked public): the configured valid lifetime for the
// status, else, with a Last-Modified, a fraction of Date - Last-Modified,
// capped.
func (p *Policy) Lifetime(status int, resp Header, respTime time.Time) (time.Duration, bool) {
	return p.lifetime(status, resp, resp.CC(), respTime)
}

// lifetime is Lifetime for a caller that has parsed the response's
// Cache-Control already (cc).
func (p *Policy) lifetime(status int, resp Header, cc Directives, respTime time.Time) (time.Duration, bool) {
	if d, ok := cc.Seconds("s-maxage"); ok {
		return d, false
	}
	if d, ok := cc.Seconds("max-age"); ok {
		return d, false
	}
	date, derr := http.ParseTime(resp.Get("date"))
	if derr != nil {
		date = respTime
	}
	if resp.Has("expires") {
		exp, err := http.ParseTime(resp.Get("expires"))
		if err != nil {
			return 0, false // §5.3: an invalid Expires (e.g. "0") is in the past
		}
		return max(0, exp.Sub(date)), false
	}
	if !slices.Contains(heuristicStatuses, status) && !cc.Has("public") {
		return 0, false
	}
	if d, ok := p.Valid[status]; ok {
		return d, true // configured (nginx proxy_cache_valid)
	}
	if d, ok := p.Valid[0]; ok {
		return d, true
	}
	if !p.Heuristics {
		return 0, false
	}
	lm, err := http.ParseTime(resp.Get("last-modified"))
	if err != nil || !lm.Before(date) {
		return 0, false
	}
	return min(time.Duration(float64(date.Sub(lm))*p.HeuristicFraction), p.HeuristicMax), true
}

// CurrentAge computes current_age (RFC 9111 §4.2.3) from the stored
// response's Date and Age fields and the times its request was sent and
// its response received.
func CurrentAge(resp Header, reqTime, respTime, now time.Time) time.Duration {
	var apparent, ageValue time.Duration
	if d, err := http.ParseTime(resp.Get("date")); err == nil {
		apparent = max(0, respTime.Sub(d))
	}
	if n, err := strconv.ParseInt(strings.TrimSpace(resp.Get("age")), 10, 64); err == nil && n > 0 {
		ageValue = time.Duration(min(n, 1<<31)) * time.Second
	}
	responseDelay := respTime.Sub(reqTime)
	corrected := max(apparent, ageValue+responseDelay)
	return corrected + now.Sub(respTime)
}

// Use is what to do with a stored response for a request.
type Use int

// The uses of a stored response.
const (
	UseNone         Use = iota // not usable: go upstream (unconditionally)
	UseFresh                   // serve it
	UseStale                   // serve it stale: the request allows it (max-stale)
	UseStaleRefresh            // serve it stale and revalidate in the background (RFC 5861 §3)
	UseRevalidate              // forward a conditional request (§4.3.1)
)

func (u Use) String() string {
	return [...]string{"none", "fresh", "stale", "stale-while-revalidate", "revalidate"}[u]
}

// Decision is the outcome of Decide for one stored response.
type Decision struct {
	Use Use
	// StaleIfError: the response may be served if the upstream fails
	// (RFC 5861 §4; only with UseRevalidate and UseNone).
	StaleIfError bool
	// Why explains the choice, for Cache-Status's detail and the logs.
	Why string
	Freshness
}

// noStale reports whether the response's directives forbid serving it
// stale (RFC 9111 §4.2.4: must-revalidate §5.2.2.2, proxy-revalidate
// §5.2.2.8, s-maxage §5.2.2.10, no-cache §5.2.2.4).
func noStale(cc Directives) bool {
	return cc.Has("must-revalidate") || cc.Has("proxy-revalidate") || cc.Has("s-maxage") || cc.Has("no-cache")
}

// Decide chooses how a stored response serves a request (RFC 9111 §4,
// §4.2, §4.2.4, §4.3, §5.2.1; RFC 5861).
func (p *Policy) Decide(req Header, status int, resp Header, reqTime, respTime, now time.Time) Decision {
	rcc, cc := req.CC(), resp.CC()
	life, heur := p.lifetime(status, resp, cc, respTime)
	d := Decision{Freshness: Freshness{Lifetime: life, Heuristic: heur, Age: CurrentAge(resp, reqTime, respTime, now)}}
	stale := d.Staleness()
	if !noStale(cc) {
		sie := p.StaleIfError
		if v, ok := cc.Seconds("stale-if-error"); ok {
			sie = v
		}
		if v, ok := rcc.Seconds("stale-if-error"); ok { // RFC 5861 §4: the request may ask too
			sie = max(sie, v)
		}
		d.StaleIfError = sie > 0 && stale <= sie
	}
	reqNoCache := rcc.Has("no-cache") || !req.Has("cache-control") && pragmaNoCache(req)
	switch {
	case reqNoCache:
		d.Use, d.Why = UseRevalidate, "request no-cache" // §5.2.1.4, §5.4
		return d
	case cc.Has("no-cache"):
		d.Use, d.Why = UseRevalidate, "no-cache" // §5.2.2.4
		return d
	}
	if ma, ok := rcc.Seconds("max-age"); ok && d.Age > ma {
		d.Use, d.Why = UseRevalidate, "request max-age" // §5.2.1.1
		return d
	}
	if d.Fresh() {
		if mf, ok := rcc.Seconds("min-fresh"); ok && d.Lifetime-d.Age < mf {
			d.Use, d.Why = UseRevalidate, "request min-fresh" // §5.2.1.3
			return d
		}
		d.Use, d.Why = UseFresh, "fresh"
		return d
	}
	if !noStale(cc) {
		if ms, ok := rcc["max-stale"]; ok { // §5.2.1.2
			if lim, ok := rcc.Seconds("max-stale"); ms == "" || ok && stale <= lim {
				d.Use, d.Why = UseStale, "request max-stale"
				return d
			}
		}
		if swr, ok := cc.Seconds("stale-while-revalidate"); ok && stale <= swr { // RFC 5861 §3
			d.Use, d.Why = UseStaleRefresh, "stale-while-revalidate"
			return d
		}
	}
	d.Use, d.Why = UseRevalidate, "stale" // §4.3.1 (forwarded unconditionally when it has no validator)
	return d
}

func pragmaNoCache(req Header) bool {
	for _, v := range req.Values("pragma") {
		if strings.EqualFold(strings.TrimSpace(v), "no-cache") {
			return true
		}
	}
	return false
}

// Freshened returns a stored response's fields as a 304 updates them
// (RFC 9111 §4.3.4): every field the 304 carries replaces the stored ones
// of that name, except those the stored body depends on (Content-Length,
// Content-Encoding, Vary; §3.2), as Wedge's wedge_cache_freshen does.
// Pseudo-fields of the 304 (":status") are left out.
func Freshened(stored, h304 Header) Header {
	replaced := map[string]bool{}
	for _, f := range h304 {
		n := strings.ToLower(f[0])
		if strings.HasPrefix(n, ":") || n == "content-length" || n == "content-encoding" || n == "vary" {
			continue
		}
		replaced[n] = true
	}
	out := make(Header, 0, len(stored)+len(h304))
	for _, f := range stored {
		if !replaced[strings.ToLower(f[0])] {
			out = append(out, f)
		}
	}
	for _, f := range h304 {
		if replaced[strings.ToLower(f[0])] {
			out = append(out, f)
		}
	}
	return out
}

// Conditional returns the validators to send when revalidating a stored
// response (RFC 9111 §4.3.1): If-None-Match from its ETag and
// If-Modified-Since from its Last-Modified (or, lacking one, nothing).
func Conditional(resp Header) Header {
	var h Header
	if et := resp.Get("etag"); et != "" {
		h = append(h, [2]string{"if-none-match", et})
	}
	if lm := resp.Get("last-modified"); lm != "" {
		h = append(h, [2]string{"if-modified-since", lm})
	}
	return h
}

// unsafeMethod reports whether a method is unsafe (RFC 9110 §9.2.1); a
// non-error response to one invalidates (RFC 9111 §4.4).
func unsafeMethod(m string) bool {
	switch m {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return false
	}
	return true
}

// InvalidationKeys returns the keys a non-error response to an unsafe
// request invalidates (RFC 9111 §4.4): the target URI, and the URIs in
// Location and Content-Location when they have the target's origin.
func InvalidationKeys(target string, status int, resp Header) []string {
	if status < 200 || status >= 400 {
		return nil // §4.4: only a non-error status code
	}
	keys := []string{target}
	base, err := url.Parse(target)
	if err != nil {
		return keys
	}
	for _, name := range [...]string{"location", "content-location"} {
		v := resp.Get(name)
		if v == "" {
			continue
		}
		u, err := base.Parse(v)
		if err != nil || !strings.EqualFold(u.Scheme, base.Scheme) || !strings.EqualFold(u.Host, base.Host) {
			continue // §4.4: not the same origin
		}
		u.Fragment = ""
		k := Key(u.Scheme, u.Host, u.RequestURI())
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// CacheStatus formats a Cache-Status field value (RFC 9211 §2) for this
// cache: "wedge; hit", "wedge; fwd=miss; stored", ... params in order.
func CacheStatus(params ...string) string {
	return strings.Join(append([]string{"wedge"}, params...), "; ")
}

// AppendCacheStatus adds this cache's member to the Cache-Status field
// values a response carries (RFC 9211 §2: each cache appends its own, the
// origin's nearest first), dropping members of this cache already there
// (a stored response carries the one from when it was stored).
func AppendCacheStatus(existing []string, ours string) string {
	var keep []string
	for _, v := range existing {
		for _, m := range strings.Split(v, ",") {
			m = strings.TrimSpace(m)
			name, _, _ := strings.Cut(m, ";")
			if m != "" && strings.TrimSpace(name) != "wedge" {
				keep = append(keep, m)
			}
		}
	}
	return strings.Join(append(keep, ours), ", ")
}

// ServedHeader returns a stored response's fields as sent from the cache:
// without Content-Length (the host sets it), with Age set to age in
// seconds (RFC 9111 §5.1) and this cache's Cache-Status member appended.
func ServedHeader(stored Header, age time.Duration, cacheStatus string) Header {
	out := make(Header, 0, len(stored)+2)
	for _, f := range stored {
		switch strings.ToLower(f[0]) {
		case "content-length", "age", "cache-status":
			continue
		}
		out = append(out, f)
	}
	out = append(out, [2]string{"age", strconv.FormatInt(int64(age/time.Second), 10)})
	return append(out, [2]string{"cache-status", AppendCacheStatus(stored.Values("cache-status"), cacheStatus)})
}
