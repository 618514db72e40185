package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Config is the plugin's configuration (wedge.yaml's config:, as JSON).
// Every field is optional; the zero value is the default.
type Config struct {
	// Encodings are the codings offered, most preferred first, among
	// "zstd", "br" and "gzip". Default: ["zstd", "br", "gzip"]. The
	// client's q-values decide first; this order breaks ties (browsers
	// send all three at q=1).
	Encodings []string `json:"encodings"`
	// Levels sets a level per coding: gzip 1-9 (default 6), br 0-11
	// (default 5), zstd 1-22 (default 3; Wedge's encoder has four speeds:
	// 1-2, 3-5, 6-9, 10-22).
	Levels map[string]int `json:"levels"`
	// Types are the media types compressed: "type/subtype", "type/*",
	// "type/*+suffix" or "*/*+suffix", case-insensitive, matched against
	// Content-Type without its parameters. Default: DefaultTypes.
	// text/event-stream is never compressed (Wedge streams it).
	Types []string `json:"types"`
	// MinLength is the smallest body compressed, in bytes. Default 512
	// (as Caddy): below about one TCP segment compressing saves no round
	// trip, and a coding's framing (18 bytes for gzip) eats much of the
	// gain. 0 compresses every non-empty body.
	MinLength *int64 `json:"min_length"`
}

// DefaultTypes are the media types compressed by default: text, and the
// text-based or uncompressed formats of nginx's and Caddy's usual lists.
var DefaultTypes = []string{
	"text/*",
	"application/json", "*/*+json", "application/x-ndjson",
	"application/xml", "*/*+xml",
	"application/javascript", "application/x-javascript", "application/ecmascript",
	"application/wasm", "application/yaml", "application/x-yaml", "application/toml",
	"application/graphql", "application/x-www-form-urlencoded",
	"application/vnd.ms-fontobject", "application/x-font-ttf", "font/ttf", "font/otf", "font/collection",
	"image/x-icon", "image/vnd.microsoft.icon", "image/bmp",
}

// defaultLevels are the codings' default levels (server/internal/compress
// has the same and checks them).
var defaultLevels = map[string]int{"gzip": 6, "br": 5, "zstd": 3}

// levelRange is each coding's accepted levels.
var levelRange = map[string][2]int{"gzip": {1, 9}, "br": {0, 11}, "zstd": {1, 22}}

// defaultMinLength is MinLength's default, in bytes.
const defaultMinLength = 512

// Policy is a checked configuration.
type Policy struct {
	encodings []string
	levels    map[string]int
	types     []typePattern
	minLength int64
	// args are wedge_compress_response's arguments for each coding
	// ({"encoding": ..., "level": ...}), encoded once here rather than for
	// every response.
	args map[string][]byte
}

// typePattern is one entry of Types: typ "*" matches any type; sub "*"
// any subtype, or, with suffix set, any subtype ending with it ("+json").
type typePattern struct {
	typ, sub, suffix string
}

// ParseConfig checks a configuration (JSON; empty means every default) and
// returns its Policy. Errors name the field: "encodings[1]: unknown
// coding \"deflate\"".
func ParseConfig(data []byte) (*Policy, error) {
	var c Config
	if len(bytes.TrimSpace(data)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("parsing configuration: %w", err)
		}
	}
	p := &Policy{levels: map[string]int{}, minLength: defaultMinLength}
	p.encodings = c.Encodings
	if p.encodings == nil {
		p.encodings = []string{"zstd", "br", "gzip"}
	}
	if len(p.encodings) == 0 {
		return nil, errors.New("encodings: empty (remove the plugin to compress nothing)")
	}
	for i, e := range p.encodings {
		if _, ok := levelRange[e]; !ok {
			return nil, fmt.Errorf("encodings[%d]: unknown coding %q (want zstd, br or gzip)", i, e)
		}
		for _, prev := range p.encodings[:i] {
			if prev == e {
				return nil, fmt.Errorf("encodings[%d]: %q listed twice", i, e)
			}
		}
		p.levels[e] = defaultLevels[e]
	}
	for e, l := range c.Levels {
		r, ok := levelRange[e]
		if !ok {
			return nil, fmt.Errorf("levels.%s: unknown coding (want zstd, br or gzip)", e)
		}
		if l < r[0] || l > r[1] {
			return nil, fmt.Errorf("levels.%s: %d is outside %d-%d", e, l, r[0], r[1])
		}
		p.levels[e] = l
	}
	p.args = map[string][]byte{}
	for _, e := range p.encodings {
		p.args[e], _ = json.Marshal(map[string]any{"encoding": e, "level": p.levels[e]})
	}
	types := c.Types
	if types == nil {
		types = DefaultTypes
	}
	if len(types) == 0 {
		return nil, errors.New("types: empty (remove the plugin to compress nothing)")
	}
	for i, t := range types {
		tp, err := parseTypePattern(t)
		if err != nil {
			return nil, fmt.Errorf("types[%d]: %w", i, err)
		}
		p.types = append(p.types, tp)
	}
	if c.MinLength != nil {
		if *c.MinLength < 0 {
			return nil, fmt.Errorf("min_length: %d is negative", *c.MinLength)
		}
		p.minLength = *c.MinLength
	}
	return p, nil
}

