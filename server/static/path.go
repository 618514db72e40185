package static

import (
	"net/url"
	"path"
	"strings"
)

// cleanPath percent-decodes the path p of an origin-form target (RFC 9112
// §3.2.1, RFC 3986 §2.1) and cleans it with path.Clean semantics, so the
// result starts with "/" and holds no "." or ".." segment and no "//".
//
// dir reports whether the decoded path named a directory explicitly: it
// ended in "/", "/." or "/..".
//
// status is 0, or 400 when p cannot be a file path: it does not start with
// "/", has an invalid escape, or holds NUL or a backslash, raw or encoded,
// or an encoded slash (%2F). A file name can hold none of those on Unix, so
// refusing them loses nothing and closes the tricks built on them (a "%2F"
// that a later stage decodes again, "..\" on Windows).
func cleanPath(p string) (clean string, dir bool, status int) {
	if p == "" || p[0] != '/' {
		return "", false, 400
	}
	dec := p
	if strings.IndexByte(p, '%') >= 0 {
		var ok bool
		if dec, ok = unescape(p); !ok {
			return "", false, 400
		}
	} else if strings.ContainsAny(p, "\x00\\") {
		return "", false, 400
	}
	dir = strings.HasSuffix(dec, "/") || strings.HasSuffix(dec, "/.") || strings.HasSuffix(dec, "/..")
	return path.Clean(dec), dir, 0
}

// unescape decodes %XX escapes in s. It fails on a malformed escape and on
// a decoded or raw NUL, "/" from %2F, or backslash.
func unescape(s string) (string, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '%':
			if i+2 >= len(s) || !ishex(s[i+1]) || !ishex(s[i+2]) {
				return "", false
			}
			switch unhex(s[i+1])<<4 | unhex(s[i+2]) {
			case 0, '/', '\\':
				return "", false
			}
			n++
			i += 2
		case 0, '\\':
			return "", false
		}
	}
	b := make([]byte, 0, len(s)-2*n)
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b), true
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// escapePath percent-encodes a decoded path for a Location field
// (RFC 3986 §3.3).
func escapePath(p string) string {
	return (&url.URL{Path: p}).EscapedPath()
}

// safeQuery reports whether q may be copied into a Location field: no
// control bytes, spaces or non-ASCII (RFC 3986 §3.4). A listener should
// never hand over anything else; this is a second guard against header
// injection.
func safeQuery(q string) bool {
	for i := 0; i < len(q); i++ {
		if q[i] <= ' ' || q[i] >= 0x7f {
			return false
		}
	}
	return true
}
