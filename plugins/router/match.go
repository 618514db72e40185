package main

import (
	"net/url"
	"strconv"
	"strings"
)

// Request is what the router looks at: the pseudo-fields and the fields
// of a request head as proxy-wasm hands them over.
type Request struct {
	Method    string // :method
	Authority string // :authority (the Host field)
	Path      string // :path, the request-target with its query
	Scheme    string // :scheme
	// Headers are the request's fields (pseudo-fields are ignored).
	Headers [][2]string
}

// RequestFrom builds a Request from a proxy-wasm header map.
func RequestFrom(hs [][2]string) Request {
	var r Request
	for _, h := range hs {
		switch h[0] {
		case ":method":
			r.Method = h[1]
		case ":authority":
			r.Authority = h[1]
		case ":path":
			r.Path = h[1]
		case ":scheme":
			r.Scheme = h[1]
		default:
			if !strings.HasPrefix(h[0], ":") {
				r.Headers = append(r.Headers, h)
			}
		}
	}
	return r
}

// Decision is what Decide chose for a request.
type Decision struct {
	// Route is the route that matched, nil for none.
	Route  *Route
	Action Action
	// Upstream is the pool (ActUpstream).
	Upstream string
	// Mount and StaticPath name the static mount and the URL path inside
	// it, percent-encoded (ActStatic).
	Mount, StaticPath string
	// NewPath is the :path to send on when strip_prefix or rewrite changed
	// it; "" leaves :path alone.
	NewPath string
	// Status, Headers and Body are the local response (ActRedirect,
	// ActRespond, ActNotFound, ActBadRequest).
	Status  int
	Headers [][2]string
	Body    []byte
}

// match is one request being decided.
type match struct {
	req   *Request
	host  string // lowercase, no port
	path  string // decoded and cleaned
	query string // raw, without "?"
	form  url.Values
	caps  []string
	pm    *pathMatcher
}

// Decide routes a client's request: public routes in order, then the
// default route; internal routes never match here.
func (r *Router) Decide(req *Request) Decision {
	raw, query, _ := strings.Cut(req.Path, "?")
	clean, ok := cleanPath(raw)
	if !ok {
		return Decision{Action: ActBadRequest, Status: 400,
			Headers: [][2]string{{"content-type", "text/plain; charset=utf-8"}}, Body: []byte("400 Bad Request\n")}
	}
	m := &match{req: req, host: hostOf(req.Authority), path: clean, query: query}
	for _, rt := range r.public {
		if m.matches(rt) {
			return m.apply(rt)
		}
	}
	if r.def != nil {
		m.caps, m.pm = nil, &r.def.path
		return m.apply(r.def)
	}
	return Decision{Action: ActNotFound, Status: 404,
		Headers: [][2]string{{"content-type", "text/plain; charset=utf-8"}}, Body: []byte("404 Not Found\n")}
}

// Accel routes an upstream's X-Accel-Redirect target for the request req:
// internal routes only. Action is ActNotFound when none matched.
func (r *Router) Accel(req *Request, target string) Decision {
	raw, query, _ := strings.Cut(target, "?")
	clean, ok := cleanPath(raw)
	if !ok {
		return Decision{Action: ActNotFound}
	}
	m := &match{req: req, host: hostOf(req.Authority), path: clean, query: query}
	for _, rt := range r.internal {
		if m.matches(rt) {
			return m.apply(rt)
		}
	}
	return Decision{Action: ActNotFound}
}

// HasInternal reports whether some route serves X-Accel-Redirect targets.
func (r *Router) HasInternal() bool { return len(r.internal) > 0 }

