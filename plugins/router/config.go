package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Config is the router's plugin configuration: the `config:` of its entry
// under `plugins:` in wedge.yaml, handed over as JSON. See doc.go for the
// schema and README.md for examples.
type Config struct {
	// Routes are tried in order; the first whose conditions all hold
	// wins. Internal routes are tried only for X-Accel-Redirect targets,
	// the default route only when no other route matched.
	Routes []RouteConfig `json:"routes"`
}

// RouteConfig is one route as written in the configuration.
type RouteConfig struct {
	// Name labels the route in logs. Default "routes[i]".
	Name string `json:"name"`
	// Default makes the route the fallback for requests no other route
	// matched. A route without any condition is the default route too.
	Default bool `json:"default"`
	// Internal makes the route reachable only through an upstream's
	// X-Accel-Redirect (nginx `internal`). It needs static:.
	Internal bool `json:"internal"`

	// Host lists host names (exact, or "*.example.com" for any subdomain);
	// one must equal the request's host, port and case aside.
	Host strList `json:"host"`
	// Path matches the request path, percent-decoded and cleaned ("..",
	// "." and "//" resolved). A plain string is a prefix.
	Path *PathMatch `json:"path"`
	// Method lists request methods (case-sensitive); one must match.
	Method strList `json:"method"`
	// Headers must all hold.
	Headers []HeaderMatch `json:"headers"`
	// Query parameters must all hold.
	Query []QueryMatch `json:"query"`

	// Exactly one action.
	Upstream string       `json:"upstream"`
	Static   *StaticMount `json:"static"`
	Redirect *Redirect    `json:"redirect"`
	Respond  *Respond     `json:"respond"`

	// StripPrefix removes a leading path prefix (at a segment boundary)
	// before the request goes on: "/api" turns "/api/v1" into "/v1".
	StripPrefix string `json:"strip_prefix"`
	// Rewrite replaces the path after StripPrefix.
	Rewrite *Rewrite `json:"rewrite"`
	// RequestHeaders edits the request's fields before it goes on.
	RequestHeaders *HeaderEdits `json:"request_headers"`
	// ResponseHeaders edits the response's fields before the client gets
	// them.
	ResponseHeaders *HeaderEdits `json:"response_headers"`
}

// PathMatch is one way of matching a path; exactly one field is set.
type PathMatch struct {
	// Prefix matches a path starting with it ("/api/"); a prefix without a
	// final "/" also matches at a segment boundary ("/api" matches "/api"
	// and "/api/x" but not "/apix").
	Prefix string `json:"prefix"`
	// Exact matches that path only.
	Exact string `json:"exact"`
	// Glob matches the whole path: "*" is any run of characters but "/",
	// "**" any run at all, "?" one character but "/". Each "*" and "**" is
	// a capture ($1, $2, ...).
	Glob string `json:"glob"`
	// Regexp (RE2 syntax) must match the path; add ^ and $ to anchor it.
	// Its groups are captures: $1, ${1}, ${name}.
	Regexp string `json:"regexp"`
}

// UnmarshalJSON accepts a string as a prefix.
func (p *PathMatch) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*p = PathMatch{Prefix: s}
		return nil
	}
	type plain PathMatch
	return strictUnmarshal(b, (*plain)(p))
}

// HeaderMatch is a condition on a request field.
type HeaderMatch struct {
	// Name is the field name (case-insensitive).
	Name string `json:"name"`
	// Value, when set, must equal one of the field's values.
	Value *string `json:"value"`
	// Regexp, when set, must match one of the field's values.
	Regexp string `json:"regexp"`
	// Present: true needs the field, false needs it absent. Default (with
	// neither value nor regexp): true.
	Present *bool `json:"present"`
}

// QueryMatch is a condition on a query parameter (decoded as
// application/x-www-form-urlencoded).
type QueryMatch struct {
	Name    string  `json:"name"`
	Value   *string `json:"value"`
	Present *bool   `json:"present"`
}

// StaticMount is a directory the host serves files from.
type StaticMount struct {
	// Root is the directory, relative to the configuration file's.
	Root string `json:"root"`
	// Index is the file served for a directory. Default "index.html".
	Index string `json:"index"`
	// Browse lists a directory without an index file (else 403).
	Browse bool `json:"browse"`
}

