package pluginhost

import (
	"strconv"

	"github.com/wedgeproxy/wedge/server/internal/message"
	"github.com/wedgeproxy/wedge/server/pluginhost/internal/abi"
)

// headerMap is one proxy-wasm header map (spec "HTTP fields") over Wedge's
// message heads. A request map shows the pseudo-fields :authority, :path,
// :method and :scheme (Envoy's order) before req.Header, whose Host field is
// shown as :authority only; "host" is an alias of :authority. A response
// map shows :status before resp.Header. Field names are shown in lower
// case, as Envoy does; lookups ignore case.
type headerMap struct {
	req  *message.Request
	resp *message.Response
	// empty marks a map that exists but has no fields (trailers: Wedge
	// does not forward them).
	empty bool
}

var requestPseudo = [...]string{":authority", ":path", ":method", ":scheme"}

// headerMap returns the map mapID for the current callback.
func (v *vm) headerMap(mapID uint32) (headerMap, abi.Status) {
	if !abi.ValidMap(mapID) {
		return headerMap{}, abi.StatusBadArgument
	}
	switch mapID {
	case abi.MapHTTPRequestHeaders:
		if sp := v.streamFor(); sp != nil && sp.s.req != nil {
			return headerMap{req: sp.s.req}, abi.StatusOK
		}
	case abi.MapHTTPResponseHeaders:
		if sp := v.streamFor(); sp != nil && sp.s.resp != nil {
			return headerMap{resp: sp.s.resp}, abi.StatusOK
		}
	case abi.MapHTTPRequestTrailers, abi.MapHTTPResponseTrailers:
		if v.streamFor() != nil {
			return headerMap{empty: true}, abi.StatusOK
		}
	case abi.MapHTTPCallResponseHeaders:
		if r := v.httpRes; r != nil && r.resp != nil && r.nHead > 0 {
			return headerMap{resp: r.resp}, abi.StatusOK
		}
	case abi.MapHTTPCallResponseTrailers:
		if v.httpRes != nil {
			return headerMap{empty: true}, abi.StatusOK
		}
	}
	return headerMap{}, abi.StatusNotFound
}

// requestMapLen is the number of pairs in a request's header map.
func requestMapLen(req *message.Request) int {
	n := len(requestPseudo)
	for i := range req.Header {
		if !isHost(req.Header[i].Name) {
			n++
		}
	}
	return n
}

func isHost(name string) bool {
	return len(name) == 4 && equalFoldBytes(name, hostBytes)
}

var hostBytes = []byte("host")

func (m headerMap) pseudo(i int) string {
	if m.req != nil {
		switch i {
		case 0:
			return m.req.Host
		case 1:
			return m.req.Target
		case 2:
			return m.req.Method
		default:
			if m.req.Scheme == "" {
				return "http"
			}
			return m.req.Scheme
		}
	}
	return statusText(m.resp.Status)
}

// each calls fn for every pair, in order.
func (m headerMap) each(fn func(name, value string)) {
	switch {
	case m.req != nil:
		for i, name := range requestPseudo {
			fn(name, m.pseudo(i))
		}
		for _, f := range m.req.Header {
			if !isHost(f.Name) {
				fn(f.Name, f.Value)
			}
		}
	case m.resp != nil:
		fn(":status", m.pseudo(0))
		for _, f := range m.resp.Header {
			fn(f.Name, f.Value)
		}
	}
}

// size returns the pair count and the serialized size.
func (m headerMap) size() (n, bytes int) {
	kv := 0
	m.each(func(name, value string) {
		n++
		kv += len(name) + len(value)
	})
	return n, abi.MapSize(n, kv)
}

// serialize writes the map into dst, which is exactly size() bytes.
func (m headerMap) serialize(dst []byte, n int) {
	w := abi.NewMapWriter(dst, n)
	m.each(func(name, value string) { w.Add(name, value, true) })
}

// get returns the first value of key.
func (m headerMap) get(key []byte) (string, bool) {
	if m.empty {
		return "", false
	}
	if i := m.pseudoIndex(key); i >= 0 {
		return m.pseudo(i), true
	}
	var h message.Header
	if m.req != nil {
		h = m.req.Header
	} else {
		h = m.resp.Header
	}
	for i := range h {
		if equalFoldBytes(h[i].Name, key) {
			return h[i].Value, true
		}
	}
	return "", false
}

// pseudoIndex maps a pseudo-field name (or "host" in a request) to its
// index for pseudo, or -1.
func (m headerMap) pseudoIndex(key []byte) int {
	if m.req != nil {
		if len(key) == 4 && equalFoldBytes("host", key) {
			return 0
		}
		if len(key) == 0 || key[0] != ':' {
			return -1
		}
		for i, name := range requestPseudo {
			if string(key) == name {
				return i
			}
		}
		return -2 // an unknown pseudo-field
	}
	if len(key) == 0 || key[0] != ':' {
		return -1
	}
	if string(key) == ":status" {
		return 0
	}
	return -2
}

// setPseudo sets pseudo-field i to value.
func (m headerMap) setPseudo(i int, value []byte) abi.Status {
	if m.req != nil {
		if !validPseudoValue(value) {
			return abi.StatusBadArgument
		}
		switch i {
		case 0:
			m.req.Host = string(value)
			if m.req.Header.Has("Host") {
				m.req.Header.Set("Host", m.req.Host)
			}
		case 1:
			if len(value) == 0 {
				return abi.StatusBadArgument
			}
			m.req.Target = string(value)
		case 2:
			if !validName(value) {
				return abi.StatusBadArgument
			}
			m.req.Method = string(value)
		default:
			if !validName(value) {
				return abi.StatusBadArgument
			}
			m.req.Scheme = string(value)
		}
		return abi.StatusOK
	}
	code, err := strconv.Atoi(string(value))
	if err != nil || code < 100 || code > 999 {
		return abi.StatusBadArgument
	}
	m.resp.Status = code
	m.resp.Reason = ""
	return abi.StatusOK
}

