package main

import "strings"

// acceptEntry is one element of an Accept-Encoding field value: a content
// coding (lower case; "*" for the wildcard) and its weight in thousandths
// (RFC 9110 §12.4.2: q=0.5 is 500; no weight is 1000).
type acceptEntry struct {
	coding string
	q      int
}

// parseAcceptEncoding parses an Accept-Encoding field value (RFC 9110
// §12.5.3):
//
//	Accept-Encoding = #( codings [ weight ] )
//	codings         = content-coding / "identity" / "*"
//	weight          = OWS ";" OWS "q=" qvalue
//
// Names are case-insensitive and returned in lower case; "x-gzip" is
// returned as "gzip" (RFC 9110 §8.4.1.3). Empty list elements are skipped
// (§5.6.1), and so is, leniently, any element that does not parse: a name
// that is not a token or a weight that is not a qvalue. Parameters other
// than q are ignored, and so is a second q.
func parseAcceptEncoding(v string) []acceptEntry {
	var out []acceptEntry
	for v != "" {
		var elem string
		elem, v, _ = strings.Cut(v, ",")
		name, params, _ := strings.Cut(elem, ";")
		name = trimOWS(name)
		if name == "" || !isToken(name) {
			continue
		}
		name = strings.ToLower(name)
		if name == "x-gzip" {
			name = "gzip"
		}
		q, ok := 1000, true
		seenQ := false
		for params != "" && ok {
			var p string
			p, params, _ = strings.Cut(params, ";")
			k, val, hasVal := strings.Cut(p, "=")
			k = trimOWS(k)
			if seenQ || !hasVal || !strings.EqualFold(k, "q") {
				continue
			}
			seenQ = true
			q, ok = parseQValue(trimOWS(val))
		}
		if ok {
			out = append(out, acceptEntry{coding: name, q: q})
		}
	}
	return out
}

// parseQValue parses a qvalue (RFC 9110 §12.4.2) into thousandths:
//
//	qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
func parseQValue(s string) (int, bool) {
	if s == "" || len(s) > 5 || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	whole := int(s[0] - '0')
	if len(s) == 1 {
		return whole * 1000, true
	}
	if s[1] != '.' {
		return 0, false
	}
	frac := 0
	for i, scale := 2, 100; i < len(s); i, scale = i+1, scale/10 {
		c := s[i]
		if c < '0' || c > '9' || whole == 1 && c != '0' {
			return 0, false
		}
		frac += int(c-'0') * scale
	}
	return whole*1000 + frac, true
}

// negotiate picks the content coding of a response from the request's
// Accept-Encoding (value: every field line joined with ", "; present:
// whether the request had the field at all) among offered (the server's
// codings, most preferred first), following RFC 9110 §12.5.3:
//
//   - No Accept-Encoding: any coding is acceptable, and Wedge sends
//     identity, as nginx, Caddy and Envoy do (clients that decode send the
//     field).
//   - An empty value (or none that parses): identity only.
//   - A coding is acceptable when listed with q > 0, or when not listed and
//     "*" is, with q > 0. The acceptable coding with the highest q wins;
//     ties go to the server's order.
//   - identity is acceptable unless refused by "identity;q=0", or by
//     "*;q=0" without an identity entry. Not listed, it yields to any
//     acceptable coding; listed (or covered by "*") with a q above the
//     best coding's, it wins and nothing is compressed.
//
// It returns the coding, or "" for identity; ok is false when nothing is
// acceptable (no offered coding, and identity refused). The RFC then lets
// a server send 406 or disregard the field (§12.1, §15.5.7); the caller
// sends identity.
func negotiate(value string, present bool, offered []string) (coding string, ok bool) {
	if !present {
		return "", true
	}
	entries := parseAcceptEncoding(value)
	star, identity := -1, -1
	for _, e := range entries {
		switch {
		case e.coding == "*" && star < 0:
			star = e.q
		case e.coding == "identity" && identity < 0:
			identity = e.q
		}
	}
	qOf := func(c string) int {
		for _, e := range entries {
			if e.coding == c {
				return e.q
			}
		}
		return max(star, 0)
	}
	best, bestQ := "", 0
	for _, c := range offered {
		if q := qOf(c); q > bestQ {
			best, bestQ = c, q
		}
	}
	identityQ := 1000 // acceptable unless refused, below any acceptable coding
	explicit := false
	switch {
	case identity >= 0:
		identityQ, explicit = identity, true
	case star >= 0:
		identityQ, explicit = star, true
	}
	if best != "" {
		if explicit && identityQ > bestQ {
			return "", true
		}
		return best, true
	}
	return "", identityQ > 0
}

// trimOWS removes optional whitespace (SP, HTAB) at both ends (RFC 9110 §5.6.3).
func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// isToken reports whether s is a token (RFC 9110 §5.6.2).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