// Redirect answers with a redirection to To.
type Redirect struct {
	// Status is 301, 302 (default), 303, 307 or 308.
	Status int `json:"status"`
	// To is the Location, a template: $1..$9, ${n}, ${name} (captures of
	// path.regexp or path.glob), $host, $path, $query, $uri (path and
	// query as the client sent them), $scheme, $method; $$ is "$".
	To string `json:"to"`
}

// Respond answers with a fixed response.
type Respond struct {
	// Status is 200-599. Default 200.
	Status int `json:"status"`
	// Body is a template like Redirect.To (captures are not escaped).
	Body string `json:"body"`
	// Headers are the response's fields. Content-Type defaults to
	// text/plain; charset=utf-8 when there is a body.
	Headers map[string]string `json:"headers"`
}

// Rewrite replaces the path: a string is a template for the new path
// (captures of the route's path match available); an object replaces
// what Regexp matched with To (its own captures).
type Rewrite struct {
	Regexp string `json:"regexp"`
	To     string `json:"to"`
	fixed  bool
}

// UnmarshalJSON accepts a string as a fixed path template.
func (r *Rewrite) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*r = Rewrite{To: s, fixed: true}
		return nil
	}
	type plain Rewrite
	return strictUnmarshal(b, (*plain)(r))
}

// HeaderEdits are applied in this order: remove, set (replaces every
// value), add (appends).
type HeaderEdits struct {
	Add    map[string]string `json:"add"`
	Set    map[string]string `json:"set"`
	Remove []string          `json:"remove"`
	// add and set are Add and Set sorted by name (a stable order), made
	// once by Compile rather than for every request.
	add, set [][2]string
}

// strList is a list of strings written as one string or a list.
type strList []string

// UnmarshalJSON accepts "a" as ["a"].
func (l *strList) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*l = strList{s}
		return nil
	}
	var a []string
	if err := json.Unmarshal(b, &a); err != nil {
		return errors.New("want a string or a list of strings")
	}
	*l = a
	return nil
}

func strictUnmarshal(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return cleanJSONError(err)
	}
	return nil
}

// cleanJSONError drops encoding/json's "json: " and Go type names.
func cleanJSONError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Errorf("%s: want %s, got %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
		}
		return fmt.Errorf("want %s, got %s", jsonKind(te.Type.Kind().String()), te.Value)
	}
	return errors.New(strings.TrimPrefix(err.Error(), "json: "))
}

func jsonKind(k string) string {
	switch k {
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "a list"
	case "int", "int64", "int32":
		return "an integer"
	case "bool":
		return "true or false"
	}
	return "a " + k
}

// Action is what a route does with a request.
type Action int

// The actions.
const (
	ActNotFound   Action = iota // no route: 404
	ActUpstream                 // wedge.upstream
	ActStatic                   // wedge.static and wedge.static_path
	ActRedirect                 // local response with Location
	ActRespond                  // fixed local response
	ActBadRequest               // a path that cannot be decoded: 400
)

// Route is a compiled route.
type Route struct {
	Index    int
	Name     string
	Default  bool
	Internal bool
	Action   Action

	hosts   []string // lowercased; "*.x" kept with its "*"
	path    pathMatcher
	methods []string
	headers []headerCond
	query   []queryCond

	Upstream  string
	Mount     *StaticMount
	MountName string
	redirect  *Redirect
	respond   *Respond
	strip     string
	rewrite   *Rewrite
	rewriteRE pathMatcher // rewrite.regexp and its groups (object form)
	respHdr   [][2]string // respond.headers sorted by name
	ReqEdits  *HeaderEdits
	RespEdits *HeaderEdits
}

type pathMatcher struct {
	kind   byte // 0 none, 'p' prefix, 'e' exact, 'r' regexp or glob
	s      string
	re     *regexp.Regexp
	nsub   int
	groups map[string]int
}

type headerCond struct {
	name    string // lowercase
	value   *string
	re      *regexp.Regexp
	present bool
}

type queryCond struct {
	name    string
	value   *string
	present bool
}

