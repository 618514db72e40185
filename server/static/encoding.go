package static

import (
	"strings"

	"github.com/wedgeproxy/wedge/server/internal/message"
)

// coding is one precompressed sidecar form: the content-coding token
// (RFC 9110 §8.4.1) and the file name suffix beside the original, as nginx
// gzip_static / brotli_static and Caddy's precompressed look for them.
type coding struct {
	token  string
	suffix string
}

// codings lists the sidecar forms in server preference order, the order
// used between codings the client weighs equally.
var codings = [...]coding{
	{"br", ".br"},
	{"zstd", ".zst"},
	{"gzip", ".gz"},
}

// acceptedCodings parses every Accept-Encoding field (RFC 9110 §12.5.3)
// and returns the indexes into codings the client accepts (q > 0), best
// first: by q-value, then by server preference. With no Accept-Encoding
// field the result is empty: RFC 9110 lets the server pick any coding then,
// but like nginx Wedge sends identity to a client that asked for nothing.
//
// Names compare case-insensitively; "x-gzip" is gzip (RFC 9110 §8.4.1.3);
// "*" gives its q to codings not named; a malformed q-value drops its
// element.
func acceptedCodings(h message.Header, out *[len(codings)]int) []int {
	var q [len(codings)]int // thousandths; -1 = not named
	for i := range q {
		q[i] = -1
	}
	star := -1
	seen := false
	for i := range h {
		if !strings.EqualFold(h[i].Name, "Accept-Encoding") {
			continue
		}
		seen = true
		v := h[i].Value
		for v != "" {
			var elem string
			elem, v, _ = strings.Cut(v, ",")
			name, params, _ := strings.Cut(elem, ";")
			name = strings.Trim(name, " \t")
			w, ok := qValue(params)
			if !ok || name == "" {
				continue
			}
			switch {
			case name == "*":
				star = w
			case strings.EqualFold(name, "x-gzip"):
				q[2] = max(q[2], w)
			default:
				for j := range codings {
					if strings.EqualFold(name, codings[j].token) {
						q[j] = max(q[j], w)
					}
				}
			}
		}
	}
	res := out[:0]
	if !seen {
		return res
	}
	for j := range codings {
		if q[j] < 0 {
			q[j] = max(star, 0)
		}
		if q[j] > 0 {
			res = append(res, j)
		}
	}
	// Stable insertion sort by q, descending; at most three elements.
	for i := 1; i < len(res); i++ {
		for k := i; k > 0 && q[res[k]] > q[res[k-1]]; k-- {
			res[k], res[k-1] = res[k-1], res[k]
		}
	}
	return res
}

// qValue returns the weight in thousandths from the parameters after a
// coding, 1000 when there is no "q" parameter (RFC 9110 §12.4.2):
// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ).
func qValue(params string) (int, bool) {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, v, _ := strings.Cut(p, "=")
		if !strings.EqualFold(strings.Trim(k, " \t"), "q") {
			continue
		}
		return parseQ(strings.Trim(v, " \t"))
	}
	return 1000, true
}

func parseQ(v string) (int, bool) {
	if v == "" || (v[0] != '0' && v[0] != '1') {
		return 0, false
	}
	n := int(v[0]-'0') * 1000
	if len(v) == 1 {
		return n, true
	}
	if v[1] != '.' || len(v) > 5 {
		return 0, false
	}
	scale := 100
	for i := 2; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' || (n == 1000 && c != '0') {
			return 0, false
		}
		n += int(c-'0') * scale
		scale /= 10
	}
	return n, true
}
