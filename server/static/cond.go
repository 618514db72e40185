package static

import (
	"strconv"
	"strings"
	"time"

	"github.com/wedgeproxy/wedge/server/internal/message"
)

// timeFormat is the IMF-fixdate form of an HTTP-date (RFC 9110 §5.6.7),
// the only form Wedge generates.
const timeFormat = "Mon, 02 Jan 2006 15:04:05 GMT"

// parseHTTPDate parses an HTTP-date in any of the three forms a recipient
// must accept (RFC 9110 §5.6.7): IMF-fixdate, RFC 850 and asctime.
func parseHTTPDate(v string) (time.Time, bool) {
	for _, layout := range [...]string{timeFormat, "Monday, 02-Jan-06 15:04:05 GMT", "Mon Jan _2 15:04:05 2006"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// appendETag appends a strong entity tag built like nginx's,
// `"<mtime-unix-seconds-hex>-<size-hex>"` (RFC 9110 §8.8.3).
func appendETag(b []byte, mtime int64, size int64) []byte {
	b = append(b, '"')
	b = strconv.AppendInt(b, mtime, 16)
	b = append(b, '-')
	b = strconv.AppendInt(b, size, 16)
	return append(b, '"')
}

// etagListMatch reports whether the field value list, an If-Match or
// If-None-Match list of entity-tags or "*" (RFC 9110 §13.1.1, §13.1.2),
// matches etag, our current strong tag with its quotes. weak selects weak
// comparison (W/ prefixes ignored) over strong comparison (a W/ tag never
// matches) (RFC 9110 §8.8.3.2). A malformed list matches nothing after the
// point where it breaks.
func etagListMatch(list, etag string, weak bool) bool {
	for {
		list = strings.TrimLeft(list, " \t,")
		if list == "" {
			return false
		}
		if list[0] == '*' {
			return true
		}
		isWeak := false
		if strings.HasPrefix(list, "W/") {
			isWeak = true
			list = list[2:]
		}
		if list == "" || list[0] != '"' {
			return false
		}
		end := strings.IndexByte(list[1:], '"')
		if end < 0 {
			return false
		}
		tag := list[:end+2]
		if tag == etag && (weak || !isWeak) {
			return true
		}
		list = list[end+2:]
	}
}

// headerListMatch runs etagListMatch over every field named name. present
// reports whether there was any.
func headerListMatch(h message.Header, name, etag string, weak bool) (present, match bool) {
	for i := range h {
		if !strings.EqualFold(h[i].Name, name) {
			continue
		}
		present = true
		if etagListMatch(h[i].Value, etag, weak) {
			return true, true
		}
	}
	return present, false
}

// singleDate returns the date of the field name when it appears exactly
// once and holds a valid HTTP-date; otherwise the field must be ignored
// (RFC 9110 §13.1.3, §13.1.4).
func singleDate(h message.Header, name string) (time.Time, bool) {
	var v string
	n := 0
	for i := range h {
		if strings.EqualFold(h[i].Name, name) {
			v = h[i].Value
			n++
		}
	}
	if n != 1 {
		return time.Time{}, false
	}
	return parseHTTPDate(v)
}

// condResult is the outcome of evaluating preconditions.
type condResult int

const (
	condProceed     condResult = iota // serve the representation
	condNotModified                   // 304
	condFailed                        // 412
)

// evalPreconditions evaluates the request's preconditions against the
// selected representation, in the order of RFC 9110 §13.2.2 steps 1-4.
// Only GET and HEAD reach here, so a true If-None-Match gives 304.
// mod is the representation's Last-Modified, truncated to seconds.
func evalPreconditions(h message.Header, etag string, mod time.Time) condResult {
	// Step 1: If-Match, strong comparison (§13.1.1).
	if present, match := headerListMatch(h, "If-Match", etag, false); present {
		if !match {
			return condFailed
		}
	} else if t, ok := singleDate(h, "If-Unmodified-Since"); ok {
		// Step 2: If-Unmodified-Since, only without If-Match (§13.1.4).
		if mod.After(t) {
			return condFailed
		}
	}
	// Step 3: If-None-Match, weak comparison (§13.1.2).
	if present, match := headerListMatch(h, "If-None-Match", etag, true); present {
		if match {
			return condNotModified
		}
		return condProceed
	}
	// Step 4: If-Modified-Since, only without If-None-Match (§13.1.3).
	if t, ok := singleDate(h, "If-Modified-Since"); ok && !mod.After(t) {
		return condNotModified
	}
	return condProceed
}

// ifRangeAllows reports whether a Range field should be honored given the
// If-Range field value v (RFC 9110 §13.1.5): an entity-tag must match etag
// by strong comparison; an HTTP-date must equal Last-Modified exactly. An
// invalid value fails, which makes the server send the whole content.
func ifRangeAllows(v, etag string, mod time.Time) bool {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, "\"") || strings.HasPrefix(v, "W/") {
		return v == etag // a weak tag never matches strongly
	}
	t, ok := parseHTTPDate(v)
	return ok && t.Equal(mod)
}