// parseTypePattern checks one Types entry.
func parseTypePattern(s string) (typePattern, error) {
	typ, sub, ok := strings.Cut(strings.ToLower(strings.TrimSpace(s)), "/")
	if !ok || !isToken(typ) {
		return typePattern{}, fmt.Errorf("%q is not a media type (type/subtype)", s)
	}
	tp := typePattern{typ: typ, sub: sub}
	if strings.HasPrefix(sub, "*+") && isToken(sub[1:]) {
		tp.sub, tp.suffix = "*", sub[1:]
	} else if !isToken(sub) || (sub != "*" && strings.Contains(sub, "*")) {
		return typePattern{}, fmt.Errorf("%q: subtype must be a token, \"*\" or \"*+suffix\"", s)
	}
	if strings.Contains(typ, "*") && typ != "*" {
		return typePattern{}, fmt.Errorf("%q: type must be a token or \"*\"", s)
	}
	return tp, nil
}

// compressible reports whether a Content-Type value names a type the
// policy compresses.
func (p *Policy) compressible(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.ToLower(trimOWS(mt))
	typ, sub, ok := strings.Cut(mt, "/")
	if !ok || typ == "" || sub == "" || mt == "text/event-stream" {
		return false
	}
	for _, tp := range p.types {
		if tp.typ != "*" && tp.typ != typ {
			continue
		}
		switch {
		case tp.suffix != "":
			if strings.HasSuffix(sub, tp.suffix) && len(sub) > len(tp.suffix) {
				return true
			}
		case tp.sub == "*" || tp.sub == sub:
			return true
		}
	}
	return false
}

// Exchange is what the policy looks at: the request's method and fields,
// the response's status, fields and body length.
type Exchange struct {
	// Method is the request method.
	Method string
	// Request and Response are the fields (names in any case; a name may
	// repeat). Pseudo-fields (":status", ...) may be left in: no rule
	// looks at them.
	Request, Response [][2]string
	// Status is the response status.
	Status int
	// Size is the response body's length in bytes, -1 when unknown.
	Size int64
}

// Decision is what the plugin does to a response.
type Decision struct {
	// Vary: add Accept-Encoding to Vary, because the response depends on
	// it (it was compressed, or would have been for another client).
	Vary bool
	// Coding is the coding chosen ("" for none) and Level its level. For
	// a 304 only the fields a 200 would carry are set (ETag, Vary: RFC
	// 9110 §15.4.5), for HEAD those of a GET (RFC 9110 §9.3.2).
	Coding string
	Level  int
	// Body: ask the host to compress the body (a response that has one).
	Body bool
	// Why says why nothing was compressed, for the debug log and tests.
	Why string
}