func (m *match) matches(rt *Route) bool {
	if len(rt.hosts) > 0 && !hostMatches(rt.hosts, m.host) {
		return false
	}
	if len(rt.methods) > 0 {
		found := false
		for _, x := range rt.methods {
			if x == m.req.Method {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	m.caps, m.pm = nil, &rt.path
	switch rt.path.kind {
	case 'p':
		if !prefixMatches(m.path, rt.path.s) {
			return false
		}
	case 'e':
		if m.path != rt.path.s {
			return false
		}
	case 'r':
		m.caps = rt.path.re.FindStringSubmatch(m.path)
		if m.caps == nil {
			return false
		}
	}
	for i := range rt.headers {
		if !headerMatches(&rt.headers[i], m.req.Headers) {
			return false
		}
	}
	if len(rt.query) > 0 {
		if m.form == nil {
			m.form, _ = url.ParseQuery(m.query)
		}
		for _, q := range rt.query {
			vs, present := m.form[q.name]
			switch {
			case q.value != nil:
				found := false
				for _, v := range vs {
					if v == *q.value {
						found = true
						break
					}
				}
				if !found {
					return false
				}
			case present != q.present:
				return false
			}
		}
	}
	return true
}

// prefixMatches reports whether path starts with prefix; a prefix without
// a final "/" only at a segment boundary.
func prefixMatches(path, prefix string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return strings.HasSuffix(prefix, "/") || len(path) == len(prefix) || path[len(prefix)] == '/'
}

func hostMatches(hosts []string, host string) bool {
	for _, h := range hosts {
		switch {
		case h == "*":
			return true
		case strings.HasPrefix(h, "*."):
			if len(host) > len(h)-1 && strings.HasSuffix(host, h[1:]) {
				return true
			}
		case h == host:
			return true
		}
	}
	return false
}

func headerMatches(c *headerCond, hs [][2]string) bool {
	present := false
	for _, h := range hs {
		if !strings.EqualFold(h[0], c.name) {
			continue
		}
		present = true
		v := strings.TrimSpace(h[1])
		switch {
		case c.value != nil:
			if v == *c.value {
				return true
			}
		case c.re != nil:
			if c.re.MatchString(v) {
				return true
			}
		}
	}
	if c.value != nil || c.re != nil {
		return false
	}
	return present == c.present
}

// apply carries out the route rt, which matched.
func (m *match) apply(rt *Route) Decision {
	d := Decision{Route: rt, Action: rt.Action}
	switch rt.Action {
	case ActRedirect:
		loc, _ := expand(nil, rt.redirect.To, m.resolveEscaped)
		d.Status = rt.redirect.Status
		d.Headers = [][2]string{{"location", string(loc)}}
		d.Headers = applyEdits(d.Headers, rt.RespEdits)
		return d
	case ActRespond:
		body, _ := expand(nil, rt.respond.Body, m.resolveRaw)
		d.Status, d.Body = rt.respond.Status, body
		d.Headers = append(make([][2]string, 0, len(rt.respHdr)+1), rt.respHdr...) // applyEdits edits in place
		if len(body) > 0 && !hasField(d.Headers, "content-type") {
			d.Headers = append(d.Headers, [2]string{"content-type", "text/plain; charset=utf-8"})
		}
		d.Headers = applyEdits(d.Headers, rt.RespEdits)
		return d
	}
	p, changed := m.path, false
	if rt.strip != "" && prefixMatches(p, rt.strip) {
		p, changed = p[len(rt.strip):], true
		if p == "" {
			p = "/"
		}
	}
	var out string // percent-encoded
	query := m.query
	switch {
	case rt.rewrite != nil && rt.rewrite.fixed:
		m.path = p // $path is the stripped path
		b, _ := expand(nil, rt.rewrite.To, m.resolveEscaped)
		out, changed = string(b), true
		if before, q, ok := strings.Cut(out, "?"); ok {
			out, query = before, q
		}
	case rt.rewrite != nil:
		if loc := rt.rewriteRE.re.FindStringSubmatchIndex(p); loc != nil {
			sub := &match{req: m.req, host: m.host, path: p, query: m.query,
				caps: submatches(p, loc), pm: &rt.rewriteRE}
			b := []byte(escapePath(p[:loc[0]]))
			b, _ = expand(b, rt.rewrite.To, sub.resolveEscaped)
			out, changed = string(b)+escapePath(p[loc[1]:]), true
		} else {
			out = escapePath(p)
		}
	default:
		out = escapePath(p)
	}
	if out == "" || out[0] != '/' {
		out = "/" + out
	}
	switch rt.Action {
	case ActUpstream:
		d.Upstream = rt.Upstream
		if changed {
			d.NewPath = out
			if query != "" {
				d.NewPath += "?" + query
			}
		}
	case ActStatic:
		d.Mount, d.StaticPath = rt.MountName, out
	}
	return d
}

func submatches(s string, loc []int) []string {
	out := make([]string, len(loc)/2)
	for i := range out {
		if loc[2*i] >= 0 {
			out[i] = s[loc[2*i]:loc[2*i+1]]
		}
	}
	return out
}

// resolveEscaped resolves a reference for a URL: captures and $path
// (decoded) are percent-encoded again.
func (m *match) resolveEscaped(ref string) (string, error) {
	v, capture := m.lookup(ref)
	if capture {
		return escapePath(v), nil
	}
	return v, nil
}

// resolveRaw resolves a reference for a body: nothing is escaped.
func (m *match) resolveRaw(ref string) (string, error) {
	v, _ := m.lookup(ref)
	return v, nil
}

// lookup returns the value of a reference and whether it is decoded text
// (a capture or $path) rather than raw request bytes.
func (m *match) lookup(ref string) (string, bool) {
	if n, err := strconv.Atoi(ref); err == nil {
		if n < len(m.caps) {
			return m.caps[n], true
		}
		return "", true
	}
	if m.pm != nil {
		if i, ok := m.pm.groups[ref]; ok {
			if i < len(m.caps) {
				return m.caps[i], true
			}
			return "", true
		}
	}
	switch ref {
	case "host":
		return m.host, false
	case "path":
		return m.path, true
	case "query":
		return m.query, false
	case "uri":
		return m.req.Path, false
	case "scheme":
		if m.req.Scheme == "" {
			return "http", false
		}
		return m.req.Scheme, false
	case "method":
		return m.req.Method, false
	}
	return "", false
}

func hasField(hs [][2]string, name string) bool {
	for _, h := range hs {
		if strings.EqualFold(h[0], name) {
			return true
		}
	}
	return false
}

// applyEdits applies e to a local response's fields.
func applyEdits(hs [][2]string, e *HeaderEdits) [][2]string {
	if e == nil {
		return hs
	}
	for _, name := range e.Remove {
		hs = delField(hs, name)
	}
	for _, f := range e.set {
		hs = append(delField(hs, f[0]), [2]string{strings.ToLower(f[0]), f[1]})
	}
	for _, f := range e.add {
		hs = append(hs, [2]string{strings.ToLower(f[0]), f[1]})
	}
	return hs
}

func delField(hs [][2]string, name string) [][2]string {
	out := hs[:0]
	for _, h := range hs {
		if !strings.EqualFold(h[0], name) {
			out = append(out, h)
		}
	}
	return out
}

// hostOf returns the host of an authority, lowercased, without port or a
// final dot.
func hostOf(a string) string {
	if strings.HasPrefix(a, "[") {
		if i := strings.IndexByte(a, ']'); i > 0 {
			a = a[:i+1]
		}
	} else if i := strings.LastIndexByte(a, ':'); i >= 0 {
		a = a[:i]
	}
	return strings.ToLower(strings.TrimSuffix(a, "."))
}

// cleanPath percent-decodes a request path and resolves ".", ".." and
// empty segments, the way nginx normalizes a URI before choosing a
// location; a final "/" is kept. It reports false for what cannot be a
// path: no leading "/", a bad %-escape, or a NUL. "*" (OPTIONS *) is kept.
func cleanPath(raw string) (string, bool) {
	if raw == "*" {
		return raw, true
	}
	if raw == "" || raw[0] != '/' {
		return "", false
	}
	if strings.IndexByte(raw, '%') >= 0 {
		b := make([]byte, 0, len(raw))
		for i := 0; i < len(raw); i++ {
			c := raw[i]
			if c == '%' {
				if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
					return "", false
				}
				c = unhex(raw[i+1])<<4 | unhex(raw[i+2])
				i += 2
			}
			if c == 0 {
				return "", false
			}
			b = append(b, c)
		}
		raw = string(b)
	}
	if !strings.Contains(raw, "//") && !strings.Contains(raw, "/.") {
		return raw, true
	}
	segs := strings.Split(raw[1:], "/")
	out := make([]string, 0, len(segs))
	for _, s := range segs {
		switch s {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
		}
	}
	clean := "/" + strings.Join(out, "/")
	last := segs[len(segs)-1]
	if (last == "" || last == "." || last == "..") && clean != "/" {
		clean += "/"
	}
	return clean, true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// escapePath percent-encodes what may not stand in a URL path as it is
// (RFC 3986 §3.3: pchar and "/"), "%" included, since s is decoded.
func escapePath(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !isPathChar(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hexd = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isPathChar(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', hexd[c>>4], hexd[c&15])
		}
	}
	return string(b)
}

func isPathChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0
}
