package static

import (
	"math"
	"strings"
)

// maxRanges is the most range-specs honored in one Range field; a field
// with more is ignored and the whole content is sent with 200. It guards
// against the many-small-ranges amplification that RFC 9110 §14.2 and
// §17.15 warn about (nginx max_ranges, Apache MaxRanges).
const maxRanges = 16

// byteRange is a satisfiable range: length bytes from start.
type byteRange struct {
	start, length int64
}

// parseRange parses a Range field value (RFC 9110 §14.1.1, §14.2) for a
// representation of size bytes and appends the satisfiable ranges to dst,
// in the order they appeared, after coalescing overlapping and adjacent
// ones.
//
// ok is false when the field must be ignored: a unit other than "bytes", a
// malformed or invalid range-spec (last-pos < first-pos), or more than
// maxRanges specs. When ok is true and no range is returned, none was
// satisfiable: the answer is 416.
func parseRange(v string, size int64, dst []byteRange) (rs []byteRange, ok bool) {
	unit, set, found := strings.Cut(v, "=")
	if !found || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return nil, false
	}
	rs = dst
	specs := 0
	for set != "" {
		var spec string
		spec, set, _ = strings.Cut(set, ",")
		spec = strings.Trim(spec, " \t")
		if spec == "" {
			continue // empty list elements are allowed (RFC 9110 §5.6.1.2)
		}
		specs++
		if specs > maxRanges {
			return nil, false
		}
		first, last, found := strings.Cut(spec, "-")
		if !found {
			return nil, false
		}
		if first == "" {
			// suffix-range: the last n bytes; n = 0 is unsatisfiable.
			n, ok := parseDigits(last)
			if !ok {
				return nil, false
			}
			if n == 0 || size == 0 {
				continue
			}
			n = min(n, size)
			rs = append(rs, byteRange{start: size - n, length: n})
			continue
		}
		start, ok := parseDigits(first)
		if !ok {
			return nil, false
		}
		end := int64(math.MaxInt64)
		if last != "" {
			if end, ok = parseDigits(last); !ok || end < start {
				return nil, false
			}
		}
		if start >= size {
			continue // unsatisfiable (RFC 9110 §14.1.1)
		}
		end = min(end, size-1)
		rs = append(rs, byteRange{start: start, length: end - start + 1})
	}
	if specs == 0 {
		return nil, false
	}
	return coalesce(rs), true
}

// parseDigits parses 1*DIGIT, saturating at math.MaxInt64 so that a huge
// but well-formed last-pos still means "to the end".
func parseDigits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (math.MaxInt64-9)/10 {
			n = math.MaxInt64
			continue
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// coalesce merges ranges that overlap or touch, keeping each merged range
// where its earliest member appeared (RFC 9110 §14.2 allows coalescing and
// asks for the remaining parts in request order). At most maxRanges
// ranges arrive, so the quadratic loop is cheap.
func coalesce(rs []byteRange) []byteRange {
	for merged := true; merged; {
		merged = false
		for i := 0; i < len(rs); i++ {
			for j := i + 1; j < len(rs); j++ {
				a, b := rs[i], rs[j]
				if a.start <= b.start+b.length && b.start <= a.start+a.length {
					s := min(a.start, b.start)
					e := max(a.start+a.length, b.start+b.length)
					rs[i] = byteRange{start: s, length: e - s}
					rs = append(rs[:j], rs[j+1:]...)
					merged = true
					j--
				}
			}
		}
	}
	return rs
}
