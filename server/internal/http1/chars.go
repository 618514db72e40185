package http1

import (
	"encoding/binary"
	"strings"
)

// Character classes, one bit each in charClass.
const (
	cToken     = 1 << iota // tchar (RFC 9110 §5.6.2)
	cTarget                // a byte allowed raw in a request-target
	cValue                 // field-vchar, SP or HTAB (RFC 9110 §5.5)
	cRegName               // unreserved / sub-delims / "%" (RFC 3986 §3.2.2)
	cIPLiteral             // unreserved / sub-delims / ":" (RFC 3986 §3.2.2)
	cHex                   // HEXDIG
)

// charClass maps a byte to its classes.
//
// Request-targets accept every visible ASCII byte except "#" (RFC 9112
// §3.2 has no fragment): the RFC 3986 set plus the few bytes (`"<>\^{|}`)
// that real clients send unencoded and nginx and Go's net/http accept; the
// upstream receives them unchanged. SP, CTLs and bytes above 0x7E are
// refused.
var charClass = func() (t [256]uint8) {
	const (
		alpha      = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		digit      = "0123456789"
		tokenSym   = "!#$%&'*+-.^_`|~"
		unreserved = alpha + digit + "-._~"
		subDelims  = "!$&'()*+,;="
	)
	set := func(chars string, c uint8) {
		for i := 0; i < len(chars); i++ {
			t[chars[i]] |= c
		}
	}
	set(alpha+digit+tokenSym, cToken)
	for b := 0x21; b <= 0x7e; b++ {
		if b != '#' {
			t[b] |= cTarget
		}
		t[b] |= cValue
	}
	for b := 0x80; b <= 0xff; b++ {
		t[b] |= cValue // obs-text
	}
	t[' '] |= cValue
	t['\t'] |= cValue
	set(unreserved+subDelims+"%", cRegName)
	set(unreserved+subDelims+":", cIPLiteral)
	set(digit+"abcdefABCDEF", cHex)
	return t
}()

// isToken reports whether s is a non-empty token (RFC 9110 §5.6.2).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if charClass[s[i]]&cToken == 0 {
			return false
		}
	}
	return true
}

// validTarget reports whether every byte of s may appear raw in a
// request-target.
func validTarget(s string) bool {
	for i := 0; i < len(s); i++ {
		if charClass[s[i]]&cTarget == 0 {
			return false
		}
	}
	return true
}

// validValue reports whether s holds only field-vchar, SP and HTAB
// (RFC 9110 §5.5): no CR, LF, NUL or other CTL.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if charClass[s[i]]&cValue == 0 {
			return false
		}
	}
	return true
}

// trimOWS removes leading and trailing SP and HTAB (RFC 9110 §5.6.3).
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// validAuthority reports whether s is uri-host [":" port] (RFC 3986 §3.2,
// RFC 9110 §7.2): a bracketed IP literal or a reg-name/IPv4 address with
// well-formed percent-encoding, then an optional all-digit port. Userinfo
// ("@"), paths, spaces and non-ASCII bytes are refused. The host may be
// empty, as the grammar allows.
func validAuthority(s string) bool {
	host, port, hasPort := s, "", false
	if len(s) > 0 && s[0] == '[' {
		j := strings.IndexByte(s, ']')
		if j < 0 {
			return false
		}
		host = s[1:j]
		if host == "" {
			return false
		}
		for i := 0; i < len(host); i++ {
			if charClass[host[i]]&cIPLiteral == 0 {
				return false
			}
		}
		rest := s[j+1:]
		if rest != "" {
			if rest[0] != ':' {
				return false
			}
			port, hasPort = rest[1:], true
		}
	} else {
		for i := len(s) - 1; i >= 0; i-- {
			if s[i] == ':' {
				host, port, hasPort = s[:i], s[i+1:], true
				break
			}
		}
		for i := 0; i < len(host); i++ {
			c := host[i]
			if charClass[c]&cRegName == 0 {
				return false
			}
			if c == '%' {
				if i+2 >= len(host) || charClass[host[i+1]]&cHex == 0 || charClass[host[i+2]]&cHex == 0 {
					return false
				}
				i += 2
			}
		}
	}
	if hasPort {
		for i := 0; i < len(port); i++ {
			if port[i] < '0' || port[i] > '9' {
				return false
			}
		}
	}
	return true
}