// Router is a compiled configuration, safe for concurrent use.
type Router struct {
	Routes      []*Route
	def         *Route
	internal    []*Route
	public      []*Route
	needsFields bool // NeedsFields, decided by Compile
}

// Constant returns the pool every request goes to when the routes make
// one decision for all of them: a single route, without conditions, that
// sends to an upstream pool with no prefix strip, rewrite or field edit
// (the default chain's router). The path is then never looked at, so no
// request gets the router's 400 for an undecodable path either: it goes
// on as the app server would have received it.
func (r *Router) Constant() (pool string, ok bool) {
	if len(r.Routes) != 1 || r.def == nil {
		return "", false
	}
	rt := r.def
	if rt.Action != ActUpstream || rt.strip != "" || rt.rewrite != nil || rt.ReqEdits != nil || rt.RespEdits != nil {
		return "", false
	}
	return rt.Upstream, true
}

// NeedsFields reports whether a route matches on request header fields
// (headers:), or X-Accel-Redirect targets are routed (internal routes,
// which keep the request): otherwise the pseudo-fields (:method,
// :authority, :path, :scheme) are all the router reads.
func (r *Router) NeedsFields() bool { return r.needsFields }

// Compile parses and checks the JSON configuration. An error names the
// route and field: "routes[3]: path.regexp: error parsing regexp: ...".
func Compile(data []byte) (*Router, error) {
	var top struct {
		Routes []json.RawMessage `json:"routes"`
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("routes: the router needs a configuration with routes:")
	}
	if err := strictUnmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("parsing configuration: %w", err)
	}
	if len(top.Routes) == 0 {
		return nil, errors.New("routes: at least one route is required")
	}
	r := &Router{}
	for i, raw := range top.Routes {
		var rc RouteConfig
		if err := strictUnmarshal(raw, &rc); err != nil {
			return nil, fmt.Errorf("routes[%d]: %w", i, err)
		}
		rt, err := compileRoute(i, &rc)
		if err != nil {
			return nil, fmt.Errorf("routes[%d]: %w", i, err)
		}
		r.Routes = append(r.Routes, rt)
		r.needsFields = r.needsFields || rt.Internal || len(rt.headers) > 0
		switch {
		case rt.Internal:
			r.internal = append(r.internal, rt)
		case rt.Default:
			if r.def != nil {
				return nil, fmt.Errorf("routes[%d]: a second default route (routes[%d] is one; a route without conditions is a default route)", i, r.def.Index)
			}
			r.def = rt
		default:
			r.public = append(r.public, rt)
		}
	}
	return r, nil
}