// Decide applies the policy to one exchange. It compresses a response
// only when every rule allows it:
//   - it can have a body: not 1xx, 204 (a 304 gets the fields a 200
//     would have);
//   - it is not partial: not 206, no Content-Range (compressing a part
//     would make a different representation per range);
//   - it is not already encoded: no Content-Encoding other than identity;
//   - no Cache-Control: no-transform in the response or the request (RFC
//     9111 §5.2.2.6, §5.2.1.6; RFC 9110 §7.7);
//   - Content-Type names a compressible type (none: not compressed);
//   - the body is at least MinLength bytes (an unknown length passes);
//   - Accept-Encoding picks one of Encodings (negotiate).
//
// Vary: Accept-Encoding is added whenever only the last rule decided,
// compressed or not, so that caches keep one variant per coding (nginx's
// gzip_vary).
func (p *Policy) Decide(x Exchange) Decision {
	switch {
	case x.Status < 200 || x.Status == 204:
		return Decision{Why: "status without a body"}
	case x.Status == 206 || has(x.Response, "content-range"):
		return Decision{Why: "partial content"}
	}
	if ce := strings.ToLower(trimOWS(values(x.Response, "content-encoding"))); ce != "" && ce != "identity" {
		return Decision{Why: "already encoded"}
	}
	if hasDirective(values(x.Response, "cache-control"), "no-transform") {
		return Decision{Why: "no-transform"}
	}
	notModified := x.Status == 304
	ct, hasCT := lookup(x.Response, "content-type")
	switch {
	case notModified && !hasCT:
		// a 304 usually omits Content-Type: assume the 200 was compressed
	case !hasCT || trimOWS(ct) == "":
		return Decision{Why: "no content type"}
	case !p.compressible(ct):
		return Decision{Why: "type not compressible"}
	}
	if !notModified && x.Size >= 0 && (x.Size < p.minLength || x.Size == 0) {
		return Decision{Why: "body below min_length"}
	}
	d := Decision{Vary: true}
	if hasDirective(values(x.Request, "cache-control"), "no-transform") {
		d.Why = "request no-transform"
		return d
	}
	ae, present := lookup(x.Request, "accept-encoding")
	if present {
		ae = values(x.Request, "accept-encoding")
	}
	coding, ok := negotiate(ae, present, p.encodings)
	if coding == "" {
		d.Why = "identity preferred"
		if !ok {
			d.Why = "no acceptable coding; identity sent anyway"
		}
		return d
	}
	d.Coding, d.Level = coding, p.levels[coding]
	d.Body = !notModified && x.Method != "HEAD"
	return d
}

// has reports whether a field named name (lower case) is present.
func has(h [][2]string, name string) bool {
	_, ok := lookup(h, name)
	return ok
}

// lookup returns the first value of the field named name (lower case).
func lookup(h [][2]string, name string) (string, bool) {
	for _, f := range h {
		if strings.EqualFold(f[0], name) {
			return f[1], true
		}
	}
	return "", false
}

// values returns every value of the field named name, joined with ", "
// (RFC 9110 §5.3).
func values(h [][2]string, name string) string {
	var out string
	for _, f := range h {
		if strings.EqualFold(f[0], name) {
			if out != "" {
				out += ", "
			}
			out += f[1]
		}
	}
	return out
}

// hasDirective reports whether a Cache-Control value lists directive
// (case-insensitive, with or without an argument; RFC 9111 §5.2).
func hasDirective(cc, directive string) bool {
	for cc != "" {
		var d string
		d, cc, _ = strings.Cut(cc, ",")
		name, _, _ := strings.Cut(d, "=")
		if strings.EqualFold(trimOWS(name), directive) {
			return true
		}
	}
	return false
}

// mergeVary returns the Vary value with Accept-Encoding added to the
// existing ones (every Vary line; "" when there was none), and whether it
// changed: a Vary that already lists it, or "*", is kept.
func mergeVary(existing string) (string, bool) {
	for v := existing; v != ""; {
		var e string
		e, v, _ = strings.Cut(v, ",")
		e = trimOWS(e)
		if e == "*" || strings.EqualFold(e, "accept-encoding") {
			return existing, false
		}
	}
	if trimOWS(strings.ReplaceAll(existing, ",", "")) == "" {
		return "Accept-Encoding", true
	}
	return existing + ", Accept-Encoding", true
}

// weakETag returns the ETag a compressed response carries (RFC 9110
// §8.8.3: a strong validator changes with the content coding; nginx and
// Caddy weaken it): W/ in front of a strong one, a weak one unchanged.
// keep is false for a value that is not an entity-tag, which is removed.
func weakETag(etag string) (string, bool) {
	etag = trimOWS(etag)
	switch {
	case strings.HasPrefix(etag, "W/\"") && len(etag) >= 4 && strings.HasSuffix(etag, "\""):
		return etag, true
	case strings.HasPrefix(etag, "\"") && len(etag) >= 2 && strings.HasSuffix(etag, "\""):
		return "W/" + etag, true
	}
	return "", false
}

// contentLength parses a Content-Length value, -1 when absent or invalid.
func contentLength(v string, ok bool) int64 {
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(trimOWS(v), 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}