// parseDigits parses 1*DIGIT as a non-negative int64; ok is false for an
// empty string, any other byte, or a value above MaxInt64.
func parseDigits(s string) (n int64, ok bool) {
	if s == "" {
		return 0, false
	}
	const cutoff = (1<<63 - 1) / 10
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > cutoff {
			return 0, false
		}
		n = n*10 + int64(c-'0')
		if n < 0 {
			return 0, false
		}
	}
	return n, true
}

// SWAR constants: a byte of ones and a byte of high bits in each lane.
const (
	lanes01 = 0x0101010101010101
	lanes80 = 0x8080808080808080
)

// scanValue returns the index of the first byte of b at or after i that is
// not field-vchar, SP or HTAB (RFC 9110 §5.5). b must hold such a byte (a
// head always ends in LF). It checks eight bytes at a time while none is
// a CTL or DEL.
func scanValue(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		ctl := (x - lanes01*0x20) &^ x & lanes80 // a byte < 0x20
		y := x ^ lanes01*0x7f
		del := (y - lanes01) &^ y & lanes80 // a byte == 0x7f
		if ctl|del != 0 {
			break
		}
	}
	for charClass[b[i]]&cValue != 0 {
		i++
	}
	return i
}

// scanTarget returns the index of the first byte of b at or after i that
// may not appear raw in a request-target (see charClass). b must hold such
// a byte. It checks eight bytes at a time while all are in 0x21-0x7E and
// none is "#".
func scanTarget(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		low := (x - lanes01*0x21) &^ x & lanes80 // a byte <= 0x20
		y := x ^ lanes01*0x7f
		del := (y - lanes01) &^ y & lanes80 // a byte == 0x7f
		z := x ^ lanes01*'#'
		hash := (z - lanes01) &^ z & lanes80 // a byte == '#'
		if low|del|hash|x&lanes80 != 0 {
			break
		}
	}
	for charClass[b[i]]&cTarget != 0 {
		i++
	}
	return i
}

// scanToken returns the index of the first byte of b at or after i that
// is not a tchar. b must hold such a byte.
func scanToken(b []byte, i int) int {
	for charClass[b[i]]&cToken != 0 {
		i++
	}
	return i
}

// equalFoldASCII reports whether s equals lower, a lowercase ASCII
// string of the same length, ignoring ASCII case.
func equalFoldASCII(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// validValueBytes is validValue for a byte slice, eight bytes at a time.
func validValueBytes(b []byte) bool {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		ctl := (x - lanes01*0x20) &^ x & lanes80
		y := x ^ lanes01*0x7f
		del := (y - lanes01) &^ y & lanes80
		if ctl|del != 0 {
			break
		}
	}
	for ; i < len(b); i++ {
		if charClass[b[i]]&cValue == 0 {
			return false
		}
	}
	return true
}

// validTargetBytes is validTarget for a byte slice, eight bytes at a time.
func validTargetBytes(b []byte) bool {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		low := (x - lanes01*0x21) &^ x & lanes80
		y := x ^ lanes01*0x7f
		del := (y - lanes01) &^ y & lanes80
		z := x ^ lanes01*'#'
		hash := (z - lanes01) &^ z & lanes80
		if low|del|hash|x&lanes80 != 0 {
			break
		}
	}
	for ; i < len(b); i++ {
		if charClass[b[i]]&cTarget == 0 {
			return false
		}
	}
	return true
}