func compileRoute(i int, rc *RouteConfig) (*Route, error) {
	rt := &Route{Index: i, Name: rc.Name, Internal: rc.Internal, Upstream: rc.Upstream,
		Mount: rc.Static, redirect: rc.Redirect, respond: rc.Respond, strip: rc.StripPrefix,
		rewrite: rc.Rewrite, ReqEdits: rc.RequestHeaders, RespEdits: rc.ResponseHeaders}
	if rt.Name == "" {
		rt.Name = "routes[" + strconv.Itoa(i) + "]"
	}
	conds := len(rc.Host) + len(rc.Method) + len(rc.Headers) + len(rc.Query)
	if rc.Path != nil {
		conds++
	}
	if rc.Default && conds > 0 {
		return nil, errors.New("default: a default route takes no conditions (host, path, method, headers, query)")
	}
	if rc.Default && rc.Internal {
		return nil, errors.New("default: an internal route cannot be the default route")
	}
	rt.Default = !rc.Internal && (rc.Default || conds == 0)

	n := 0
	if rc.Upstream != "" {
		n++
		rt.Action = ActUpstream
		if !isPoolName(rc.Upstream) {
			return nil, fmt.Errorf("upstream: %q is not a pool name ([a-z0-9_-]+)", rc.Upstream)
		}
	}
	if rc.Static != nil {
		n++
		rt.Action = ActStatic
		if rc.Static.Root == "" {
			return nil, errors.New("static.root: the directory to serve is required")
		}
		if ix := rc.Static.Index; ix == "." || ix == ".." || strings.ContainsAny(ix, "/\\\x00") {
			return nil, fmt.Errorf("static.index: %q is not a file name", ix)
		}
		rt.MountName = rt.Name // "routes[i]" unless named
	}
	if rc.Redirect != nil {
		n++
		rt.Action = ActRedirect
		switch rc.Redirect.Status {
		case 0:
			rc.Redirect.Status = 302
		case 301, 302, 303, 307, 308:
		default:
			return nil, fmt.Errorf("redirect.status: want 301, 302, 303, 307 or 308, got %d", rc.Redirect.Status)
		}
		if rc.Redirect.To == "" {
			return nil, errors.New("redirect.to: the target is required")
		}
		if strings.ContainsAny(rc.Redirect.To, "\r\n\x00") {
			return nil, errors.New("redirect.to: control characters are not allowed")
		}
	}
	if rc.Respond != nil {
		n++
		rt.Action = ActRespond
		if rc.Respond.Status == 0 {
			rc.Respond.Status = 200
		}
		if rc.Respond.Status < 200 || rc.Respond.Status > 599 {
			return nil, fmt.Errorf("respond.status: want 200-599, got %d", rc.Respond.Status)
		}
		if err := checkFields(rc.Respond.Headers); err != nil {
			return nil, fmt.Errorf("respond.headers: %w", err)
		}
		rt.respHdr = sortedFields(rc.Respond.Headers)
	}
	if n != 1 {
		return nil, fmt.Errorf("want exactly one action of upstream, static, redirect and respond, got %d", n)
	}
	if rc.Internal && rt.Action != ActStatic {
		return nil, errors.New("internal: an internal route serves X-Accel-Redirect targets and needs static:")
	}

	for _, h := range rc.Host {
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		if h == "" || strings.ContainsAny(h, "/ :?#") || strings.Contains(h[1:], "*") || h[0] == '*' && h != "*" && !strings.HasPrefix(h, "*.") {
			return nil, fmt.Errorf("host: %q is not a host name or a wildcard like *.example.com", h)
		}
		rt.hosts = append(rt.hosts, h)
	}
	if rc.Path != nil {
		if err := rt.path.compile(rc.Path); err != nil {
			return nil, fmt.Errorf("path.%w", err)
		}
	}
	for _, m := range rc.Method {
		if !isToken(m) {
			return nil, fmt.Errorf("method: %q is not a method", m)
		}
		rt.methods = append(rt.methods, m)
	}
	for j, h := range rc.Headers {
		hc := headerCond{name: strings.ToLower(h.Name), value: h.Value, present: true}
		if !isToken(h.Name) {
			return nil, fmt.Errorf("headers[%d].name: %q is not a field name", j, h.Name)
		}
		if h.Value != nil && h.Regexp != "" {
			return nil, fmt.Errorf("headers[%d]: value and regexp are exclusive", j)
		}
		if h.Present != nil {
			if h.Value != nil || h.Regexp != "" {
				return nil, fmt.Errorf("headers[%d]: present goes without value and regexp", j)
			}
			hc.present = *h.Present
		}
		if h.Regexp != "" {
			re, err := regexp.Compile(h.Regexp)
			if err != nil {
				return nil, fmt.Errorf("headers[%d].regexp: %w", j, err)
			}
			hc.re = re
		}
		rt.headers = append(rt.headers, hc)
	}
	for j, q := range rc.Query {
		if q.Name == "" {
			return nil, fmt.Errorf("query[%d].name: required", j)
		}
		qc := queryCond{name: q.Name, value: q.Value, present: true}
		if q.Present != nil {
			if q.Value != nil {
				return nil, fmt.Errorf("query[%d]: present goes without value", j)
			}
			qc.present = *q.Present
		}
		rt.query = append(rt.query, qc)
	}

	if rc.StripPrefix != "" && (rc.StripPrefix[0] != '/' || rc.StripPrefix == "/") {
		return nil, fmt.Errorf("strip_prefix: %q must start with \"/\" and be more than \"/\"", rc.StripPrefix)
	}
	rt.strip = strings.TrimSuffix(rc.StripPrefix, "/")
	if rw := rc.Rewrite; rw != nil {
		if rt.Action == ActRedirect || rt.Action == ActRespond {
			return nil, errors.New("rewrite: a redirect or respond route sends nothing on to rewrite")
		}
		if rw.fixed {
			if err := checkTemplate(rw.To, &rt.path); err != nil {
				return nil, fmt.Errorf("rewrite: %w", err)
			}
			if !strings.HasPrefix(rw.To, "/") && !strings.HasPrefix(rw.To, "$") {
				return nil, fmt.Errorf("rewrite: %q must start with \"/\"", rw.To)
			}
		} else {
			if rw.Regexp == "" {
				return nil, errors.New("rewrite.regexp: required (or write rewrite: \"/fixed/path\")")
			}
			re, err := regexp.Compile(rw.Regexp)
			if err != nil {
				return nil, fmt.Errorf("rewrite.regexp: %w", err)
			}
			rt.rewriteRE = pathMatcher{kind: 'r', re: re, nsub: re.NumSubexp(), groups: groupNames(re)}
			if err := checkTemplate(rw.To, &rt.rewriteRE); err != nil {
				return nil, fmt.Errorf("rewrite.to: %w", err)
			}
		}
	}
	if rc.StripPrefix != "" && (rt.Action == ActRedirect || rt.Action == ActRespond) {
		return nil, errors.New("strip_prefix: a redirect or respond route sends nothing on to strip")
	}
	if rt.Action == ActRedirect {
		if err := checkTemplate(rt.redirect.To, &rt.path); err != nil {
			return nil, fmt.Errorf("redirect.to: %w", err)
		}
	}
	if rt.Action == ActRespond {
		if err := checkTemplate(rt.respond.Body, &rt.path); err != nil {
			return nil, fmt.Errorf("respond.body: %w", err)
		}
	}
	for _, e := range []struct {
		name string
		h    *HeaderEdits
	}{{"request_headers", rc.RequestHeaders}, {"response_headers", rc.ResponseHeaders}} {
		if e.h == nil {
			continue
		}
		if err := checkFields(e.h.Add); err != nil {
			return nil, fmt.Errorf("%s.add: %w", e.name, err)
		}
		if err := checkFields(e.h.Set); err != nil {
			return nil, fmt.Errorf("%s.set: %w", e.name, err)
		}
		for _, n := range e.h.Remove {
			if !isToken(n) {
				return nil, fmt.Errorf("%s.remove: %q is not a field name", e.name, n)
			}
		}
		e.h.add, e.h.set = sortedFields(e.h.Add), sortedFields(e.h.Set)
	}
	if rc.RequestHeaders != nil && (rt.Action == ActRedirect || rt.Action == ActRespond) {
		return nil, errors.New("request_headers: a redirect or respond route sends no request on")
	}
	return rt, nil
}

