// Package static serves files from directories mounted at URL path prefixes,
// like nginx's `location /static/ { alias /dir/; }`.
//
// It never writes to a connection. [Mount.Serve] resolves one request into a
// [Response]: a status, a header and a body made of [Section]s, each either
// bytes in memory or a range of an open file, which the proxy writes with
// sendfile (zero copy) and then releases with [Response.Close].
//
// What it implements, with the source each rule follows:
//   - GET and HEAD only (RFC 9110 §9.3.1, §9.3.2); others get 405 with Allow.
//   - Paths are percent-decoded and cleaned before matching, the way nginx
//     normalizes a URI; files are opened through [os.Root], so neither ".."
//     nor a symbolic link can reach outside the mount's root.
//   - Directories: 301 to the slashed URL, then the index file, then a
//     listing (nginx index, autoindex) or 403.
//   - Validators ETag and Last-Modified (RFC 9110 §8.8), conditional requests
//     in the order of RFC 9110 §13.2.2, byte ranges (RFC 9110 §14) including
//     multipart/byteranges, and precompressed sidecar files chosen by
//     Accept-Encoding (nginx gzip_static, brotli_static).
//
// # Notes
//
// Files are opened for each request and closed by [Response.Close]; no file
// descriptors are cached. A [Table] holds one open directory per mount and
// must be closed when the configuration is replaced.
package static

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Sentinel errors returned, wrapped, by [New] and [NewTable].
var (
	// ErrBadPrefix means a mount's Prefix does not start with "/" or holds
	// a byte that a decoded request path can never hold (NUL, backslash).
	ErrBadPrefix = errors.New("prefix must be a path starting with \"/\"")
	// ErrBadIndex means a mount's Index is not a plain file name.
	ErrBadIndex = errors.New("index must be a file name without \"/\"")
	// ErrNoRoot means a mount's Root is empty.
	ErrNoRoot = errors.New("root must be set")
	// ErrDuplicatePrefix means two mounts of one table share a Prefix.
	ErrDuplicatePrefix = errors.New("duplicate prefix")
)

// DefaultIndex is the index file name used when a mount's Index is empty
// (nginx `index index.html`).
const DefaultIndex = "index.html"

// MountConfig describes one mount.
type MountConfig struct {
	// Prefix is the URL path prefix, e.g. "/static/", for [Table.Match]
	// and [Mount.Serve]; "/" for a mount served with [Mount.ServePath].
	Prefix string
	// Root is the directory whose files are served; "/static/a.css" with
	// Prefix "/static/" is Root+"/a.css" (nginx alias). It must exist and
	// be a directory.
	Root string
	// Index is the file name (no "/") served for a directory. Default
	// [DefaultIndex].
	Index string
	// Browse lists a directory that has no index file (else 403).
	Browse bool
	// Internal makes the mount reachable only through X-Accel-Redirect
	// (nginx `internal`).
	Internal bool
}

// Mount is one validated [MountConfig] with its root directory held
// open. It is safe for concurrent use. Close releases the directory.
type Mount struct {
	prefix   string // cleaned, ends in "/"
	bare     string // prefix without its final "/" ("" for "/")
	dir      string // root as configured, made absolute
	root     *os.Root
	index    string
	browse   bool
	internal bool
}

// New validates cfg and opens its root directory.
//
// The prefix is cleaned (path.Clean) and given a final "/"; it is compared
// with the decoded, cleaned request path, so "/static" and "/static/" are
// the same mount and "/static" itself is redirected to "/static/". The
// root must exist and be a directory. Index defaults to [DefaultIndex] and
// must be a plain file name.
//
// Errors wrap [ErrBadPrefix], [ErrBadIndex], [ErrNoRoot] or the error from opening the
// root (for example [fs.ErrNotExist], or "not a directory").
func New(cfg MountConfig) (*Mount, error) {
	p := cfg.Prefix
	if p == "" || p[0] != '/' || strings.ContainsAny(p, "\x00\\") {
		return nil, fmt.Errorf("validating static mount %q: %w", cfg.Prefix, ErrBadPrefix)
	}
	p = path.Clean(p)
	if p != "/" {
		p += "/"
	}
	idx := cfg.Index
	if idx == "" {
		idx = DefaultIndex
	}
	if idx == "." || idx == ".." || strings.ContainsAny(idx, "/\\\x00") {
		return nil, fmt.Errorf("validating static mount %q: index %q: %w", cfg.Prefix, cfg.Index, ErrBadIndex)
	}
	dir := cfg.Root
	if dir == "" {
		return nil, fmt.Errorf("validating static mount %q: %w", cfg.Prefix, ErrNoRoot)
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening static root %q for %q: %w", cfg.Root, cfg.Prefix, err)
	}
	return &Mount{
		prefix:   p,
		bare:     p[:len(p)-1],
		dir:      dir,
		root:     r,
		index:    idx,
		browse:   cfg.Browse,
		internal: cfg.Internal,
	}, nil
}

