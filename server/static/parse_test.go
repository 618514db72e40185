package static

import (
	"math"
	"reflect"
	"testing"
	"time"
)

func TestCleanPath(t *testing.T) {
	for _, tc := range []struct {
		in     string
		clean  string
		dir    bool
		status int
	}{
		{"/", "/", true, 0},
		{"/a/b", "/a/b", false, 0},
		{"/a/b/", "/a/b", true, 0},
		{"/a/./b/.", "/a/b", true, 0},
		{"/a/..", "/", true, 0},
		{"/../..", "/", true, 0},
		{"//a//b", "/a/b", false, 0},
		{"/%61%62", "/ab", false, 0},
		{"/%2e%2e/x", "/x", false, 0},
		{"/a%20b", "/a b", false, 0},
		{"/%25", "/%", false, 0},
		{"/%2f", "", false, 400},
		{"/%2F", "", false, 400},
		{"/%5c", "", false, 400},
		{"/%00", "", false, 400},
		{"/\x00", "", false, 400},
		{"/a\\b", "", false, 400},
		{"/%", "", false, 400},
		{"/%g0", "", false, 400},
		{"/%0", "", false, 400},
		{"", "", false, 400},
		{"a", "", false, 400},
		{"*", "", false, 400},
	} {
		c, d, s := cleanPath(tc.in)
		if c != tc.clean || d != tc.dir || s != tc.status {
			t.Errorf("cleanPath(%q) = %q, %v, %d; want %q, %v, %d", tc.in, c, d, s, tc.clean, tc.dir, tc.status)
		}
	}
}

func TestParseRange(t *testing.T) {
	type br = byteRange
	for _, tc := range []struct {
		in   string
		size int64
		want []byteRange
		ok   bool
	}{
		{"bytes=0-0", 10, []br{{0, 1}}, true},
		{"bytes=0-", 10, []br{{0, 10}}, true},
		{"bytes=-3", 10, []br{{7, 3}}, true},
		{"bytes=-30", 10, []br{{0, 10}}, true},
		{"bytes=5-100", 10, []br{{5, 5}}, true},
		{"bytes=10-", 10, nil, true},
		{"bytes=-0", 10, nil, true},
		{"bytes=0-0", 0, nil, true},
		{"bytes=-1", 0, nil, true},
		{"bytes=0-1,1-2", 10, []br{{0, 3}}, true},
		{"bytes=4-5,0-1", 10, []br{{4, 2}, {0, 2}}, true},
		{"bytes=4-5,0-1,2-3", 10, []br{{0, 6}}, true},
		{"bytes=0-1,3-4", 10, []br{{0, 2}, {3, 2}}, true},
		{"bytes=0-1,,", 10, []br{{0, 2}}, true},
		{"bytes=0-" + "99999999999999999999", 10, []br{{0, 10}}, true},
		{"bytes=99999999999999999999-", 10, nil, true},
		{"bytes=" + "9223372036854775807-", math.MaxInt64, []br{}, true},
		{"bytes=1-0", 10, nil, false},
		{"bytes=", 10, nil, false},
		{"bytes=,", 10, nil, false},
		{"bytes", 10, nil, false},
		{"bits=0-1", 10, nil, false},
		{"bytes=a-1", 10, nil, false},
		{"bytes=1-a", 10, nil, false},
		{"bytes=+1-2", 10, nil, false},
		{"bytes=0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0", 10, []br{{0, 1}}, true},
		{"bytes=0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0", 10, nil, false},
	} {
		got, ok := parseRange(tc.in, tc.size, nil)
		if ok != tc.ok || (len(got) != 0 || len(tc.want) != 0) && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseRange(%q, %d) = %v, %v; want %v, %v", tc.in, tc.size, got, ok, tc.want, tc.ok)
		}
	}
}

