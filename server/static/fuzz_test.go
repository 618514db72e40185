package static

import (
	"path"
	"strings"
	"testing"
)

// FuzzServe serves arbitrary targets, with and without headers that reach
// the range and sidecar code, and checks that Serve never panics, always
// answers a known status, and never hands out a file outside the root.
func FuzzServe(f *testing.F) {
	root, _ := testTree(f)
	m, err := New(MountConfig{Prefix: "/s/", Root: root, Browse: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { m.Close() })
	allowed := rootFiles(f, root)
	for _, s := range []string{
		"/s/a.css", "/s/", "/s", "/s/dir", "/s/list/", "/s/app.js?x=1", "/s/big.bin",
		"/s/../outside/secret.txt", "/s/%2e%2e/outside/secret.txt", "/s/..%2foutside",
		"/s/abs-out", "/s/rel-out", "/s/dir-out/secret.txt", "/s/list/link-out", "/s/sub/css/out.css",
		"/s/..\\outside", "/s/%00", "//outside/secret.txt", "/s/sub/css/up.css", "*", "",
	} {
		f.Add(s, "bytes=0-3,5-", "gzip, br")
	}
	statuses := map[int]bool{200: true, 206: true, 301: true, 304: true, 400: true, 403: true, 404: true, 416: true}
	f.Fuzz(func(t *testing.T, target, rng, ae string) {
		r := serve(m, "GET", target, hdr("Range", rng, "Accept-Encoding", ae))
		defer r.Close()
		if !statuses[r.Status] {
			t.Fatalf("%q: status %d", target, r.Status)
		}
		checkInside(t, target, r, allowed)
		var n int64
		for _, s := range r.Sections {
			n += s.Len()
		}
		if n != r.ContentLength {
			t.Fatalf("%q: sections %d bytes, ContentLength %d", target, n, r.ContentLength)
		}
		if loc := r.Header.Get("Location"); loc != "" && (!strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") ||
			strings.ContainsAny(loc, "\r\n")) {
			t.Fatalf("%q: Location %q", target, loc)
		}
	})
}

// FuzzCleanPath checks that a cleaned path is absolute, clean and free of
// the bytes that cleanPath refuses.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/%2e%2e/", "/%2f", "/a%5cb", "//x/./y/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		c, _, status := cleanPath(p)
		if status != 0 {
			return
		}
		if c == "" || c[0] != '/' || path.Clean(c) != c || strings.ContainsAny(c, "\x00\\") {
			t.Fatalf("cleanPath(%q) = %q", p, c)
		}
		for _, seg := range strings.Split(c, "/") {
			if seg == ".." {
				t.Fatalf("cleanPath(%q) = %q has ..", p, c)
			}
		}
	})
}

// FuzzParseRange checks that every returned range lies inside the
// representation and that the ranges do not overlap.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-0", "bytes=-5", "bytes=3-,0-1", "bytes=1-0", "bytes=0-1,1-2,5-9"} {
		f.Add(s, int64(10))
	}
	f.Fuzz(func(t *testing.T, v string, size int64) {
		if size < 0 {
			size = -size
		}
		if size < 0 {
			return
		}
		rs, ok := parseRange(v, size, nil)
		if !ok {
			return
		}
		if len(rs) > maxRanges {
			t.Fatalf("%d ranges", len(rs))
		}
		for i, a := range rs {
			if a.start < 0 || a.length <= 0 || a.start+a.length > size {
				t.Fatalf("%q size %d: bad range %+v", v, size, a)
			}
			for _, b := range rs[i+1:] {
				if a.start <= b.start+b.length && b.start <= a.start+a.length {
					t.Fatalf("%q: %+v and %+v not coalesced", v, a, b)
				}
			}
		}
	})
}

// FuzzAcceptedCodings checks that the result is a set of valid indexes.
func FuzzAcceptedCodings(f *testing.F) {
	for _, s := range []string{"gzip, br;q=0.5", "*;q=0", "zstd;q=1.000, x-gzip;q=0.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var out [len(codings)]int
		got := acceptedCodings(hdr("Accept-Encoding", v), &out)
		seen := 0
		for _, i := range got {
			if i < 0 || i >= len(codings) || seen&(1<<i) != 0 {
				t.Fatalf("%q: %v", v, got)
			}
			seen |= 1 << i
		}
	})
}