func (m headerMap) fields() *message.Header {
	if m.req != nil {
		return &m.req.Header
	}
	return &m.resp.Header
}

// checkSet is the common start of add and replace: it refuses an absent
// map and a bad name or value, and sets a pseudo-field (there being only
// one of each). done reports that the call is answered with st.
func (m headerMap) checkSet(key, value []byte) (st abi.Status, done bool) {
	if m.empty {
		return abi.StatusNotFound, true
	}
	switch i := m.pseudoIndex(key); {
	case i >= 0:
		return m.setPseudo(i, value), true
	case i == -2:
		return abi.StatusBadArgument, true
	}
	if !validName(key) || !validValue(value) {
		return abi.StatusBadArgument, true
	}
	return abi.StatusOK, false
}

// add appends key: value (proxy_add_header_map_value). On a pseudo-field
// it replaces, there being only one.
func (m headerMap) add(key, value []byte) abi.Status {
	if st, done := m.checkSet(key, value); done {
		return st
	}
	m.fields().Add(string(key), string(value))
	return abi.StatusOK
}

// replace sets key to value, dropping its other values
// (proxy_replace_header_map_value).
func (m headerMap) replace(key, value []byte) abi.Status {
	if st, done := m.checkSet(key, value); done {
		return st
	}
	h := m.fields()
	for i := range *h {
		if equalFoldBytes((*h)[i].Name, key) {
			// Keep the name as it was; set the value, drop the rest.
			(*h)[i].Value = string(value)
			removeFields(h, key, i+1)
			return abi.StatusOK
		}
	}
	h.Add(string(key), string(value))
	return abi.StatusOK
}

// remove drops every field named key (proxy_remove_header_map_value).
// Pseudo-fields cannot be removed; removing one is a no-op.
func (m headerMap) remove(key []byte) abi.Status {
	if m.empty {
		return abi.StatusOK
	}
	if m.pseudoIndex(key) != -1 {
		return abi.StatusOK
	}
	removeFields(m.fields(), key, 0)
	return abi.StatusOK
}

// removeFields drops fields named key at index from or later.
func removeFields(h *message.Header, key []byte, from int) {
	s := *h
	out := s[:from]
	for i := from; i < len(s); i++ {
		if !equalFoldBytes(s[i].Name, key) {
			out = append(out, s[i])
		}
	}
	clear(s[len(out):])
	*h = out
}

// setAll replaces the whole map with the serialized pairs in b
// (proxy_set_header_map_pairs). Pseudo-fields missing from b keep their
// values. Nothing changes unless every pair is valid.
func (m headerMap) setAll(b []byte) abi.Status {
	if m.empty {
		return abi.StatusNotFound
	}
	bad := false
	n := 0
	err := abi.DecodeMap(b, func(k, val []byte) bool {
		switch i := m.pseudoIndex(k); {
		case i == -2:
			bad = true
		case i == -1:
			bad = !validName(k) || !validValue(val)
			n++
		case m.req != nil:
			bad = !validPseudoValue(val)
		}
		return !bad
	})
	if err != nil || bad {
		return abi.StatusBadArgument
	}
	h := m.fields()
	var hostField bool
	if m.req != nil {
		hostField = m.req.Header.Has("Host")
	}
	nh := make(message.Header, 0, n+1)
	st := abi.StatusOK
	_ = abi.DecodeMap(b, func(k, val []byte) bool {
		if i := m.pseudoIndex(k); i >= 0 {
			if s := m.setPseudo(i, val); s != abi.StatusOK {
				st = s
			}
			return true
		}
		nh = append(nh, message.Field{Name: string(k), Value: string(val)})
		return true
	})
	if hostField {
		nh = append(nh, message.Field{Name: "Host", Value: m.req.Host})
	}
	*h = nh
	return st
}

// statusText returns code in decimal without allocating for common codes.
func statusText(code int) string {
	if code >= 100 && code < 600 {
		return statusStrings[code-100]
	}
	return strconv.Itoa(code)
}

var statusStrings = func() (s [500]string) {
	for i := range s {
		s[i] = strconv.Itoa(i + 100)
	}
	return
}()

// equalFoldBytes compares an ASCII name with b, ignoring case.
func equalFoldBytes(s string, b []byte) bool {
	if len(s) != len(b) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c1, c2 := s[i], b[i]
		if c1 == c2 {
			continue
		}
		if 'A' <= c1 && c1 <= 'Z' {
			c1 += 'a' - 'A'
		}
		if 'A' <= c2 && c2 <= 'Z' {
			c2 += 'a' - 'A'
		}
		if c1 != c2 {
			return false
		}
	}
	return true
}

// validName reports whether b is a token (RFC 9110 §5.6.2), as field
// names and methods must be.
func validName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isTchar[c] {
			return false
		}
	}
	return true
}

// validValue reports whether b may be a field value: no control
// characters but HTAB (RFC 9110 §5.5), so a guest cannot split a message.
func validValue(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// validPseudoValue checks :authority, :path, :method and :scheme values:
// no controls and no spaces, so the request line stays one line.
func validPseudoValue(b []byte) bool {
	for _, c := range b {
		if c <= 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

var isTchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return
}()
