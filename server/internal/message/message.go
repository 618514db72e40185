// Package message holds the HTTP message heads that every part of Wedge's
// pipeline shares: the listeners fill them, the proxy forwards them, the
// upstream client writes them, and the plugin host exposes them to guests as
// proxy-wasm header maps. It imports nothing from the rest of Wedge, so all
// of those packages can depend on it without cycles.
//
// Header fields are kept as an ordered list of name/value pairs, the shape of
// both an HTTP/1.1 field section (RFC 9112 §5) and a proxy-wasm header map
// (proxy-wasm spec v0.2.1, "HTTP fields"). Names keep the case they arrived
// with; lookups are case-insensitive (RFC 9110 §5.1).
package message

import (
	"os"
	"strings"
)

// Field is one header or trailer field line: a name and its value, without
// the colon and without leading or trailing whitespace (RFC 9110 §5.5).
type Field struct {
	Name  string
	Value string
}

// Header is an ordered list of fields. A name may appear more than once;
// order is kept, as RFC 9110 §5.3 requires for repeated field lines.
// The zero value is an empty header, ready to use.
type Header []Field

// Get returns the value of the first field named name (case-insensitive),
// or "" if there is none.
func (h Header) Get(name string) string {
	for i := range h {
		if strings.EqualFold(h[i].Name, name) {
			return h[i].Value
		}
	}
	return ""
}

// Lookup is like Get but also reports whether the field was present.
func (h Header) Lookup(name string) (string, bool) {
	for i := range h {
		if strings.EqualFold(h[i].Name, name) {
			return h[i].Value, true
		}
	}
	return "", false
}

// Values returns the values of every field named name, in order. It returns
// nil when there is none. It does not split comma-separated lists.
func (h Header) Values(name string) []string {
	var vs []string
	for i := range h {
		if strings.EqualFold(h[i].Name, name) {
			vs = append(vs, h[i].Value)
		}
	}
	return vs
}

// Count returns how many fields are named name.
func (h Header) Count(name string) int {
	n := 0
	for i := range h {
		if strings.EqualFold(h[i].Name, name) {
			n++
		}
	}
	return n
}

// Add appends a field, keeping any existing ones with the same name.
func (h *Header) Add(name, value string) {
	*h = append(*h, Field{Name: name, Value: value})
}

// Set replaces every field named name with one field holding value. The new
// field takes the place of the first old one, or goes last if there was none.
func (h *Header) Set(name, value string) {
	s := *h
	j := -1
	for i := range s {
		if strings.EqualFold(s[i].Name, name) {
			if j < 0 {
				j = i
				s[i].Value = value
			}
		}
	}
	if j < 0 {
		*h = append(s, Field{Name: name, Value: value})
		return
	}
	// drop later duplicates
	out := s[:j+1]
	for i := j + 1; i < len(s); i++ {
		if !strings.EqualFold(s[i].Name, name) {
			out = append(out, s[i])
		}
	}
	*h = out
}

// Del removes every field named name.
func (h *Header) Del(name string) {
	s := *h
	out := s[:0]
	for i := range s {
		if !strings.EqualFold(s[i].Name, name) {
			out = append(out, s[i])
		}
	}
	clear(s[len(out):])
	*h = out
}

// Has reports whether a field named name is present.
func (h Header) Has(name string) bool {
	_, ok := h.Lookup(name)
	return ok
}

// HasToken reports whether any field named name carries token as one of its
// comma-separated list elements (RFC 9110 §5.6.1), compared case-insensitively.
// It is what "Connection: close" or "Transfer-Encoding: chunked" tests use.
func (h Header) HasToken(name, token string) bool {
	for i := range h {
		if strings.EqualFold(h[i].Name, name) && ListHasToken(h[i].Value, token) {
			return true
		}
	}
	return false
}

// ListHasToken reports whether the comma-separated list v (RFC 9110 §5.6.1)
// has an element equal to token, case-insensitively. Parameters after ';'
// are ignored.
func ListHasToken(v, token string) bool {
	for v != "" {
		var elem string
		elem, v, _ = strings.Cut(v, ",")
		if i := strings.IndexByte(elem, ';'); i >= 0 {
			elem = elem[:i]
		}
		if strings.EqualFold(strings.TrimSpace(elem), token) {
			return true
		}
	}
	return false
}

// Clone returns a copy whose backing array is not shared with h.
func (h Header) Clone() Header {
	if h == nil {
		return nil
	}
	return append(Header(make([]Field, 0, len(h))), h...)
}

// Request is the head of one client request, as a listener parsed it and as
// the pipeline forwards it (RFC 9110 §9, RFC 9112 §3).
type Request struct {
	// Method is the request method, case-sensitive ("GET").
	Method string
	// Target is the request-target in origin-form ("/a/b?c=d"), the path
	// and query the upstream receives (RFC 9112 §3.2.1). Absolute-form
	// targets are reduced to origin-form by the listener, with their
	// authority moved to Host.
	Target string
	// Host is the authority the client asked for: the Host field in
	// HTTP/1.1, :authority in HTTP/2 and HTTP/3 (RFC 9110 §7.2).
	Host string
	// Scheme is "http" or "https": how the client reached Wedge.
	Scheme string
	// Proto is the protocol the client spoke: "HTTP/1.0", "HTTP/1.1",
	// "HTTP/2.0" or "HTTP/3.0".
	Proto string
	// Header holds the request's fields, without pseudo-fields and, once the
	// proxy has forwarded them, without hop-by-hop fields.
	Header Header
	// ContentLength is the body's length in bytes when the client declared
	// it, or -1 when it is unknown (chunked, HTTP/2 without content-length).
	// 0 means no body.
	ContentLength int64
}

// Path returns the target's path, without the query.
func (r *Request) Path() string {
	p, _, _ := strings.Cut(r.Target, "?")
	return p
}

// Response is the head of one response (RFC 9110 §15, RFC 9112 §4).
type Response struct {
	// Status is the status code, 100 to 999.
	Status int
	// Reason is the reason phrase the upstream sent; it may be empty, and
	// HTTP/2 and HTTP/3 do not carry it.
	Reason string
	// Proto is the protocol of the response's sender, e.g. "HTTP/1.1".
	Proto string
	// Header holds the response's fields.
	Header Header
	// ContentLength is the body's length in bytes, or -1 when unknown.
	ContentLength int64
}

// Section is one piece of a body ready to be written: either bytes in
// memory or a byte range of an open file (sent with sendfile where the
// connection allows). Listeners write a body given as []Section in order.
type Section struct {
	// Data holds the bytes when the section is in memory.
	Data []byte
	// File, when not nil, holds the bytes at [Offset, Offset+Length).
	File   *os.File
	Offset int64
	Length int64
}

// Len returns the section's length in bytes.
func (s Section) Len() int64 {
	if s.File != nil {
		return s.Length
	}
	return int64(len(s.Data))
}