func TestAcceptedCodings(t *testing.T) {
	names := func(idx []int) []string {
		var s []string
		for _, i := range idx {
			s = append(s, codings[i].token)
		}
		return s
	}
	for _, tc := range []struct {
		values []string // nil: no field
		want   []string
	}{
		{nil, nil},
		{[]string{""}, nil},
		{[]string{"gzip"}, []string{"gzip"}},
		{[]string{"gzip, br, zstd"}, []string{"br", "zstd", "gzip"}},
		{[]string{"gzip;q=1, br;q=0.999"}, []string{"gzip", "br"}},
		{[]string{"br;q=0.001"}, []string{"br"}},
		{[]string{"br;q=0.000"}, nil},
		{[]string{"br;q=0.0001"}, nil},
		{[]string{"br;q=1.000"}, []string{"br"}},
		{[]string{"br;q=1.001"}, nil},
		{[]string{"br;q="}, nil},
		{[]string{"br;level=1;q=0.5, gzip;q=0.4"}, []string{"br", "gzip"}},
		{[]string{"*;q=0.5, gzip"}, []string{"gzip", "br", "zstd"}},
		{[]string{"*;q=0.5, gzip;q=0"}, []string{"br", "zstd"}},
		{[]string{"gzip;q=0, x-gzip"}, []string{"gzip"}},
		{[]string{"deflate, compress, identity"}, nil},
		{[]string{" , ,br"}, []string{"br"}},
		{[]string{"zstd", "br;q=0.9"}, []string{"zstd", "br"}},
	} {
		var h []string
		for _, v := range tc.values {
			h = append(h, "Accept-Encoding", v)
		}
		var out [len(codings)]int
		if got := names(acceptedCodings(hdr(h...), &out)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %v, want %v", tc.values, got, tc.want)
		}
	}
}

func TestEtagListMatch(t *testing.T) {
	const e = `"abc-1"`
	for _, tc := range []struct {
		list         string
		strong, weak bool
	}{
		{`"abc-1"`, true, true},
		{`W/"abc-1"`, false, true},
		{`"x", "abc-1"`, true, true},
		{`"x,y","abc-1"`, true, true},
		{`*`, true, true},
		{`"abc-2"`, false, false},
		{`abc-1`, false, false},
		{`"abc-1`, false, false},
		{``, false, false},
		{`w/"abc-1"`, false, false},
	} {
		if got := etagListMatch(tc.list, e, false); got != tc.strong {
			t.Errorf("strong %q = %v", tc.list, got)
		}
		if got := etagListMatch(tc.list, e, true); got != tc.weak {
			t.Errorf("weak %q = %v", tc.list, got)
		}
	}
}

func TestParseHTTPDate(t *testing.T) {
	want := time.Date(1994, 11, 6, 8, 49, 37, 0, time.UTC)
	// RFC 9110 §5.6.7: the three forms a recipient must accept.
	for _, v := range []string{"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"} {
		if got, ok := parseHTTPDate(v); !ok || !got.Equal(want) {
			t.Errorf("%q = %v, %v", v, got, ok)
		}
	}
	for _, v := range []string{"", "1994-11-06", "Sun, 06 Nov 1994 08:49:37 PST"} {
		if _, ok := parseHTTPDate(v); ok {
			t.Errorf("%q parsed", v)
		}
	}
}

func TestContentType(t *testing.T) {
	for name, want := range map[string]string{
		"a.html": "text/html; charset=utf-8", "a.css": "text/css; charset=utf-8",
		"a.js": "text/javascript; charset=utf-8", "a.mjs": "text/javascript; charset=utf-8",
		"a.json": "application/json; charset=utf-8", "a.svg": "image/svg+xml", "a.png": "image/png",
		"a.jpg": "image/jpeg", "a.gif": "image/gif", "a.webp": "image/webp", "a.avif": "image/avif",
		"a.ico": "image/x-icon", "a.txt": "text/plain; charset=utf-8", "a.xml": "text/xml; charset=utf-8",
		"a.wasm": "application/wasm", "a.woff": "font/woff", "a.woff2": "font/woff2",
		"a.pdf": "application/pdf", "a.mp4": "video/mp4", "a.webm": "video/webm",
		"A.PNG": "image/png", "noext": "application/octet-stream", ".hidden": "application/octet-stream",
		"a.unknown-ext-xyz": "application/octet-stream",
	} {
		if got := contentType(name); got != want {
			t.Errorf("contentType(%q) = %q, want %q", name, got, want)
		}
	}
}