// Prefix returns the normalized URL path prefix, ending in "/".
func (m *Mount) Prefix() string { return m.prefix }

// Root returns the absolute path of the directory served.
func (m *Mount) Root() string { return m.dir }

// Internal reports whether the mount is reachable only by X-Accel-Redirect
// (nginx `internal`).
func (m *Mount) Internal() bool { return m.internal }

// Close releases the root directory. Responses already returned stay valid
// until their own Close; later Serve calls answer 500.
func (m *Mount) Close() error { return m.root.Close() }

// rel reports whether the cleaned path p is under the mount, and
// returns its name relative to the root ("." for the root itself).
func (m *Mount) rel(p string) (string, bool) {
	if p == m.bare {
		return ".", true
	}
	if !strings.HasPrefix(p, m.prefix) {
		return "", false
	}
	if len(p) == len(m.prefix) { // only for prefix "/" and path "/"
		return ".", true
	}
	return p[len(m.prefix):], true
}

// Table is the set of mounts of one configuration, matched by longest
// prefix. It is immutable and safe for concurrent use.
type Table struct {
	mounts []*Mount // longest prefix first
}

// NewTable validates and opens every mount with [New]. It fails on the
// first bad mount, closing those already opened, and refuses two mounts
// with the same normalized prefix ([ErrDuplicatePrefix]).
func NewTable(ms []MountConfig) (*Table, error) {
	t := &Table{mounts: make([]*Mount, 0, len(ms))}
	seen := make(map[string]bool, len(ms))
	for _, c := range ms {
		m, err := New(c)
		if err != nil {
			t.Close()
			return nil, err
		}
		if seen[m.prefix] {
			m.Close()
			t.Close()
			return nil, fmt.Errorf("validating static mount %q: %w", c.Prefix, ErrDuplicatePrefix)
		}
		seen[m.prefix] = true
		t.mounts = append(t.mounts, m)
	}
	sort.SliceStable(t.mounts, func(i, j int) bool {
		return len(t.mounts[i].prefix) > len(t.mounts[j].prefix)
	})
	return t, nil
}

// Mounts returns the table's mounts, longest prefix first. The slice must
// not be modified.
func (t *Table) Mounts() []*Mount { return t.mounts }

// Match returns the mount with the longest prefix that holds path, for a
// client's own request. Internal mounts are not reachable this way (nginx
// `internal`): when the longest matching prefix is an Internal mount, Match
// reports no match at all rather than falling back to a shorter prefix,
// whose root might hold the very files the Internal mount protects. The
// request then goes wherever non-static requests go (nginx would answer
// 404 there; the upstream, which decides on X-Accel-Redirect, may too).
//
// path is the request path as received (percent-encoded); a query after
// "?" is ignored. It is decoded and cleaned before matching, as nginx
// normalizes a URI before choosing a location, so "/static/../app" does not
// match "/static/". A path that cannot be decoded is matched as it is, so
// that the mount answers it with 400 rather than letting it pass elsewhere.
func (t *Table) Match(path string) (*Mount, bool) {
	return t.match(path, false)
}

// MatchInternal is like [Table.Match] but also considers Internal mounts.
// It is for the URI of an upstream's X-Accel-Redirect field.
func (t *Table) MatchInternal(uri string) (*Mount, bool) {
	return t.match(uri, true)
}

func (t *Table) match(p string, internal bool) (*Mount, bool) {
	if t == nil || len(t.mounts) == 0 {
		return nil, false // no mounts: skip cleaning the path on every request
	}
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if c, _, status := cleanPath(p); status == 0 {
		p = c
	}
	for _, m := range t.mounts {
		if _, ok := m.rel(p); ok {
			if m.internal && !internal {
				return nil, false
			}
			return m, true
		}
	}
	return nil, false
}

// Close closes every mount. It returns the first error.
func (t *Table) Close() error {
	if t == nil {
		return nil
	}
	var first error
	for _, m := range t.mounts {
		if err := m.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