func (m *pathMatcher) compile(p *PathMatch) error {
	n := 0
	for _, s := range []string{p.Prefix, p.Exact, p.Glob, p.Regexp} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return errors.New("want exactly one of prefix, exact, glob and regexp")
	}
	switch {
	case p.Prefix != "":
		if p.Prefix[0] != '/' {
			return fmt.Errorf("prefix: %q must start with \"/\"", p.Prefix)
		}
		m.kind, m.s = 'p', p.Prefix
	case p.Exact != "":
		if p.Exact[0] != '/' {
			return fmt.Errorf("exact: %q must start with \"/\"", p.Exact)
		}
		m.kind, m.s = 'e', p.Exact
	case p.Glob != "":
		if p.Glob[0] != '/' {
			return fmt.Errorf("glob: %q must start with \"/\"", p.Glob)
		}
		m.kind, m.re = 'r', regexp.MustCompile(globRegexp(p.Glob))
	default:
		re, err := regexp.Compile(p.Regexp)
		if err != nil {
			return fmt.Errorf("regexp: %w", err)
		}
		m.kind, m.re = 'r', re
	}
	if m.re != nil {
		m.nsub, m.groups = m.re.NumSubexp(), groupNames(m.re)
	}
	return nil
}

// globRegexp turns a glob into an anchored regexp: "**" -> (.*),
// "*" -> ([^/]*), "?" -> [^/].
func globRegexp(g string) string {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(g); i++ {
		switch c := g[i]; {
		case c == '*' && i+1 < len(g) && g[i+1] == '*':
			b.WriteString("(.*)")
			i++
		case c == '*':
			b.WriteString("([^/]*)")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return b.String()
}

func groupNames(re *regexp.Regexp) map[string]int {
	var m map[string]int
	for i, n := range re.SubexpNames() {
		if n != "" {
			if m == nil {
				m = map[string]int{}
			}
			m[n] = i
		}
	}
	return m
}

// templateVars are the variables of a template besides captures.
var templateVars = []string{"host", "path", "query", "uri", "scheme", "method"}

// checkTemplate checks that every reference in t exists.
func checkTemplate(t string, m *pathMatcher) error {
	_, err := expand(nil, t, func(ref string) (string, error) {
		if n, err := strconv.Atoi(ref); err == nil {
			if n > m.nsub {
				if m.re == nil {
					return "", fmt.Errorf("$%s: captures need path.regexp or path.glob", ref)
				}
				return "", fmt.Errorf("$%s: the path pattern has %d capture groups", ref, m.nsub)
			}
			return "", nil
		}
		if _, ok := m.groups[ref]; ok {
			return "", nil
		}
		for _, v := range templateVars {
			if v == ref {
				return "", nil
			}
		}
		return "", fmt.Errorf("${%s}: no such capture or variable (%s)", ref, strings.Join(templateVars, ", "))
	})
	return err
}

// expand appends template t to dst with each reference ($1, ${1},
// ${name}, $name) replaced by what resolve returns; "$$" is "$".
func expand(dst []byte, t string, resolve func(ref string) (string, error)) ([]byte, error) {
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c != '$' {
			dst = append(dst, c)
			continue
		}
		if i+1 >= len(t) {
			return dst, errors.New("a lone \"$\" at the end (write $$ for a dollar sign)")
		}
		var ref string
		switch n := t[i+1]; {
		case n == '$':
			dst = append(dst, '$')
			i++
			continue
		case n >= '0' && n <= '9':
			ref = t[i+1 : i+2]
			i++
		case n == '{':
			end := strings.IndexByte(t[i+2:], '}')
			if end < 0 {
				return dst, errors.New("\"${\" without \"}\"")
			}
			ref = t[i+2 : i+2+end]
			i += 2 + end
		case isIdentByte(n):
			j := i + 1
			for j < len(t) && isIdentByte(t[j]) {
				j++
			}
			ref = t[i+1 : j]
			i = j - 1
		default:
			return dst, fmt.Errorf("\"$%c\": write $$ for a dollar sign", n)
		}
		v, err := resolve(ref)
		if err != nil {
			return dst, err
		}
		dst = append(dst, v...)
	}
	return dst, nil
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func checkFields(m map[string]string) error {
	for k, v := range m {
		if !isToken(k) {
			return fmt.Errorf("%q is not a field name", k)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return fmt.Errorf("%s: control characters are not allowed in a value", k)
		}
	}
	return nil
}

// sortedFields returns m's entries sorted by name, for a stable order.
func sortedFields(m map[string]string) [][2]string {
	out := make([][2]string, 0, len(m))
	for k, v := range m {
		out = append(out, [2]string{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

func isPoolName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return s != ""
}

// isToken reports whether s is an RFC 9110 §5.6.2 token.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != ""
}

// MountSpec is the argument of wedge_static_mount for a static route.
type MountSpec struct {
	Name            string       `json:"name"`
	Root            string       `json:"root"`
	Index           string       `json:"index,omitempty"`
	Browse          bool         `json:"browse,omitempty"`
	Internal        bool         `json:"internal,omitempty"`
	ResponseHeaders *HeaderEdits `json:"response_headers,omitempty"`
}

// Mounts returns the static mounts the host must open, one per static
// route.
func (r *Router) Mounts() []MountSpec {
	var out []MountSpec
	for _, rt := range r.Routes {
		if rt.Action == ActStatic {
			out = append(out, MountSpec{Name: rt.MountName, Root: rt.Mount.Root, Index: rt.Mount.Index,
				Browse: rt.Mount.Browse, Internal: rt.Internal, ResponseHeaders: rt.RespEdits})
		}
	}
	return out
}
