package proxy

import (
	"net/netip"
	"strings"

	"github.com/wedgeproxy/wedge/server/internal/message"
)

// hopByHop lists the fields that describe one connection and are never
// forwarded (RFC 9110 §7.6.1), plus Proxy-Authorization and
// Proxy-Authenticate, which address this hop, and the framing fields that
// Wedge sets itself after buffering.
var hopByHop = [...]string{
	"Connection", "Proxy-Connection", "Keep-Alive", "TE", "Transfer-Encoding",
	"Upgrade", "Trailer", "Proxy-Authorization", "Proxy-Authenticate",
}

// removeHopByHop deletes hop-by-hop fields from h, including every field
// that a Connection field names (RFC 9110 §7.6.1). It keeps Upgrade when
// keepUpgrade is set, for a WebSocket tunnel.
func removeHopByHop(h *message.Header, keepUpgrade bool) {
	var named [8]string // fields listed in Connection; more than 8 is rare and handled below
	listed := named[:0]
	for _, f := range *h {
		if !strings.EqualFold(f.Name, "Connection") {
			continue
		}
		for v := f.Value; v != ""; {
			var name string
			name, v, _ = strings.Cut(v, ",")
			name = strings.TrimSpace(name)
			if name == "" || strings.EqualFold(name, "close") || strings.EqualFold(name, "keep-alive") ||
				(keepUpgrade && strings.EqualFold(name, "Upgrade")) {
				continue
			}
			listed = append(listed, name)
		}
	}
	for _, name := range listed {
		h.Del(name)
	}
	s := *h
	out := s[:0]
	for _, f := range s {
		if !isHopByHop(f.Name, keepUpgrade) {
			out = append(out, f)
		}
	}
	clear(s[len(out):])
	*h = out
}

func isHopByHop(name string, keepUpgrade bool) bool {
	for _, hb := range hopByHop {
		if len(hb) == len(name) && strings.EqualFold(hb, name) {
			if keepUpgrade && (hb == "Upgrade" || hb == "Connection") {
				return false
			}
			return true
		}
	}
	return false
}

// trustedSet tells whether a peer's X-Forwarded-* and Forwarded fields are
// believed (nginx set_real_ip_from, Caddy trusted_proxies).
type trustedSet []netip.Prefix

func (t trustedSet) contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// setForwarded adds the client's identity to the request for the upstream:
// X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host (the de-facto
// fields) and Forwarded (RFC 7239 §4). From a trusted peer the incoming
// values are kept and extended; from anyone else they are replaced, so a
// client cannot forge its address.
func setForwarded(req *message.Request, remote netip.Addr, trusted bool) {
	h := &req.Header
	ip := remote.Unmap().String()
	if trusted {
		if prior := strings.Join(h.Values("X-Forwarded-For"), ", "); prior != "" {
			h.Set("X-Forwarded-For", prior+", "+ip)
		} else {
			h.Set("X-Forwarded-For", ip)
		}
		if !h.Has("X-Forwarded-Proto") {
			h.Set("X-Forwarded-Proto", req.Scheme)
		}
		if !h.Has("X-Forwarded-Host") && req.Host != "" {
			h.Set("X-Forwarded-Host", req.Host)
		}
	} else {
		h.Set("X-Forwarded-For", ip)
		h.Set("X-Forwarded-Proto", req.Scheme)
		if req.Host != "" {
			h.Set("X-Forwarded-Host", req.Host)
		} else {
			h.Del("X-Forwarded-Host") // an HTTP/1.0 request without Host: nothing to forward, nothing forged
		}
	}
	elem := forwardedElement(remote, req.Host, req.Scheme)
	if prior := strings.Join(h.Values("Forwarded"), ", "); trusted && prior != "" {
		h.Set("Forwarded", prior+", "+elem)
	} else {
		h.Set("Forwarded", elem)
	}
}

// forwardedElement renders one forwarded-element of RFC 7239 §4:
// for=192.0.2.1;host=example.com;proto=https, quoting where the value is
// not a token (IPv6 addresses in brackets, §6).
func forwardedElement(remote netip.Addr, host, scheme string) string {
	var b strings.Builder
	b.Grow(48 + len(host))
	b.WriteString("for=")
	remote = remote.Unmap()
	if remote.Is6() {
		b.WriteString(`"[`)
		b.WriteString(remote.String())
		b.WriteString(`]"`)
	} else {
		b.WriteString(remote.String())
	}
	if host != "" {
		b.WriteString(";host=")
		writeTokenOrQuoted(&b, host)
	}
	b.WriteString(";proto=")
	b.WriteString(scheme)
	return b.String()
}

func writeTokenOrQuoted(b *strings.Builder, v string) {
	if isToken(v) {
		b.WriteString(v)
		return
	}
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
}

// isToken reports whether v is a token (RFC 9110 §5.6.2).
func isToken(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// viaProtocol is the received-protocol of a Via entry (RFC 9110 §7.6.3):
// the version alone when the protocol is HTTP.
func viaProtocol(proto string) string {
	switch proto {
	case "HTTP/1.1":
		return "1.1"
	case "HTTP/1.0":
		return "1.0"
	case "HTTP/2.0", "HTTP/2":
		return "2"
	case "HTTP/3.0", "HTTP/3":
		return "3"
	}
	return strings.TrimPrefix(proto, "HTTP/")
}

// addVia appends this hop to the Via field (RFC 9110 §7.6.3).
func addVia(h *message.Header, proto, pseudonym string) {
	entry := viaProtocol(proto) + " " + pseudonym
	if prior := strings.Join(h.Values("Via"), ", "); prior != "" {
		h.Set("Via", prior+", "+entry)
		return
	}
	h.Add("Via", entry)
}
